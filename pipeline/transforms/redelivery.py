"""Redelivery stage: the same ``review_id`` delivered twice is one review.

Inputs are grouped by ``review_id``; the delivery read first (lowest input URI, then line number)
is kept, which is the same on every re-run over the same input, and every other delivery by the
same author becomes a ``redelivery`` dead letter pointing at the kept one. Because redeliveries are
removed here, before detection, a review can never be found a near-duplicate of itself.

Another *author* under the same id is not a redelivery but a conflict (a broken or forged id, e.g.
through a partner feed). Dropping either review would let whoever delivers first bury the other,
an honest complaint included, so each author's first delivery is decided on its own: the first
delivery keeps the id, the others get :func:`conflict_id` (``<review_id>#conflict-<16 hex of the
author id>``, a form input ids may not take), and all of them carry the reason
``review_id_conflict`` and the given id in provenance (``review_id_given``). Counted in
``redelivery/review_id_conflicts``.

Streaming (:class:`StreamingDropRedeliveries`) has no "lowest input line" to prefer: reviews are
keyed by ``review_id`` into a stateful DoFn (:class:`IdOwnerFn`) whose first author *processed*
keeps the id, and another author's deliveries go on under its ``#conflict-`` id (the first
delivery, already decided, is not flagged); then, keyed by that id, :class:`FirstDeliveryFn` passes
the first delivery and makes later ones within the retention ``redelivery`` dead letters naming it.
"""
from __future__ import annotations

import dataclasses
import hashlib

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.metrics import Metrics
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.utils.timestamp import Duration, Timestamp

from pipeline.transforms.common import KEYED, review_json
from schemas import codes
from schemas.records import CONFLICT_MARK, DeadLetter, author_digest, author_key, conflict_id

DEAD = "dead_letter"
STAGE = "redelivery"


def as_conflict(item, review_id: str, keeps_id: bool):
    """``item`` decided on its own in a review_id conflict (see the module docstring)."""
    review = item.review if keeps_id else dataclasses.replace(
        item.review, review_id=conflict_id(review_id, item.review.author_id))
    return item.replace(review=review, review_id_conflict=review_id)


def _difference(same: bool) -> str:
    """What differs between a redelivery and the kept delivery of the same author, for the dead letter."""
    return "identical content" if same else "content differs, the first delivery is kept"


class _KeepFirstFn(beam.DoFn):
    def __init__(self, run_id: str):
        self._run_id = run_id
        self._redelivered = Metrics.counter(STAGE, "redeliveries")
        self._conflicts = Metrics.counter(STAGE, "review_id_conflicts")

    def process(self, keyed):
        review_id, (items, owners) = keyed
        if not items:
            return   # a stored review's id that no record of this run uses
        owners = {author_key(a) for a in owners}
        # a stored review's author keeps its id; this run's other authors under it are conflicts
        ordered = sorted(items, key=lambda it: (author_key(it.review.author_id) not in owners, it.ref.uri, it.ref.line))
        first_of: dict = {}   # author → that author's first delivery, in input order
        for it in ordered:
            first_of.setdefault(author_key(it.review.author_id), it)
        taken = bool(owners) and next(iter(first_of)) not in owners
        conflict = len(first_of) > 1 or taken
        for n, kept in enumerate(first_of.values()):
            if n or taken:
                self._conflicts.inc()
            yield as_conflict(kept, review_id, keeps_id=n == 0 and not taken) if conflict else kept
        for other in ordered:
            kept = first_of[author_key(other.review.author_id)]
            if other is kept:
                continue
            self._redelivered.inc()
            yield beam.pvalue.TaggedOutput(DEAD, DeadLetter(
                error_code=codes.REDELIVERY,
                error=(f"review_id {review_id!r} was already delivered at {kept.ref.uri}:{kept.ref.line}; "
                       + _difference(other.review == kept.review)),
                raw=review_json(other), source=other.ref, stage=STAGE, run_id=self._run_id,
                review_id=review_id))


def _plain_id_owner(fp):
    """(review_id, author_id) of a stored review that holds a plain id (not a conflict id)."""
    return [] if CONFLICT_MARK in fp.review_id else [(fp.review_id, fp.author_id)]


