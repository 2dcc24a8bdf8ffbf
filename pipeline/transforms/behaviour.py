"""Behavioural detection as a Beam stage (batch): coordinated groups, author velocity, product bursts.

    items → Event (who, what, when, client; no rating, no text) ─┐
    signature store (earlier runs, within retention) → Event ────┴→ CombineGlobally(list, packed)
      → analyse (pipeline/behaviour/detect.py, numpy) → (review_id, signals) + product alerts
      → joined to the items by review_id with the other detectors' signals (``DetectFakes``)
        → signals["coordinated_group" | "author_velocity" | "product_burst"]

The analysis needs every review in view at once (groups span authors and products), so it runs on
one worker over compact ``Event`` tuples: 608,598 YelpZip reviews take ~14 s and < 1 GB
(``make bench-behaviour``). A campaign spread over several runs is seen because the signature
store's reviews within ``--signature_retention_days`` join as context (they are not decided again).
"""
from __future__ import annotations

import math
import pickle
import sys
import zlib
from typing import List, Optional

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipeline.behaviour.config import BehaviourConfig
from pipeline.behaviour.detect import Event, analyse
from pipeline.timestamps import epoch_seconds
from schemas.records import Item, Signal, author_key

DETECTORS = ("coordinated_group", "author_velocity", "product_burst")


def behaviour_time(review) -> float:
    """When a review was posted, for the behavioural detectors: the platform's ``received_at`` when
    the review carries one, else its ``created_at``. ``created_at`` is set by the author's device:
    accounts that review a victim's products days later could date their reviews into the victim's
    window (and first) to build a "group" around honest reviews; ``received_at`` they cannot set."""
    return epoch_seconds(review.received_at or review.created_at)


def to_event(item: Item) -> Event:
    review = item.review
    client = review.client
    return Event(review.review_id, review.author_id, review.product_id, behaviour_time(review),
                 client.ip_prefix if client else None, client.device_id if client else None, False,
                 review.received_at is not None, (math.inf, item.ref.uri, item.ref.line))


def stored_event(fp) -> Event:
    """A signature-store fingerprint as context (an earlier run's review), at the time its own run
    used (:func:`behaviour_time`): its received_at when it had one (a time the author cannot set,
    ``trusted``), else its created_at. Before, every stored review was at its created_at and
    untrusted, so it never came "before" a review of this run with received_at: a campaign of
    accounts with received_at spread over daily runs escaped (helper round 3)."""
    return Event(fp.review_id, fp.author_id, fp.product_id, float(fp.arrival_ts if fp.received else fp.created_ts),
                 None, None, True, fp.received, (float(fp.arrival_ts), fp.input_uri, fp.input_line))


class CollectEventsFn(beam.CombineFn):
    """Every event in one list (what ``combiners.ToList`` gives), held packed while it is gathered:
    chunks of ``CHUNK`` events, pickled as plain tuples and deflated (~40 bytes an event instead of
    ~310 as a decoded ``Event``). The combine is lifted into the stage that reads the items, where
    the DirectRunner holds everything that stage makes until it ends."""

    CHUNK = 4096

    def create_accumulator(self):
        return [], []   # packed chunks, events not packed yet

    def add_input(self, acc, event):
        chunks, pending = acc
        pending.append(tuple(event))
        if len(pending) >= self.CHUNK:
            return self.compact(acc)
        return acc

    def compact(self, acc):
        chunks, pending = acc
        if pending:
            chunks = chunks + [zlib.compress(pickle.dumps(pending, protocol=pickle.HIGHEST_PROTOCOL), 1)]
        return chunks, []

    def merge_accumulators(self, accs):
        chunks, pending = [], []
        for c, p in accs:
            chunks += c
            pending += p
        return chunks, pending

    def extract_output(self, acc):
        chunks, pending = acc
        return [_unpacked(t) for chunk in chunks for t in pickle.loads(zlib.decompress(chunk))] + \
            [_unpacked(t) for t in pending]


def _unpacked(t: tuple) -> Event:
    """An event from its packed tuple; the input URI of ``seen`` interned (one string per file, not per review)."""
    e = Event(*t)
    return e._replace(seen=(e.seen[0], sys.intern(e.seen[1]), e.seen[2])) if e.seen else e


def _seen_key(e: Event):
    return e.seen if e.seen is not None else (math.inf, "\uffff", 1 << 62)


def _one_event(copies: List[Event]) -> Event:
    """One event for the copies of one review id: this run's wins over the store's (a resend or a
    retried run), placed where the review was first seen when a stored copy is the same author's
    review of the same product (session 21: a resent honest review took this run's place, after
    accounts stored in between, and became their group's later review; an account that had stored a
    review of another product under the id must not take that earlier place for a new review); of
    stored copies alone, the one seen first."""
    current = [e for e in copies if not e.context]
    stored = sorted((e for e in copies if e.context), key=_seen_key)
    if not current:
        return stored[0]
    keep = current[0]
    same = [e for e in stored if e.product_id == keep.product_id and author_key(e.author_id) == author_key(keep.author_id)]
    if same and _seen_key(same[0]) < _seen_key(keep):
        return keep._replace(seen=same[0].seen)
    return keep


