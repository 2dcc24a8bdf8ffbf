"""Parse stage: a raw input line → a typed :class:`~schemas.records.Item`, or a dead letter saying why.

Every failure mode has its own error code (``schemas/codes.json``) and a message a person can act
on; nothing here raises for bad input. Validation is the JSON Schema in ``schemas/`` (the same
file producers can validate against), plus the checks a schema cannot express: a real calendar
date and time, and a size limit on text fields.
"""
from __future__ import annotations

import json
import math
from typing import Iterable, Optional, Union

import apache_beam as beam
from apache_beam.metrics import Metrics

import schemas
from pipeline.timestamps import NoOffset, parse_rfc3339, utc_now
from schemas import codes
from schemas.records import DeadLetter, Item, RawLine, Review

DEAD = "dead_letter"
STAGE = "parse"
DEFAULT_MAX_TEXT_CHARS = 20_000
_RAW_KEEP_BYTES = 4096  # how much of an over-size line a dead letter keeps

# When a record breaks several rules, report the most fundamental one.
_PRIORITY = (codes.MISSING_FIELD, codes.WRONG_TYPE, codes.RATING_OUT_OF_RANGE, codes.BAD_TIMESTAMP,
             codes.INVALID_VALUE)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _path(error) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(record)"


def _classify(error) -> tuple:
    """A jsonschema ValidationError → (error code, readable message)."""
    field = _path(error)
    top = error.absolute_path[0] if error.absolute_path else None
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return codes.MISSING_FIELD, f"missing required field '{missing}'"
    if error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return codes.WRONG_TYPE, (f"field '{field}' must be {expected}, "
                                  f"got {type(error.instance).__name__} {json.dumps(error.instance)[:80]}")
    if top == "rating":
        return codes.RATING_OUT_OF_RANGE, (f"rating {error.instance!r} is out of range: "
                                           "must be 1 to 5 in steps of 0.5")
    if top == "created_at":
        return codes.BAD_TIMESTAMP, (f"created_at {error.instance!r} is not an RFC 3339 timestamp "
                                     "with an offset (e.g. 2024-05-01T12:00:00Z)")
    if error.validator == "enum":
        allowed = ", ".join(str(v) for v in error.validator_value if v is not None)
        return codes.INVALID_VALUE, f"field '{field}' is {error.instance!r}; allowed: {allowed}"
    if error.validator == "minLength":
        return codes.INVALID_VALUE, f"field '{field}' must not be empty"
    if error.validator == "maxLength":
        return codes.INVALID_VALUE, f"field '{field}' is longer than {error.validator_value} characters"
    if error.validator == "pattern" and top == "language":
        return codes.INVALID_VALUE, f"language {error.instance!r} is not a BCP 47 tag (e.g. en, ko, ja-JP)"
    return codes.INVALID_VALUE, f"field '{field}': {error.message}"


def _check_timestamp(value: str) -> Optional[str]:
    try:
        parse_rfc3339(value)
    except NoOffset:
        return f"created_at {value!r} has no UTC offset"
    except ValueError as exn:
        return f"created_at {value!r} is not a valid date and time ({exn})"
    return None


