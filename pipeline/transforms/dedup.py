"""Near-duplicate detection as Beam transforms (batch).

    items → Fingerprint (batched MinHash) ─┬─ every review of this run: its signal as if in no cluster
                                           ├─ eligible → KeyByBand (hash, id) → concatenated per shard
                                           │     → shared buckets → join members → GroupByKey(member set; 8 parts)
    signature store (earlier runs) ────────┘     → BucketEdges (a spanning forest) → CombineGlobally(union-find)
      → join roots with the fingerprints of reviews that share a bucket → GroupByKey(component)
      → DescribeCluster → each clustered review's cluster signal, which wins (``choose_signal``)
      → (review_id, signal): DetectFakes joins it to the items with the other detectors' signals

LSH is a key and a grouping, not an in-memory index, so the work spreads over workers; a hot
bucket costs time linear in its size (see ``clusters.bucket_edges``). Connected components run
on one worker over the *edges* only (pairs that passed the threshold, at most n - 1 per bucket of
n), merged as union-find maps, never collected as a list. The signal written per review is ``signals.near_duplicate`` (see docs/dedup.md). Values
that wait in a grouping are pickled (``schemas.records.pack``): the DirectRunner holds grouped
values in memory, one bytes object each instead of a decoded record.
"""
from __future__ import annotations

import hashlib
import logging
from typing import List, Optional, Sequence

import apache_beam as beam
import xxhash
from apache_beam.metrics import Metrics

from pipeline.dedup import clusters as cl
from pipeline.dedup.config import DedupConfig
from schemas.records import Item, Signal, author_key, conflict_id, pack, review_identity, unpack

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


SHARD_BITS = 12  # band keys are gathered in 2**12 shards per band: 65,536 grouping keys in all
TAG_BYTES = 8  # the author tag in each band entry (_author_tag)
BUCKET_GROUPINGS = 8  # the shared buckets' members are grouped in this many separate groupings


class _BandIdsFn(beam.DoFn):
    """Fingerprint → (shard, entry) per band: what finding the shared buckets needs, no more.

    A band key ``"<band>:<16 hex digits>"`` goes to shard ``band << SHARD_BITS | first 12 bits of
    the hash``; the entry is the hash's 8 bytes, an 8-byte tag of the author (:func:`_author_tag`),
    the review id's length (2 bytes) and the id (UTF-8). Entries of a shard are concatenated
    (``_ConcatFn``), so the grouping holds a few bytes a band instead of a key, a list and a string
    (a quarter of a batch run's memory before)."""

    def __init__(self, cfg: DedupConfig):
        self._cfg = cfg

    def setup(self):
        self._signer = self._cfg.signer()

    def process(self, fp: cl.Fingerprint):
        rid = fp.review_id.encode("utf-8")
        suffix = _author_tag(fp.author_id) + len(rid).to_bytes(2, "little") + rid
        for key in self._signer.band_keys(fp.sig()):
            band, digest = key.split(":")
            h = bytes.fromhex(digest)
            yield int(band) << SHARD_BITS | h[0] << 4 | h[1] >> 4, h + suffix


class _ConcatFn(beam.CombineFn):
    """Concatenates a shard's entries (lifted before the grouping: one value per shard and bundle)."""

    def create_accumulator(self):
        return bytearray()

    def add_input(self, acc, entry):
        acc += entry
        return acc

    def merge_accumulators(self, accs):
        out = bytearray()
        for acc in accs:
            out += acc
        return out

    def extract_output(self, acc):
        return bytes(acc)


def _author_tag(author_id: str) -> bytes:
    """8 bytes of BLAKE2b of the author (NFC): the store's copy of an id and this run's review under
    it are one review only when their authors agree; another author's is another review (see
    :func:`_separate_other_authors`), so a bucket holding the id twice with two tags is shared. A
    cryptographic hash, 64 bits: with 2 bytes of xxh32 an attacker found an author id with the
    honest author's tag in 27k tries and was merged with the stored honest review again."""
    return hashlib.blake2b(author_key(author_id).encode("utf-8"), digest_size=TAG_BYTES).digest()


def _shared_bucket_members(keyed):
    """(shard, entries) → (review id, member set key) for each member of a bucket of ≥ 2 reviews.

    A bucket with one review (nearly all of them) makes no candidate pair, so its members are not
    sent on: only reviews that share a bucket go to the second, full grouping with shingle hashes.
    Buckets are named by their member set (a 128-bit hash of the sorted ids), not their band: two
    near-copies share most of the 16 bands, and the same members make the same edges in each, so
    each distinct member set is compared once."""
    _, data = keyed
    buckets = {}
    i, end = 0, len(data)
    t = 8 + TAG_BYTES
    while i < end:
        n = int.from_bytes(data[i + t:i + t + 2], "little")
        buckets.setdefault(data[i:i + 8], set()).add((data[i + t + 2:i + t + 2 + n].decode("utf-8"), data[i + 8:i + t]))
        i += t + 2 + n
    for tagged in buckets.values():
        if len(tagged) > 1:
            members = sorted({review_id for review_id, _ in tagged})
            key = xxhash.xxh3_128_hexdigest("\n".join(members).encode("utf-8"))
            for review_id in members:
                yield review_id, key


