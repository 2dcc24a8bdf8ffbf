"""What every stage after parsing shares: turning a stage's failure on one record into a dead letter."""
from __future__ import annotations

import json
import logging
from typing import Callable, Tuple

import apache_beam as beam
from apache_beam.metrics import Metrics

from schemas import codes
from schemas.records import DeadLetter, Item

LOG = logging.getLogger("pipeline")

# What every stateful step is keyed by: a str (review id, product, author, band key). Typed so that
# the key coder is deterministic, as state per key needs (untyped keys get Beam's pickling coder).
KEYED = beam.typehints.KV[str, beam.typehints.Any]


def review_json(item: Item) -> str:
    """The record as parsed (not the byte-exact line, which is not kept past parsing)."""
    import dataclasses
    return json.dumps(dataclasses.asdict(item.review), ensure_ascii=False, sort_keys=True)


def stage_failed(stage: str, exn: BaseException, what: object) -> str:
    """A stateful streaming stage failed on one record: logged and counted (``<stage>/failed_records``).
    Returns the note for the ``not_run`` signals the record then goes on with: like a failed
    classifier batch, a failed detector costs that record its signal, never its outcome."""
    Metrics.counter(stage, "failed_records").inc()
    LOG.warning("stage '%s' failed on %s: %r", stage, str(what)[:200], exn, exc_info=True)
    return f"stage '{stage}' failed on this review: {type(exn).__name__}: {exn!r}"[:500]


class RecordRejected(Exception):
    """Raised by a stage function for a record it must not pass on: the record becomes a dead
    letter with the class's ``code`` (not ``internal_error``), and the job goes on."""

    code = codes.INTERNAL_ERROR


class TextTooLarge(RecordRejected):
    """A title or body over ``--max_text_chars`` after normalisation (NFKC can expand a character 18×)."""

    code = codes.TOO_LARGE


def failure_to_dead_letter(stage: str, run_id: str):
    """Maps a ``with_exception_handling`` bad output (item, (type, repr, traceback)) to a DeadLetter."""

    def convert(bad) -> DeadLetter:
        element, (exc_type, exc_repr, _tb) = bad
        item = getattr(element, "item", element)  # stages after Decide carry Decided(item, ...)
        rejected = isinstance(exc_type, type) and issubclass(exc_type, RecordRejected)
        code = exc_type.code if rejected else codes.INTERNAL_ERROR
        Metrics.counter(stage, code).inc()
        name = getattr(exc_type, "__name__", str(exc_type))
        return DeadLetter(error_code=code,
                          error=(f"stage '{stage}': {exc_repr}" if rejected
                                 else f"stage '{stage}' failed: {name}: {exc_repr}")[:2000],
                          raw=review_json(item), source=item.ref, stage=stage, run_id=run_id,
                          review_id=item.review.review_id)
    return convert


def safe_map(pcoll, label: str, fn: Callable[[Item], Item], stage: str, run_id: str) -> Tuple:
    """Applies ``fn`` per item; an exception sends that one item to dead letters, never the job down."""
    good, bad = pcoll | label >> beam.Map(fn).with_exception_handling()
    dead = bad | f"{label}Failures" >> beam.Map(failure_to_dead_letter(stage, run_id))
    return good, dead
