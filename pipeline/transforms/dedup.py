"""Near-duplicate detection as Beam transforms (batch).

    items → Fingerprint (batched MinHash) ─┬─ eligible → KeyByBand (ids) → GroupByKey → shared buckets
                                           │     → join members → GroupByKey(band) → BucketEdges
    signature store (earlier runs) ────────┘        → CombineGlobally(edges) → ConnectedComponents
      → GroupByKey(component) → DescribeCluster → join back to items by review_id → signal

LSH is a key and a GroupByKey, not an in-memory index, so the work spreads over workers; a hot
bucket costs time linear in its size (see ``clusters.bucket_edges``). Connected components run
on one worker over the *edges* only (pairs that passed the threshold), which are few next to the
reviews. The signal written per review is ``signals.near_duplicate`` (see docs/dedup.md).
"""
from __future__ import annotations

import logging
from typing import Optional

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipeline.dedup import clusters as cl
from pipeline.dedup.config import DedupConfig
from schemas.records import Item, Signal

LOG = logging.getLogger(__name__)
DETECTOR = "near_duplicate"
TOO_SHORT_NOTE = "too little text for similarity to be evidence (minimum-text rule)"


def dedup_row(item: Item) -> dict:
    review = item.review
    source = review.source
    return {"review_id": review.review_id, "created_at": review.created_at, "author_id": review.author_id,
            "product_id": review.product_id, "channel": source.channel if source else None,
            "partner": source.partner if source else None, "text": item.clean_body or "",
            # the platform's receipt orders clusters: the review's received_at, else the transport's
            # (Pub/Sub publish time in streaming); files have none (then input order)
            "language": item.language, "received_at": review.received_at or item.receipt_at, "uri": item.ref.uri,
            "line": item.ref.line}


class _FingerprintFn(beam.DoFn):
    def __init__(self, cfg: DedupConfig):
        self._cfg = cfg

    def setup(self):
        self._signer = self._cfg.signer()

    def process(self, batch):
        for fp in cl.fingerprints(batch, self._cfg, self._signer):
            yield fp


class _BandIdsFn(beam.DoFn):
    """Fingerprint → (band key, review id) per band: what finding the shared buckets needs, no more."""

    def __init__(self, cfg: DedupConfig):
        self._cfg = cfg

    def setup(self):
        self._signer = self._cfg.signer()

    def process(self, fp: cl.Fingerprint):
        review_id = fp.review_id
        for key in self._signer.band_keys(fp.sig()):
            yield key, review_id


def _shared_bucket_members(keyed):
    """(band key, review ids) → (review id, band key) for each member of a bucket of ≥ 2 reviews.

    A bucket with one review (nearly all of them) makes no candidate pair, so its members are not
    sent on: only reviews that share a bucket go to the second, full grouping with shingle hashes."""
    key, review_ids = keyed
    unique = set(review_ids)
    if len(unique) > 1:
        for review_id in sorted(unique):
            yield review_id, key


def _members_to_shared_buckets(keyed):
    """(review id, {"fp": band members, "band": shared band keys}) → (band key, band member) per key."""
    _, grouped = keyed
    keys = list(grouped["band"])
    if not keys:
        return
    for member in grouped["fp"]:  # this run's review and the store's copy of it, if any: as before
        for key in keys:
            yield key, member


class _BucketEdgesFn(beam.DoFn):
    def __init__(self, cfg: DedupConfig):
        self._cfg = cfg
        self._hot = Metrics.counter("dedup", "hot_buckets")
        self._overflow = Metrics.counter("dedup", "hot_bucket_members_without_leader")
        self._largest = Metrics.distribution("dedup", "bucket_size")

    def process(self, keyed):
        _, members = keyed
        members = list(members)
        self._largest.update(len(members))
        if len(members) > self._cfg.all_pairs_bucket:
            self._hot.inc()
        edges, overflow = cl.bucket_edges(members, self._cfg)
        if overflow:
            self._overflow.inc(overflow)
        yield from edges


def _assign(edges):
    roots = cl.components(edges)
    for review_id, root in roots.items():
        yield review_id, root


def _prefer_current(keyed):
    review_id, (fps, roots) = keyed
    if not roots:
        return
    fps = sorted(fps, key=lambda f: f.stored)  # this run's fingerprint wins over the store's copy
    if fps:  # ... but it arrived when it was first seen, possibly by an earlier run
        yield roots[0], fps[0]._replace(arrival_ts=min(f.arrival_ts for f in fps))


def _by_id(fp: cl.Fingerprint):
    """(review_id, fingerprint without its MinHash signature): after the band keys nothing reads the
    signature (512 bytes a review), so the joins that wait for the clusters do not carry it."""
    return fp.review_id, fp._replace(signature=b"")