MEMBER_FPS = "member_fps"


def _members_to_shared_buckets(keyed):
    """(review id, {"fp": packed fingerprints, "band": member set keys}) → (set key, packed band
    member) per distinct key; and on ``MEMBER_FPS`` (review id, packed fingerprint) once per copy:
    only a review that shares a bucket can be in a cluster, so only these go on to ``JoinRoots``."""
    review_id, grouped = keyed
    keys = sorted(set(grouped["band"]))
    if not keys:
        return
    # this run's review and the store's copy of it, if any: as before; a stored review of another
    # author under the same id is another review
    for fp in _separate_other_authors(review_id, [unpack(p) for p in grouped["fp"]]):
        member = pack(cl.band_member(fp))
        for key in keys:
            yield key, member
        yield beam.pvalue.TaggedOutput(MEMBER_FPS, (fp.review_id, pack(fp)))


def _separate_other_authors(review_id: str, fps: List[cl.Fingerprint]) -> List[cl.Fingerprint]:
    """A stored review under this run's review's id but by another author (an id reused across
    runs, a forged record included) goes on under the conflict id its author's review has
    (:func:`schemas.records.conflict_id`): before, it was merged with this run's review, which took
    its earlier arrival, so a forged record carrying an honest review's id and text became the
    "first posting" and the honest review's resend a copy of it (session 20's attack)."""
    current = next((f for f in fps if not f.stored), None)
    if current is None:
        return fps
    mine = author_key(current.author_id)   # as _author_tag reads it
    return [f._replace(review_id=conflict_id(review_id, f.author_id))
            if f.stored and author_key(f.author_id) != mine else f for f in fps]


class _BucketEdgesFn(beam.DoFn):
    """(member set, packed band members) → edges; ``dedup/hot_buckets`` and ``dedup/bucket_size``
    count distinct member sets (a set shared in several bands counts once)."""

    def __init__(self, cfg: DedupConfig):
        self._cfg = cfg
        self._hot = Metrics.counter("dedup", "hot_buckets")
        self._overflow = Metrics.counter("dedup", "hot_bucket_members_without_leader")
        self._largest = Metrics.distribution("dedup", "bucket_size")

    def process(self, keyed):
        _, members = keyed
        members = [unpack(m) for m in members]
        self._largest.update(len(members))
        if len(members) > self._cfg.all_pairs_bucket:
            self._hot.inc()
        edges, overflow = cl.bucket_edges(members, self._cfg)
        if overflow:
            self._overflow.inc(overflow)
        yield from cl.spanning_edges(edges)


class _ComponentsFn(beam.CombineFn):
    """Edges → {review id: its component's representative}, by union-find as the edges arrive.

    Lifted before its grouping, so what reaches the one worker that merges is a parent map per
    bundle (one entry a clustered review), never a list of every edge: a near-copy flood of 1M
    reviews made ~940 MB of edges as one element when they were collected first (session 14)."""

    def create_accumulator(self):
        return {}

    def add_input(self, parent, edge):
        cl.union(parent, *edge)
        return parent

    def merge_accumulators(self, parents):
        parents = iter(parents)
        merged = next(parents)
        for other in parents:
            for x, p in other.items():
                if x != p:
                    cl.union(merged, x, p)
                else:
                    cl.find(merged, x)
        return merged

    def extract_output(self, parent):
        return {x: cl.find(parent, x) for x in list(parent)}


def _assign(roots):
    yield from roots.items()


def _route_by_root(keyed, cfg: DedupConfig):
    """(review id, {"fp": packed fingerprints of a review that shares a bucket, "root": its
    component's root}) → (root, fingerprint) for a clustered review (a review in no cluster keeps
    the signal its fingerprint gave it).

    A clustered review's fingerprint is this run's (it wins over the store's copy of it) with the
    earliest arrival of either: it arrived when it was first seen, possibly by an earlier run."""
    _, grouped = keyed
    fps = sorted((unpack(f) for f in grouped["fp"]), key=lambda f: f.stored)  # this run's copy first
    roots = list(grouped["root"])
    if roots and fps:
        yield roots[0], (cl.first_seen_copy(fps[0], [f for f in fps[1:] if f.stored], _same_review_jaccard(cfg))
                         if not fps[0].stored else min(fps, key=lambda f: (f.arrival_ts, f.input_uri, f.input_line)))


