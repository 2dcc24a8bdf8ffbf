"""Near-duplicate detection across time, for streaming: a stateful transform keyed by LSH bucket.

    items ─ Fingerprint ─┬─ too short ─────────────────────────────────────────→ not_applicable
                         └─ eligible ─ KeyByBand ─ BandBucket (state: members, GC timer)
                                     └─ review id ─ CollectBands (state: item + one result per band)
                                                    → signal from the review and its matches

Each band bucket keeps the fingerprints of the reviews that fell into it (no text, no signature:
review id, time, author, product, channel, shingle hashes) for ``retention_days`` (default 90) of
event time. An event-time timer prunes members older than the retention period; a new review is
compared only with members written within the retention period of it (either side, as late data
arrives out of order), and never with an earlier
delivery of itself. The bucket compares with at most ``max_leaders`` earliest members per review,
so a hot bucket costs linear time, as in batch.

Differences from batch (pipeline/transforms/dedup.py): a review is matched against what arrived
before it, so its "cluster" is itself plus the earlier members it matches directly. The canonical
member (the first posting) is the first of those to arrive, as in batch: by the platform's
``received_at`` when the reviews carry one, else the Pub/Sub publish time (``Item.receipt_at``),
else in processing order (a member is stamped with the time it was added to its bucket; the
review being decided arrives "now"), never by ``created_at``. Retention compares anchors (the later of created_at and the event time, which
the stream bounds), so an old ``created_at`` cannot hide a copy from the review it copies. Later
copies do not change the signal already emitted for an earlier review (a stream cannot take back
what it published; the policy acts on the copies).

State per retained review: one entry in each of ``bands`` buckets (16 at the defaults), each the
pickled member of ~150 bytes plus 4 bytes per shingle, measured in tests/test_dedup_stream.py.
"""
from __future__ import annotations

import math
import time
from typing import List

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.coders import PickleCoder
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import (BagStateSpec, ReadModifyWriteStateSpec, TimerSpec,
                                              on_timer)
from apache_beam.utils.timestamp import Timestamp

from pipeline.dedup import clusters as cl
from pipeline.dedup.config import DedupConfig
from pipeline.transforms.common import KEYED, stage_failed
from pipeline.transforms.dedup import DETECTOR, TOO_SHORT_NOTE, dedup_row
from schemas.records import CONFLICT_MARK, Item, Signal, review_identity

ELIGIBLE = "eligible"


class _FingerprintOneFn(beam.DoFn):
    """Item → (item, fingerprint) on the main output if eligible, a finished item otherwise."""

    def __init__(self, cfg: DedupConfig):
        self._cfg = cfg

    def setup(self):
        self._signer = self._cfg.signer()

    def process(self, item: Item):
        fp = cl.fingerprints([dedup_row(item)], self._cfg, self._signer)[0]
        if not cl.eligible(fp, self._cfg):
            signal = Signal("not_applicable", self._cfg.version, {"shingles": fp.n_shingles}, note=TOO_SHORT_NOTE)
            yield item.replace(signals={**item.signals, DETECTOR: signal})
            return
        yield beam.pvalue.TaggedOutput(ELIGIBLE, (item, fp))


class _BandKeysFn(beam.DoFn):
    def __init__(self, cfg: DedupConfig):
        self._cfg = cfg

    def setup(self):
        self._signer = self._cfg.signer()

    def process(self, item_fp):
        _, fp = item_fp
        light = fp._replace(signature=b"")  # the bucket never needs the signature again
        for key in self._signer.band_keys(fp.sig()):
            yield key, light