def _describe(keyed, cfg: DedupConfig):
    _, members = keyed
    for review_id, values in cl.describe_cluster(list(members), cfg).items():
        yield review_id, values


class _AttachSignalFn(beam.DoFn):
    def __init__(self, cfg: DedupConfig):
        self._cfg = cfg
        self._version = cfg.version
        self._patterns = {}

    def process(self, keyed):
        _, grouped = keyed
        for item in grouped["item"]:
            fps = list(grouped["fp"])
            values = list(grouped["cluster"])
            fp = fps[0] if fps else None
            if fp is None:
                signal = Signal("not_run", self._version, note="no fingerprint")
            elif not cl.eligible(fp, self._cfg):
                signal = Signal("not_applicable", self._version, {"shingles": fp.n_shingles}, note=TOO_SHORT_NOTE)
            else:
                signal = Signal("scored", self._version, values[0] if values else cl.unclustered_values(fp))
            pattern = signal.values.get("pattern", signal.status)
            Metrics.counter("dedup", f"pattern_{pattern}").inc()
            yield item.replace(signals={**item.signals, DETECTOR: signal})


class DetectNearDuplicates(beam.PTransform):
    """PCollection[Item] → PCollection[Item] with ``signals["near_duplicate"]``.

    Returns (items, fingerprints of this run) so the caller can append them to the signature store.
    """

    def __init__(self, cfg: DedupConfig, stored: Optional[beam.PCollection] = None):
        super().__init__()
        self._cfg = cfg
        self._stored = stored

    def expand(self, items):
        cfg = self._cfg
        fps = (items
               | "ToRows" >> beam.Map(dedup_row)
               | "Batch" >> beam.BatchElements(min_batch_size=64, max_batch_size=1024)
               | "Fingerprint" >> beam.ParDo(_FingerprintFn(cfg)))
        candidates = fps
        if self._stored is not None:
            # Retention: compare only store entries written within retention_days of this run's newest review.
            newest = (fps | "CreatedTs" >> beam.Map(lambda f: f.created_ts)
                      | "NewestReview" >> beam.CombineGlobally(lambda ts: max(ts, default=0.0)))
            window = cfg.retention_days * 86400
            retained = self._stored | "WithinRetention" >> beam.Filter(
                lambda f, newest_ts: f.created_ts >= newest_ts - window, beam.pvalue.AsSingleton(newest))
            candidates = (fps, retained) | "WithStore" >> beam.Flatten()
        eligible = candidates | "Eligible" >> beam.Filter(cl.eligible, cfg)
        # Two groupings instead of one: first only (band key, review id), 16 small elements a review,
        # to find the buckets shared by ≥ 2 reviews; then the shingle hashes of just those members,
        # grouped by band as before. The buckets bucket_edges sees are the same, with one review fewer
        # (or none) for each bucket that could not make a pair; memory per review is a fraction.
        shared = (eligible
                  | "KeyByBand" >> beam.ParDo(_BandIdsFn(cfg))
                  | "GroupIdsByBand" >> beam.GroupByKey()
                  | "SharedBuckets" >> beam.FlatMap(_shared_bucket_members))
        edges = ({"fp": eligible | "EligibleById" >> beam.Map(lambda f: (f.review_id, cl.band_member(f))),
                  "band": shared}
                 | "JoinSharedBuckets" >> beam.CoGroupByKey()
                 | "MembersByBand" >> beam.FlatMap(_members_to_shared_buckets)
                 | "GroupByBand" >> beam.GroupByKey()
                 | "BucketEdges" >> beam.ParDo(_BucketEdgesFn(cfg)))
        roots = (edges
                 | "AllEdges" >> beam.combiners.ToList()
                 | "ConnectedComponents" >> beam.FlatMap(_assign))
        cluster_values = (
            {"fp": candidates | "FpById" >> beam.Map(_by_id), "root": roots}
            | "JoinRoots" >> beam.CoGroupByKey()
            | "ByComponent" >> beam.FlatMap(lambda kv: _prefer_current((kv[0], (kv[1]["fp"], kv[1]["root"]))))
            | "GroupByComponent" >> beam.GroupByKey()
            | "DescribeCluster" >> beam.FlatMap(_describe, cfg))
        out = ({"item": items | "ItemById" >> beam.Map(lambda it: (it.review.review_id, it)),
                "fp": fps | "CurrentFpById" >> beam.Map(_by_id),
                "cluster": cluster_values}
               | "JoinSignals" >> beam.CoGroupByKey()
               | "AttachSignal" >> beam.ParDo(_AttachSignalFn(cfg)))
        return out, fps