def _analyse_all(events, cfg: BehaviourConfig):
    by_id: dict = {}   # review id → its event, or a list of its copies (a list only when there are several)
    for e in events:
        prev = by_id.get(e.review_id)
        by_id[e.review_id] = e if prev is None else (prev + [e] if isinstance(prev, list) else [prev, e])
    events = sorted((_one_event(v) if isinstance(v, list) else v for v in by_id.values()),
                    key=lambda e: (e.ts, e.review_id))
    res = analyse(events, cfg)
    for e in events:
        if e.context:
            continue
        group = dict(res.coordinated_group[e.review_id])
        if e.review_id in res.shared_client:
            group["shared_client"] = res.shared_client[e.review_id]
        values = {"coordinated_group": group, "author_velocity": res.author_velocity[e.review_id],
                  "product_burst": res.product_burst[e.review_id]}
        signals = {}
        for name in DETECTORS:
            v = values[name]
            signals[name] = Signal("scored", cfg.version, v)
            if v.get("evidence") or v.get("burst"):
                Metrics.counter("behaviour", f"{name}_flagged").inc()
        yield beam.pvalue.TaggedOutput("signals", (e.review_id, signals))
    current = {e.review_id for e in events if not e.context}
    for alert in res.product_alerts:
        in_run = [r for r in alert["review_ids"] if r in current]
        if in_run:  # an alert about this run's reviews, not only earlier runs'
            yield beam.pvalue.TaggedOutput("alerts", {**alert, "reviews_in_this_run": len(in_run)})


def sample_signals(cfg: BehaviourConfig) -> List[dict]:
    """Typical signals of a few ordinary reviews: what ``DetectFakes`` makes its packing dictionary
    of (``schemas.records.Packer``); they change sizes, never values."""
    events = [Event(f"review-{i}", f"author-{i % 2}", "product-1", 1.77e9 + 3600.0 * i) for i in range(4)]
    return [out.value[1] for out in _analyse_all(events, cfg) if out.tag == "signals"]


def not_run(version: str) -> dict:
    """The three signals of a review the analysis did not cover."""
    return {name: Signal("not_run", version, note="no behavioural analysis for this review") for name in DETECTORS}


class BehaviourSignals(beam.PTransform):
    """PCollection[Item] → (PCollection[(review_id, {detector: Signal})] for this run's reviews,
    product alerts), for the caller to join (``DetectFakes`` joins every detector's signals at once).

    ``stored``: the signature store's fingerprints (earlier runs), or None."""

    def __init__(self, cfg: BehaviourConfig, stored: Optional[beam.PCollection] = None):
        super().__init__()
        self._cfg = cfg
        self._stored = stored

    def expand(self, items):
        cfg = self._cfg
        events = items | "ToEvents" >> beam.Map(to_event)
        if self._stored is not None:
            newest = (events | "EventTs" >> beam.Map(lambda e: e.ts)
                      | "NewestReview" >> beam.CombineGlobally(lambda ts: max(ts, default=0.0)))
            window = cfg.retention_days * 86400
            context = (self._stored
                       | "StoredWithinRetention" >> beam.Filter(
                           lambda f, newest_ts: f.created_ts >= newest_ts - window, beam.pvalue.AsSingleton(newest))
                       | "StoredToEvents" >> beam.Map(stored_event))
            events = (events, context) | "WithStore" >> beam.Flatten()
        results = (events
                   | "AllEvents" >> beam.CombineGlobally(CollectEventsFn())
                   | "Analyse" >> beam.FlatMap(_analyse_all, cfg).with_outputs("signals", "alerts"))
        return results.signals, results.alerts


class DetectBehaviour(BehaviourSignals):
    """PCollection[Item] → (PCollection[Item] with the three behavioural signals, product alerts)
    (the detectors alone, for tests and ``make bench-behaviour``; the job joins all detectors at
    once in ``DetectFakes``).

    ``stored``: the signature store's fingerprints (earlier runs), or None."""

    def expand(self, items):
        version = self._cfg.version
        signals, alerts = items | "Signals" >> BehaviourSignals(self._cfg, self._stored)

        out = ({"item": items | "ItemById" >> beam.Map(lambda it: (it.review.review_id, it)), "signals": signals}
               | "JoinSignals" >> beam.CoGroupByKey()
               | "AttachSignals" >> beam.ParDo(_AttachFn(version)))
        return out, alerts


class _AttachFn(beam.DoFn):
    """(review_id, {"item": items, "signals": the analysis's signals}) → each item with them (or not_run)."""

    def __init__(self, version: str):
        self._version = version

    def process(self, keyed):
        _, grouped = keyed
        found = list(grouped["signals"])
        for item in grouped["item"]:
            signals = dict(item.signals)
            signals.update(found[0] if found else not_run(self._version))
            yield item.replace(signals=signals)