class BandBucketFn(beam.DoFn):
    """Keyed by band key: compares a new member with the bucket's retained members, then keeps it."""

    MEMBERS = BagStateSpec("members", PickleCoder())
    NEXT_GC = ReadModifyWriteStateSpec("next_gc", PickleCoder())
    GC = TimerSpec("gc", TimeDomain.WATERMARK)

    def __init__(self, cfg: DedupConfig):
        self._cfg = cfg
        self._window = cfg.retention_days * 86400
        self._expired = Metrics.counter("dedup_stream", "expired_members")

    def process(self, element, timestamp=beam.DoFn.TimestampParam, members=beam.DoFn.StateParam(MEMBERS),
                next_gc=beam.DoFn.StateParam(NEXT_GC), gc=beam.DoFn.TimerParam(GC)):
        """One result per review and band, whatever happens: ``(matches, first arrival)``, or
        ``(None, note)`` when this bucket failed on the review (it then goes on not_run)."""
        _, fp = element
        try:
            result, keep = self._compare(fp, timestamp, members)
        except Exception as exn:  # noqa: BLE001 - one review's failure costs only its signal
            yield fp.review_id, ("band", (None, stage_failed("dedup_band_bucket", exn, fp.review_id)))
            return
        yield fp.review_id, ("band", result)
        if keep is not None:
            try:
                anchor, fp = keep
                members.add((anchor, fp))
                expiry = anchor + self._window
                current = next_gc.read()
                if current is None or expiry < current:
                    gc.set(Timestamp(seconds=expiry))   # the timer first: next_gc never names an unset timer
                    next_gc.write(expiry)
            except Exception as exn:  # noqa: BLE001 - the review is decided; later ones are not compared with it
                stage_failed("dedup_band_bucket", exn, fp.review_id)

    def _compare(self, fp, timestamp, members):
        """((matches, first arrival), (anchor, member) to keep or None) for one new fingerprint."""
        # Bag entries are (anchor, member): retention runs from the later of the review's own time
        # and its event time in the stream, so an import of old reviews is kept for the period too.
        retained = sorted(members.read(), key=lambda am: am[1].order)  # first arrived first
        mine = fp.hashes()
        my_anchor = max(fp.created_ts, timestamp.micros / 1e6)
        matches: List[cl.Fingerprint] = []
        already_here = False
        # the same review under its conflict id and its plain id: only where one of them has the mark
        # (a hash per retained member otherwise, for every new review)
        my_identity = review_identity(fp.review_id, fp.author_id)
        conflicted = CONFLICT_MARK in fp.review_id
        first_arrival = None  # when an earlier delivery of this review arrived
        compared = 0
        for anchor, member in retained:
            if member.review_id == fp.review_id or (
                    (conflicted or CONFLICT_MARK in member.review_id)
                    and review_identity(member.review_id, member.author_id) == my_identity):
                already_here = True  # a redelivery (or it under its conflict id): never its own duplicate
                first_arrival = member.arrival_ts
                continue
            if abs(anchor - my_anchor) > self._window:
                # only reviews within the retention period of each other are compared; the anchors
                # are bounded by the stream's event time, so a created_at set years back cannot
                # take a copy out of reach of the review it copies
                continue
            if compared >= self._cfg.max_leaders:
                break  # the bucket's earliest members are its leaders: linear cost in a hot bucket
            compared += 1
            if cl.exact_jaccard(member.hashes(), mine) >= self._cfg.threshold:
                matches.append(member._replace(stored=True))
        if already_here:
            return (matches, first_arrival), None
        if not math.isfinite(fp.arrival_ts):
            # no platform received_at: it arrived now, so whatever comes later is later
            fp = fp._replace(arrival_ts=time.time())
        return (matches, first_arrival), (my_anchor, fp)

    @on_timer(GC)
    def expire(self, fired=beam.DoFn.TimestampParam, members=beam.DoFn.StateParam(MEMBERS),
               next_gc=beam.DoFn.StateParam(NEXT_GC), gc=beam.DoFn.TimerParam(GC)):
        now = fired.micros / 1e6
        current = list(members.read())
        keep = [(anchor, m) for anchor, m in current if anchor + self._window > now]
        self._expired.inc(len(current) - len(keep))
        members.clear()
        next_gc.clear()
        for entry in keep:
            members.add(entry)
        if keep:
            expiry = min(anchor for anchor, _ in keep) + self._window
            next_gc.write(expiry)
            gc.set(Timestamp(seconds=expiry))