def _same_review_jaccard(cfg: DedupConfig) -> float:
    """How much of its text a review resent in a later run keeps to be that review (a light edit),
    not another review under a reused id: the copy threshold (:func:`clusters.same_review`)."""
    return cfg.threshold


def _by_id(fp: cl.Fingerprint):
    """(review_id, fingerprint without its MinHash signature, pickled): after the band keys nothing
    reads the signature (512 bytes a review), and a pickled value is one bytes object where the
    DirectRunner holds grouped values (a decoded Fingerprint is several objects)."""
    return fp.review_id, pack(fp._replace(signature=b""))


def _fingerprint_signal(fp: cl.Fingerprint, cfg: DedupConfig, version: str):
    """(review id, the signal of a review in no cluster): every review of this run gets it at once,
    from its fingerprint; a review that turns out to be in a cluster gets its cluster's signal too,
    and that one wins (:func:`choose_signal`). So only reviews that share a bucket wait for the
    clusters, not every review's fingerprint (~0.5 KB a review held by the DirectRunner before)."""
    return fp.review_id, dedup_signal(fp, None, cfg, version)


def choose_signal(signals: Sequence[Signal]) -> Signal:
    """Of a review's ``near_duplicate`` signals, the one that places it in a cluster, else the
    first; ``dedup/pattern_*`` counts what is chosen."""
    chosen = next((s for s in signals if (s.values or {}).get("cluster_id") is not None), signals[0])
    Metrics.counter("dedup", f"pattern_{(chosen.values or {}).get('pattern', chosen.status)}").inc()
    return chosen


def _describe(keyed, cfg: DedupConfig, version: str):
    """(component, members) → (review id, Signal) for each member read by this run (the store's
    members shape the cluster but are not decided again)."""
    _, members = keyed
    members = _one_copy_per_review(list(members), _same_review_jaccard(cfg))
    by_id = {m.review_id: m for m in members}
    for review_id, values in cl.describe_cluster(members, cfg).items():
        member = by_id[review_id]
        if not member.stored:
            yield review_id, dedup_signal(member, values, cfg, version)


def _one_copy_per_review(members: List[cl.Fingerprint], min_jaccard: float) -> List[cl.Fingerprint]:
    """A stored member that is this run's review under its other id (a ``#conflict-`` id in one run,
    the plain id in another: :func:`schemas.records.review_identity`) is dropped, keeping the earlier
    arrival, as the store's copy under the same id is merged when grouped by id. Without it the
    review was a repeat of itself by its own author (``duplicate_spam``)."""
    current = {review_identity(m.review_id, m.author_id): i for i, m in enumerate(members) if not m.stored}
    out, dropped = list(members), set()
    for i, m in enumerate(members):
        j = current.get(review_identity(m.review_id, m.author_id)) if m.stored else None
        if j is not None and members[j].review_id != m.review_id:
            out[j] = cl.first_seen_copy(out[j], [m], min_jaccard)
            dropped.add(i)
    return [m for i, m in enumerate(out) if i not in dropped] if dropped else members


def dedup_signal(fp: cl.Fingerprint, values: Optional[dict], cfg: DedupConfig, version: str) -> Signal:
    """A review's ``near_duplicate`` signal from its fingerprint and its cluster's values (None: in no cluster)."""
    if not cl.eligible(fp, cfg):
        signal = Signal("not_applicable", version, {"shingles": fp.n_shingles}, note=TOO_SHORT_NOTE)
    else:
        signal = Signal("scored", version, values if values is not None else cl.unclustered_values(fp))
    return signal


def sample_signals(cfg: DedupConfig) -> List[Signal]:
    """Typical ``near_duplicate`` signals (too short, in a cluster, in none): what ``DetectFakes``
    makes its packing dictionary of (``schemas.records.Packer``); they change sizes, never values."""
    text = "a typical review long enough to be compared with the other reviews of its product and cluster"
    rows = [{"review_id": f"review-{i}", "created_at": "2026-01-01T00:00:00Z", "author_id": f"author-{i}",
             "product_id": "product-1", "channel": None, "partner": None, "text": text, "language": "en"}
            for i in range(2)]
    fps = cl.fingerprints(rows, cfg, cfg.signer())
    version = cfg.version
    return [Signal("not_applicable", version, {"shingles": 3}, note=TOO_SHORT_NOTE),
            Signal("scored", version, cl.describe_cluster(fps, cfg)["review-1"]),
            Signal("scored", version, cl.unclustered_values(fps[0]))]


