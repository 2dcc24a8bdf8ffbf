"""What every stage after parsing shares: turning a stage's failure on one record into a dead letter."""
from __future__ import annotations

import json
from typing import Callable, Tuple

import apache_beam as beam
from apache_beam.metrics import Metrics

from schemas import codes
from schemas.records import DeadLetter, Item


def review_json(item: Item) -> str:
    """The record as parsed (not the byte-exact line, which is not kept past parsing)."""
    import dataclasses
    return json.dumps(dataclasses.asdict(item.review), ensure_ascii=False, sort_keys=True)


def failure_to_dead_letter(stage: str, run_id: str):
    """Maps a ``with_exception_handling`` bad output (item, (type, repr, traceback)) to a DeadLetter."""

    def convert(bad) -> DeadLetter:
        element, (exc_type, exc_repr, _tb) = bad
        item = getattr(element, "item", element)  # stages after Decide carry Decided(item, ...)
        Metrics.counter(stage, "internal_error").inc()
        name = getattr(exc_type, "__name__", str(exc_type))
        return DeadLetter(error_code=codes.INTERNAL_ERROR,
                          error=f"stage '{stage}' failed: {name}: {exc_repr}"[:2000],
                          raw=review_json(item), source=item.ref, stage=stage, run_id=run_id,
                          review_id=item.review.review_id)
    return convert


def safe_map(pcoll, label: str, fn: Callable[[Item], Item], stage: str, run_id: str) -> Tuple:
    """Applies ``fn`` per item; an exception sends that one item to dead letters, never the job down."""
    good, bad = pcoll | label >> beam.Map(fn).with_exception_handling()
    dead = bad | f"{label}Failures" >> beam.Map(failure_to_dead_letter(stage, run_id))
    return good, dead