class CollectBandsFn(beam.DoFn):
    """Keyed by review id: waits for the item and one result per band, then emits the item with its signal."""

    ITEM = ReadModifyWriteStateSpec("item", PickleCoder())
    RESULTS = BagStateSpec("results", PickleCoder())
    CLEANUP = TimerSpec("cleanup", TimeDomain.WATERMARK)
    CLEANUP_AFTER_S = 86400  # a review whose band results never all arrive goes on not_run after a day

    def __init__(self, cfg: DedupConfig):
        self._cfg = cfg
        self._bands = cfg.bands_rows[0]

    def process(self, element, timestamp=beam.DoFn.TimestampParam, item_state=beam.DoFn.StateParam(ITEM),
                results=beam.DoFn.StateParam(RESULTS), cleanup=beam.DoFn.TimerParam(CLEANUP)):
        _, (kind, payload) = element
        try:
            if kind == "item":
                item_state.write(payload)
                cleanup.set(timestamp + self.CLEANUP_AFTER_S)
            else:
                results.add(payload)
                cleanup.set(timestamp + self.CLEANUP_AFTER_S)   # a result that comes after its review went on is cleared too
            stored = item_state.read()
            got = list(results.read())
            if stored is None or len(got) < self._bands:
                return
            item, fp = stored
            signal = self._signal(fp, got)
        except Exception as exn:  # noqa: BLE001 - one review's failure costs only its signal
            note = stage_failed("dedup_collect_bands", exn, element[0])
            item = payload[0] if kind == "item" else (item_state.read() or (None,))[0]
            if item is None:
                return   # the review itself has not come yet: it goes on when it does, or at cleanup
            signal = Signal("not_run", self._cfg.version, note=note)
        item_state.clear()
        results.clear()
        yield item.replace(signals={**item.signals, DETECTOR: signal})

    def _signal(self, fp, got) -> Signal:
        failed = [first for band, first in got if band is None]
        if failed:
            return Signal("not_run", self._cfg.version, note=failed[0])
        matched = {m.review_id: m for band, _ in got for m in band}
        earlier = [first for _, first in got if first is not None]
        if earlier:  # delivered again: it arrived when it first did
            fp = fp._replace(arrival_ts=min([fp.arrival_ts] + earlier))
        if matched:
            values = cl.describe_cluster([fp] + list(matched.values()), self._cfg)[fp.review_id]
        else:
            values = cl.unclustered_values(fp)
        return Signal("scored", self._cfg.version, values)

    @on_timer(CLEANUP)
    def cleanup(self, item_state=beam.DoFn.StateParam(ITEM), results=beam.DoFn.StateParam(RESULTS)):
        """A review still waiting a day after it came (a band result never arrived) is not dropped:
        it goes on, near_duplicate not_run."""
        stored = item_state.read()
        item_state.clear()
        results.clear()
        if stored is not None:
            Metrics.counter("dedup_collect_bands", "incomplete_at_cleanup").inc()
            item = stored[0]
            yield item.replace(signals={**item.signals, DETECTOR: Signal(
                "not_run", self._cfg.version, note="near-duplicate check incomplete: a band result never arrived")})


class StreamingNearDuplicates(beam.PTransform):
    """PCollection[Item] (event time = created_at) → PCollection[Item] with ``signals["near_duplicate"]``."""

    def __init__(self, cfg: DedupConfig):
        super().__init__()
        self._cfg = cfg

    def expand(self, items):
        cfg = self._cfg
        out = items | "Fingerprint" >> beam.ParDo(_FingerprintOneFn(cfg)).with_outputs(ELIGIBLE, main="done")
        eligible = out[ELIGIBLE]
        band_results = (eligible
                        | "KeyByBand" >> beam.ParDo(_BandKeysFn(cfg)).with_output_types(KEYED)
                        | "BandBucket" >> beam.ParDo(BandBucketFn(cfg)).with_output_types(KEYED))
        item_side = eligible | "KeyByReviewId" >> beam.Map(lambda i_fp: (i_fp[1].review_id, ("item", i_fp))).with_output_types(KEYED)
        scored = ((band_results, item_side) | "Both" >> beam.Flatten()
                  | "CollectBands" >> beam.ParDo(CollectBandsFn(cfg)))
        return (out.done, scored) | "AllItems" >> beam.Flatten()