class DropRedeliveries(beam.PTransform):
    """PCollection[Item] → (unique items, redelivery dead letters).

    ``stored``: the signature store's fingerprints (earlier runs), or None. A review_id an earlier
    run published for one author stays that author's: another author's record under it in this run
    is a conflict (decided under its ``#conflict-`` id, reason ``review_id_conflict``), so a later
    run cannot publish a different review under an honest review's id (a storefront that maps our
    records to its reviews by id would replace the honest one). The stored author's own resend keeps
    the id, as before."""

    def __init__(self, run_id: str, stored=None):
        super().__init__()
        self._run_id = run_id
        self._stored = stored

    def expand(self, items):
        keyed = items | "KeyByReviewId" >> beam.Map(lambda it: (it.review.review_id, it))
        if self._stored is None:
            grouped = (keyed | "GroupByReviewId" >> beam.GroupByKey()
                       | "NoStoredOwners" >> beam.MapTuple(lambda rid, its: (rid, (list(its), ()))))
        else:
            owners = self._stored | "StoredIdOwners" >> beam.FlatMap(_plain_id_owner)
            grouped = (({"items": keyed, "owners": owners}) | "GroupByReviewId" >> beam.CoGroupByKey()
                       | "WithStoredOwners" >> beam.MapTuple(lambda rid, g: (rid, (list(g["items"]), list(g["owners"])))))
        out = grouped | "KeepFirstDelivery" >> beam.ParDo(_KeepFirstFn(self._run_id)).with_outputs(DEAD, main="items")
        return out.items, out[DEAD]


# -- streaming ----------------------------------------------------------------------------------

class IdOwnerFn(beam.DoFn):
    """Keyed by the given review_id: the first author to use the id keeps it; another author's
    delivery goes on under its :func:`conflict_id` (reason ``review_id_conflict``).

    State per id: (8-byte author digest of the id's owner, expiry in µs); an event-time timer clears
    it ``retention`` after the latest event time of any delivery under the id (it moves only later:
    another author's delivery with an earlier event time cannot expire the owner sooner). The state
    does not grow with the number of authors under one id (before session 21 every conflicting
    author was kept in it, each new one rewriting it: quadratic in a flood of authors)."""

    OWNER = ReadModifyWriteStateSpec("owner", PickleCoder())
    GC = TimerSpec("gc", TimeDomain.WATERMARK)

    def __init__(self, retention_s: int):
        self._retention = retention_s
        self._conflicts = Metrics.counter(STAGE, "review_id_conflicts")

    def process(self, keyed, ts=beam.DoFn.TimestampParam, owner=beam.DoFn.StateParam(OWNER),
                gc=beam.DoFn.TimerParam(GC)):
        review_id, item = keyed
        author = author_digest(item.review.author_id)
        expiry = (ts + Duration(seconds=self._retention)).micros
        kept = owner.read()
        if kept is None or expiry > kept[1]:
            gc.set(Timestamp(micros=expiry))
        if kept is None:
            owner.write((author, expiry))
            yield item
            return
        owner.write((kept[0], max(kept[1], expiry)))
        if kept[0] == author:
            yield item
            return
        self._conflicts.inc()
        yield as_conflict(item, review_id, keeps_id=False)

    @on_timer(GC)
    def expire(self, owner=beam.DoFn.StateParam(OWNER)):
        owner.clear()


class FirstDeliveryFn(beam.DoFn):
    """Keyed by the review's id after :class:`IdOwnerFn` (the given id, or an author's conflict id):
    the first delivery passes; later ones become ``redelivery`` dead letters naming it.

    State per id: (message id, 8-byte content digest) of the first delivery; an event-time timer
    clears it ``retention`` after that delivery's event time."""

    FIRST = ReadModifyWriteStateSpec("first", PickleCoder())
    GC = TimerSpec("gc", TimeDomain.WATERMARK)

    def __init__(self, run_id: str, retention_s: int):
        self._run_id = run_id
        self._retention = retention_s
        self._redelivered = Metrics.counter(STAGE, "redeliveries")

    def process(self, keyed, ts=beam.DoFn.TimestampParam, first=beam.DoFn.StateParam(FIRST),
                gc=beam.DoFn.TimerParam(GC)):
        _, item = keyed
        given = item.review_id_conflict or item.review.review_id
        as_given = item if item.review_id_conflict is None or item.review.review_id == given else \
            item.replace(review=dataclasses.replace(item.review, review_id=given))
        raw = review_json(as_given)
        digest = hashlib.sha256(raw.encode("utf-8")).digest()[:8]
        kept = first.read()
        if kept is None:
            first.write((item.ref.line, digest))
            gc.set(ts + Duration(seconds=self._retention))
            yield item
            return
        line, kept_digest = kept[:2]
        self._redelivered.inc()
        yield beam.pvalue.TaggedOutput(DEAD, DeadLetter(
            error_code=codes.REDELIVERY,
            error=(f"review_id {given!r} was already delivered as message {line} of {item.ref.uri}; "
                   + _difference(digest == kept_digest)),
            raw=raw, source=item.ref, stage=STAGE, run_id=self._run_id, review_id=given))

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
               | "KeyByReviewId" >> beam.Map(lambda it: (it.review.review_id, it)).with_output_types(KEYED)
               | "KeepIdOwner" >> beam.ParDo(IdOwnerFn(self._retention))
               | "KeyByDecidedId" >> beam.Map(lambda it: (it.review.review_id, it)).with_output_types(KEYED)
               | "KeepFirstDelivery" >> beam.ParDo(FirstDeliveryFn(self._run_id, self._retention))
               .with_outputs(DEAD, main="items"))
        return out.items, out[DEAD]