def no_fingerprint(version: str) -> Signal:
    return Signal("not_run", version, note="no fingerprint")


class NearDuplicateSignals(beam.PTransform):
    """PCollection[Item] → ((unclustered, clustered): two PCollection[(review_id, Signal)],
    fingerprints of this run): for each review of this run its ``near_duplicate`` signal as if in
    no cluster, and for a review in a cluster its cluster's signal as well, for the caller to join
    and pick with :func:`choose_signal` (``DetectFakes`` joins every detector's signals to the items
    in one grouping). The two are not flattened here: they are made in different stages, and the
    DirectRunner holds a flatten across stages as a buffer of its own (a decoded-size signal per
    review, ~0.33 KB); the caller packs each where it is made."""

    def __init__(self, cfg: DedupConfig, stored: Optional[beam.PCollection] = None):
        super().__init__()
        self._cfg = cfg
        self._stored = stored

    def expand(self, items):
        cfg, version = self._cfg, self._cfg.version
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
        # Two groupings instead of one: first only (band hash, review id), 16 small entries a review
        # concatenated per shard, to find the buckets shared by ≥ 2 reviews; then the shingle hashes
        # of just those members, grouped by member set (the same set in several bands once). The
        # pairs bucket_edges compares are the same; buckets that could not make a pair are not sent.
        shared = (eligible
                  | "KeyByBand" >> beam.ParDo(_BandIdsFn(cfg))
                  | "GroupIdsByBand" >> beam.CombinePerKey(_ConcatFn())
                  | "SharedBuckets" >> beam.FlatMap(_shared_bucket_members))
        members = ({"fp": eligible | "EligibleById" >> beam.Map(_by_id), "band": shared}
                   | "JoinSharedBuckets" >> beam.CoGroupByKey()
                   | "MembersByBucket" >> beam.FlatMap(_members_to_shared_buckets).with_outputs(
                       MEMBER_FPS, main="buckets"))
        parts = members.buckets | "SplitBuckets" >> beam.Partition(
            lambda kv, n: int(kv[0][:8], 16) % n, BUCKET_GROUPINGS)
        # BUCKET_GROUPINGS groupings of a part of the buckets each, not one: the DirectRunner reads a
        # grouping as one stage whose whole input it copies several times over; the edges are few
        edges = ([part | f"GroupByBucket{i}" >> beam.GroupByKey() | f"BucketEdges{i}" >> beam.ParDo(_BucketEdgesFn(cfg))
                  for i, part in enumerate(parts)]
                 | "BucketEdges" >> beam.Flatten())
        roots = (edges
                 | "ConnectedComponents" >> beam.CombineGlobally(_ComponentsFn())
                 | "ByReview" >> beam.FlatMap(_assign))
        clustered = ({"fp": members[MEMBER_FPS], "root": roots}
                     | "JoinRoots" >> beam.CoGroupByKey()
                     | "ByComponent" >> beam.FlatMap(_route_by_root, cfg)
                     | "GroupByComponent" >> beam.GroupByKey()
                     | "DescribeCluster" >> beam.FlatMap(_describe, cfg, version))
        unclustered = fps | "FingerprintSignals" >> beam.Map(_fingerprint_signal, cfg, version)
        return (unclustered, clustered), fps


class DetectNearDuplicates(beam.PTransform):
    """PCollection[Item] → PCollection[Item] with ``signals["near_duplicate"]`` (the detector alone,
    for tests and ``make bench-dedup``; the job joins all detectors at once in ``DetectFakes``).

    Returns (items, fingerprints of this run) so the caller can append them to the signature store.
    """

    def __init__(self, cfg: DedupConfig, stored: Optional[beam.PCollection] = None):
        super().__init__()
        self._cfg = cfg
        self._stored = stored

    def expand(self, items):
        version = self._cfg.version
        parts, fps = items | "Signals" >> NearDuplicateSignals(self._cfg, self._stored)
        signals = parts | "AllSignals" >> beam.Flatten()

        out = ({"item": items | "ItemById" >> beam.Map(lambda it: (it.review.review_id, it)), "signal": signals}
               | "JoinSignals" >> beam.CoGroupByKey()
               | "AttachSignal" >> beam.ParDo(_AttachSignalFn(version)))
        return out, fps


class _AttachSignalFn(beam.DoFn):
    """(review_id, {"item": items, "signal": its signal}) → each item with it (or not_run: no fingerprint)."""

    def __init__(self, version: str):
        self._version = version

    def process(self, keyed):
        _, grouped = keyed
        found = list(grouped["signal"])
        for item in grouped["item"]:
            signals = dict(item.signals)
            signals[DETECTOR] = choose_signal(found) if found else no_fingerprint(self._version)
            yield item.replace(signals=signals)
