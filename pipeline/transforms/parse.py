"""Parse stage: a raw input line → a typed :class:`~schemas.records.Item`, or a dead letter saying why.

Every failure mode has its own error code (``schemas/codes.json``) and a message a person can act
on; nothing here raises for bad input. Validation is the JSON Schema in ``schemas/`` (the same
file producers can validate against), plus the checks a schema cannot express: a real calendar
date and time, and a size limit on text fields.
"""
from __future__ import annotations

import dataclasses
import json
import math
from typing import Iterable, Optional, Tuple, Union

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.utils.timestamp import MAX_TIMESTAMP, MIN_TIMESTAMP

import schemas
from pipeline.files import DuplicateKeyError, unique_keys
from pipeline.timestamps import NoOffset, epoch_seconds, parse_rfc3339, utc_now
from schemas import codes
from schemas.records import DeadLetter, Item, RawLine, Review

DEAD = "dead_letter"
STAGE = "parse"
DEFAULT_MAX_TEXT_CHARS = 20_000
# created_at before this is implausible for an online review (and would sort it last anyway);
# one later than receipt plus the skew is a future date that would sort it first: both are clamped.
DEFAULT_EARLIEST_CREATED_AT = "1995-01-01T00:00:00Z"
DEFAULT_MAX_CLOCK_SKEW_S = 600
_MAX_INT_DIGITS = 4000  # longer integer literals parse as ±infinity (CPython refuses > 4300 digits)
_RAW_KEEP_BYTES = 4096  # how much of an over-size line a dead letter keeps
_RAW_KEEP_CHARS = 65536  # how much of any other bad line: control characters grow 6× in JSON
# (\u0001), so a 1 MiB line kept whole became a 6 MB dead letter, over what a Pub/Sub event may be

# When a record breaks several rules, report the most fundamental one.
_PRIORITY = (codes.MISSING_FIELD, codes.WRONG_TYPE, codes.RATING_OUT_OF_RANGE, codes.BAD_TIMESTAMP,
             codes.INVALID_VALUE)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _parse_int(text: str):
    if len(text) > _MAX_INT_DIGITS:
        return float("-inf") if text.startswith("-") else float("inf")
    return int(text)


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
    if top in ("created_at", "received_at"):
        return codes.BAD_TIMESTAMP, (f"{top} {error.instance!r} is not an RFC 3339 timestamp "
                                     "with an offset (e.g. 2024-05-01T12:00:00Z)")
    if error.validator == "enum":
        allowed = ", ".join(str(v) for v in error.validator_value if v is not None)
        return codes.INVALID_VALUE, f"field '{field}' is {error.instance!r}; allowed: {allowed}"
    if error.validator == "minLength":
        return codes.INVALID_VALUE, f"field '{field}' must not be empty"
    if error.validator == "maxLength":
        return codes.INVALID_VALUE, f"field '{field}' is longer than {error.validator_value} characters"
    if error.validator == "not" and top == "review_id":
        return codes.INVALID_VALUE, (f"review_id {error.instance!r} ends in the reserved '#conflict-' + 16 hex "
                                     "digits form (given by the pipeline to conflicting deliveries)")
    if error.validator == "pattern" and top == "language":
        return codes.INVALID_VALUE, f"language {error.instance!r} is not a BCP 47 tag (e.g. en, ko, ja-JP)"
    return codes.INVALID_VALUE, f"field '{field}': {error.message}"


def _check_timestamp(value: str, name: str = "created_at") -> Optional[str]:
    try:
        parse_rfc3339(value)
    except NoOffset:
        return f"{name} {value!r} has no UTC offset"
    except ValueError as exn:
        return f"{name} {value!r} is not a valid date and time ({exn})"
    return None


def plausible_created_at(created_at: str, received_at: Optional[str], receipt_at: str, *,
                         earliest: str = DEFAULT_EARLIEST_CREATED_AT,
                         max_clock_skew_s: float = DEFAULT_MAX_CLOCK_SKEW_S) -> Tuple[str, Optional[str]]:
    """(created_at to use, adjustment or None). The author's device sets created_at, so it is
    bounded: not before ``earliest`` (clamped to it) and not later than receipt (``received_at``,
    else ``receipt_at``: the Pub/Sub publish time in streaming, when the line was read in batch)
    plus ``max_clock_skew_s`` (clamped to the receipt time).
    Either way the review cannot sort itself to the top of "most recent"."""
    created = epoch_seconds(created_at)
    if created < epoch_seconds(earliest):
        return earliest, "before_earliest"
    receipt_at = received_at or receipt_at
    if created > epoch_seconds(receipt_at) + max_clock_skew_s:
        return receipt_at, "after_receipt"
    return created_at, None


