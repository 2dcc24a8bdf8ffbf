"""Redelivery stage: the same ``review_id`` delivered twice is one review.

Inputs are grouped by ``review_id``; the delivery read first (lowest input URI, then line number)
is kept, which is the same on every re-run over the same input, and every other delivery becomes
a ``redelivery`` dead letter pointing at the kept one. Because redeliveries are removed here,
before detection, a review can never be found a near-duplicate of itself.
"""
from __future__ import annotations

import apache_beam as beam
from apache_beam.metrics import Metrics

from schemas import codes
from schemas.records import DeadLetter, Item
from pipeline.transforms.common import review_json

DEAD = "dead_letter"
STAGE = "redelivery"


class _KeepFirstFn(beam.DoFn):
    def __init__(self, run_id: str):
        self._run_id = run_id
        self._redelivered = Metrics.counter(STAGE, "redeliveries")

    def process(self, keyed):
        review_id, items = keyed
        ordered = sorted(items, key=lambda it: (it.ref.uri, it.ref.line))
        kept = ordered[0]
        yield kept
        for other in ordered[1:]:
            self._redelivered.inc()
            same = other.review == kept.review
            yield beam.pvalue.TaggedOutput(DEAD, DeadLetter(
                error_code=codes.REDELIVERY,
                error=(f"review_id {review_id!r} was already delivered at {kept.ref.uri}:{kept.ref.line}; "
                       + ("identical content" if same else "content differs, the first delivery is kept")),
                raw=review_json(other), source=other.ref, stage=STAGE, run_id=self._run_id,
                review_id=review_id))


class DropRedeliveries(beam.PTransform):
    """PCollection[Item] → (unique items, redelivery dead letters)."""

    def __init__(self, run_id: str):
        super().__init__()
        self._run_id = run_id

    def expand(self, items):
        out = (items
               | "KeyByReviewId" >> beam.Map(lambda it: (it.review.review_id, it))
               | "GroupByReviewId" >> beam.GroupByKey()
               | "KeepFirstDelivery" >> beam.ParDo(_KeepFirstFn(self._run_id)).with_outputs(DEAD, main="items"))
        return out.items, out[DEAD]
