"""The one RFC 3339 timestamp parser of the pipeline (Beam-free).

The input contract (``schemas/review.schema.json``) asks for RFC 3339 with an offset
(``2024-05-01T12:00:00Z``, ``2024-05-01T21:00:00+09:00``); RFC 3339 allows lower-case ``t`` and
``z``. Parsing validates it (``ParseReviews``), orders reviews for near-duplicate clusters and
widgets, and gives streaming its event time: all through :func:`parse_rfc3339`.
"""
from __future__ import annotations

import datetime as dt


class NoOffset(ValueError):
    """A date and time without a UTC offset: ambiguous, so not accepted."""


def parse_rfc3339(value: str) -> dt.datetime:
    """An aware datetime; ``ValueError`` for anything that is not RFC 3339 with an offset."""
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    parsed = dt.datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    if parsed.tzinfo is None:
        raise NoOffset("no UTC offset")
    return parsed


def epoch_seconds(value: str) -> float:
    """Seconds since the epoch of an RFC 3339 time (``ValueError`` as :func:`parse_rfc3339`)."""
    return parse_rfc3339(value).timestamp()


def utc_now() -> str:
    """The current time as RFC 3339 UTC with milliseconds (``2026-12-06T01:58:07.190Z``)."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