def parse_line(raw: RawLine, *, run_id: str, ingested_at: str,
               max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
               earliest_created_at: str = DEFAULT_EARLIEST_CREATED_AT,
               max_clock_skew_s: float = DEFAULT_MAX_CLOCK_SKEW_S,
               receipt_at: Optional[str] = None) -> Union[Item, DeadLetter]:
    """Parses and validates one line. Never raises for bad input: returns a DeadLetter instead.

    ``receipt_at``: when the platform received the line if the transport says (Pub/Sub publish
    time); a review's own ``received_at`` wins; otherwise ``ingested_at``."""

    def dead(code: str, message: str, text: str, review_id: Optional[str] = None) -> DeadLetter:
        cut = len(text) > _RAW_KEEP_CHARS
        return DeadLetter(error_code=code, error=message, raw=text[:_RAW_KEEP_CHARS] if cut else text,
                          source=raw.ref, stage=STAGE, run_id=run_id, review_id=review_id,
                          raw_truncated=raw.truncated or cut)

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
        obj = json.loads(text, parse_constant=_reject_constant, parse_int=_parse_int,
                         object_pairs_hook=unique_keys)
    except DuplicateKeyError as exn:   # before ValueError, which it is
        return dead(codes.DUPLICATE_KEY, f"line names the key {exn.key[:80]!r} twice in one object; "
                    "which value counts is ambiguous, so neither is used", text)
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
    checked, rating = obj, obj.get("rating")
    huge_rating = type(rating) is int and not -10**6 <= rating <= 10**6
    if huge_rating:  # the schema's multipleOf would overflow converting it to a float
        checked = dict(obj, rating=float(10**6 if rating > 0 else -10**6))
    errors = list(schemas.validator("review.schema.json").iter_errors(checked))
    if errors:
        found = sorted((_classify(e) for e in errors), key=lambda ce: _PRIORITY.index(ce[0]))
        code = found[0][0]
        message = "; ".join(msg for c, msg in found if c == code)
        if code == codes.RATING_OUT_OF_RANGE and huge_rating:
            message = (f"rating (an integer of {len(str(abs(rating)))} digits) is out of range: "
                       "must be 1 to 5 in steps of 0.5")
        return dead(code, message, text, review_id)
    for name in ("created_at", "received_at"):
        bad_time = _check_timestamp(obj[name], name) if obj.get(name) is not None else None
        if bad_time:
            return dead(codes.BAD_TIMESTAMP, bad_time, text, review_id)
    for name in ("body", "title"):
        value = obj.get(name)
        if isinstance(value, str) and len(value) > max_text_chars:
            return dead(codes.TOO_LARGE, f"{name} has {len(value)} characters; the limit is "
                        f"{max_text_chars} (--max_text_chars)", text, review_id)
    review = Review.from_dict(obj)
    created_at, adjustment = plausible_created_at(review.created_at, review.received_at, receipt_at or ingested_at,
                                                  earliest=earliest_created_at, max_clock_skew_s=max_clock_skew_s)
    if adjustment:
        return Item(review=dataclasses.replace(review, created_at=created_at), ref=raw.ref, ingested_at=ingested_at,
                    created_at_given=review.created_at, created_at_adjustment=adjustment)
    return Item(review=review, ref=raw.ref, ingested_at=ingested_at)


class _ParseFn(beam.DoFn):
    def __init__(self, run_id: str, max_text_chars: int, earliest_created_at: str, max_clock_skew_s: float):
        self._run_id = run_id
        self._max = max_text_chars
        self._earliest = earliest_created_at
        self._skew = max_clock_skew_s

    def setup(self):
        schemas.validator("review.schema.json")  # compile once per worker

    def process(self, raw: RawLine, timestamp=beam.DoFn.TimestampParam) -> Iterable:
        try:
            # streaming lines carry their Pub/Sub publish time (platform-stamped receipt); files none
            receipt_at = (timestamp.to_rfc3339() if timestamp is not None and MIN_TIMESTAMP < timestamp < MAX_TIMESTAMP
                          else None)
            result = parse_line(raw, run_id=self._run_id, ingested_at=utc_now(), max_text_chars=self._max,
                                earliest_created_at=self._earliest, max_clock_skew_s=self._skew,
                                receipt_at=receipt_at)
            if isinstance(result, Item) and result.created_at_adjustment:
                Metrics.counter(STAGE, f"created_at_{result.created_at_adjustment}").inc()
            if isinstance(result, Item) and receipt_at:
                result = result.replace(receipt_at=receipt_at)
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

    def __init__(self, run_id: str, max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
                 earliest_created_at: str = DEFAULT_EARLIEST_CREATED_AT,
                 max_clock_skew_s: float = DEFAULT_MAX_CLOCK_SKEW_S):
        super().__init__()
        self._run_id = run_id
        self._max = max_text_chars
        self._earliest = earliest_created_at
        self._skew = max_clock_skew_s

    def expand(self, lines):
        fn = _ParseFn(self._run_id, self._max, self._earliest, self._skew)
        out = lines | "ParseLine" >> beam.ParDo(fn).with_outputs(
            DEAD, main="items")
        return out.items, out[DEAD]
