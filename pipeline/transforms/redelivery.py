"""Redelivery stage: the same ``review_id`` delivered twice is one review.

Inputs are grouped by ``review_id``; the delivery read first (lowest input URI, then line number)
is kept, which is the same on every re-run over the same input, and every other delivery becomes
a ``redelivery`` dead letter pointing at the kept one. Because redeliveries are removed here,
before detection, a review can never be found a near-duplicate of itself.

Streaming (:class:`StreamingDropRedeliveries`) has no "lowest input line" to prefer: reviews are
keyed by ``review_id`` into a stateful DoFn and the first delivery *processed* wins; later ones
within the retention become ``redelivery`` dead letters naming the first delivery's message.
"""
from __future__ import annotations

import hashlib

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.metrics import Metrics
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.utils.timestamp import Duration

from pipeline.transforms.common import review_json
from schemas import codes
from schemas.records import DeadLetter

DEAD = "dead_letter"
STAGE = "redelivery"


def _difference(same: bool, other_author: bool, conflicts) -> str:
    """What differs between a redelivery and the kept delivery, for the dead letter. Another author
    under the same review_id is not a redelivery but a conflict (a broken or forged id): counted
    (``redelivery/review_id_conflicts``) and said, so a moderator can compare the two; the first
    delivery is still the one decided."""
    if same:
        return "identical content"
    if other_author:
        conflicts.inc()
        return ("ANOTHER AUTHOR under the same review_id (a conflict, not a redelivery: compare the two); "
                "the first delivery is kept")
    return "content differs, the first delivery is kept"


class _KeepFirstFn(beam.DoFn):
    def __init__(self, run_id: str):
        self._run_id = run_id
        self._redelivered = Metrics.counter(STAGE, "redeliveries")
        self._conflicts = Metrics.counter(STAGE, "review_id_conflicts")

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
                       + _difference(same, other.review.author_id != kept.review.author_id, self._conflicts)),
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


# -- streaming ----------------------------------------------------------------------------------

class FirstDeliveryFn(beam.DoFn):
    """Keyed by review_id: the first delivery passes; later ones become ``redelivery`` dead letters.

    State per review: the first delivery's (message id, 8-byte content digest, 8-byte author digest);
    an event-time timer clears it ``retention`` after the review's event time.
    """

    FIRST = ReadModifyWriteStateSpec("first", PickleCoder())
    GC = TimerSpec("gc", TimeDomain.WATERMARK)

    def __init__(self, run_id: str, retention_s: int):
        self._run_id = run_id
        self._retention = retention_s
        self._redelivered = Metrics.counter(STAGE, "redeliveries")
        self._conflicts = Metrics.counter(STAGE, "review_id_conflicts")

    def process(self, keyed, ts=beam.DoFn.TimestampParam, first=beam.DoFn.StateParam(FIRST),
                gc=beam.DoFn.TimerParam(GC)):
        review_id, item = keyed
        digest = hashlib.sha256(review_json(item).encode("utf-8")).digest()[:8]
        author = hashlib.sha256(item.review.author_id.encode("utf-8")).digest()[:8]
        kept = first.read()
        if kept is None:
            first.write((item.ref.line, digest, author))
            gc.set(ts + Duration(seconds=self._retention))
            yield item
            return
        self._redelivered.inc()
        line, kept_digest = kept[:2]
        other_author = len(kept) > 2 and kept[2] != author   # state from before authors were kept: unknown
        yield beam.pvalue.TaggedOutput(DEAD, DeadLetter(
            error_code=codes.REDELIVERY,
            error=(f"review_id {review_id!r} was already delivered as message {line} of {item.ref.uri}; "
                   + _difference(digest == kept_digest, other_author, self._conflicts)),
            raw=review_json(item), source=item.ref, stage=STAGE, run_id=self._run_id,
            review_id=review_id))

    @on_timer(GC)
    def expire(self, first=beam.DoFn.StateParam(FIRST)):
        first.clear()


class StreamingDropRedeliveries(beam.PTransform):
    """PCollection[Item] → (first deliveries, redelivery dead letters); the streaming DropRedeliveries."""

    def __init__(self, run_id: str, retention_s: int):
        super().__init__()
        self._run_id = run_id
        self._retention = retention_s

    def expand(self, items):
        out = (items
               | "KeyByReviewId" >> beam.Map(lambda it: (it.review.review_id, it))
               | "KeepFirstDelivery" >> beam.ParDo(FirstDeliveryFn(self._run_id, self._retention))
               .with_outputs(DEAD, main="items"))
        return out.items, out[DEAD]