def parse_line(raw: RawLine, *, run_id: str, ingested_at: str,
               max_text_chars: int = DEFAULT_MAX_TEXT_CHARS) -> Union[Item, DeadLetter]:
    """Parses and validates one line. Never raises for bad input: returns a DeadLetter instead."""

    def dead(code: str, message: str, text: str, review_id: Optional[str] = None) -> DeadLetter:
        return DeadLetter(error_code=code, error=message, raw=text, source=raw.ref, stage=STAGE,
                          run_id=run_id, review_id=review_id, raw_truncated=raw.truncated)

    if raw.truncated:
        return dead(codes.TOO_LARGE, f"line is longer than the limit of {len(raw.data)} bytes",
                    raw.data[:_RAW_KEEP_BYTES].decode("utf-8", errors="backslashreplace"))
    try:
        text = raw.data.decode("utf-8")
    except UnicodeDecodeError as exn:
        return dead(codes.INVALID_UTF8, f"line is not valid UTF-8: byte 0x{raw.data[exn.start]:02x} "
                    f"at offset {exn.start}", raw.data.decode("utf-8", errors="backslashreplace"))
    if text.startswith("\ufeff"):
        text = text[1:]  # a byte-order mark at the start of a file is not content
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exn:
        kind = "nests too deeply" if isinstance(exn, RecursionError) else str(exn)
        return dead(codes.MALFORMED_JSON, f"line is not valid JSON: {kind}", text)
    try:  # "\ud800" is valid JSON but not Unicode text: it could not be written out as UTF-8
        json.dumps(obj, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError as exn:
        return dead(codes.INVALID_UTF8, "line has a \\u escape for an unpaired UTF-16 surrogate "
                    f"({exn.object[exn.start:exn.end]!a}), which is not valid Unicode text", text)
    except ValueError:  # a number such as 1e400 overflows to infinity
        rating = obj.get("rating") if isinstance(obj, dict) else None
        if isinstance(rating, float) and not math.isfinite(rating):
            return dead(codes.RATING_OUT_OF_RANGE, "rating is out of range: must be 1 to 5 in steps of 0.5",
                        text, obj.get("review_id") if isinstance(obj.get("review_id"), str) else None)
        return dead(codes.MALFORMED_JSON, "line has a number too large to represent", text)
    if not isinstance(obj, dict):
        return dead(codes.NOT_AN_OBJECT, f"line is JSON {type(obj).__name__}, expected an object "
                    "with review fields", text)
    review_id = obj.get("review_id") if isinstance(obj.get("review_id"), str) else None
    errors = list(schemas.validator("review.schema.json").iter_errors(obj))
    if errors:
        found = sorted((_classify(e) for e in errors), key=lambda ce: _PRIORITY.index(ce[0]))
        code = found[0][0]
        message = "; ".join(msg for c, msg in found if c == code)
        return dead(code, message, text, review_id)
    bad_time = _check_timestamp(obj["created_at"])
    if bad_time:
        return dead(codes.BAD_TIMESTAMP, bad_time, text, review_id)
    for name in ("body", "title"):
        value = obj.get(name)
        if isinstance(value, str) and len(value) > max_text_chars:
            return dead(codes.TOO_LARGE, f"{name} has {len(value)} characters; the limit is "
                        f"{max_text_chars} (--max_text_chars)", text, review_id)
    return Item(review=Review.from_dict(obj), ref=raw.ref, ingested_at=ingested_at)


class _ParseFn(beam.DoFn):
    def __init__(self, run_id: str, max_text_chars: int):
        self._run_id = run_id
        self._max = max_text_chars

    def setup(self):
        schemas.validator("review.schema.json")  # compile once per worker

    def process(self, raw: RawLine) -> Iterable:
        try:
            result = parse_line(raw, run_id=self._run_id, ingested_at=utc_now(), max_text_chars=self._max)
        except Exception as exn:  # noqa: BLE001 - a parser bug must cost one line, not the job
            result = DeadLetter(error_code=codes.INTERNAL_ERROR, error=f"stage 'parse' failed: {exn!r}"[:2000],
                                raw=raw.data[:_RAW_KEEP_BYTES].decode("utf-8", errors="backslashreplace"),
                                source=raw.ref, stage=STAGE, run_id=self._run_id, raw_truncated=raw.truncated)
        if isinstance(result, DeadLetter):
            Metrics.counter(STAGE, f"dead_letter_{result.error_code}").inc()
            yield beam.pvalue.TaggedOutput(DEAD, result)
        else:
            Metrics.counter(STAGE, "parsed").inc()
            yield result


class ParseReviews(beam.PTransform):
    """PCollection[RawLine] → (items: PCollection[Item], dead: PCollection[DeadLetter])."""

    def __init__(self, run_id: str, max_text_chars: int = DEFAULT_MAX_TEXT_CHARS):
        super().__init__()
        self._run_id = run_id
        self._max = max_text_chars

    def expand(self, lines):
        out = lines | "ParseLine" >> beam.ParDo(_ParseFn(self._run_id, self._max)).with_outputs(
            DEAD, main="items")
        return out.items, out[DEAD]
