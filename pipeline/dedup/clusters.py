"""The pure logic of near-duplicate detection: fingerprints, candidate pairs per LSH bucket,
connected components, and what a cluster means for each of its members.

No Beam here: pipeline/transforms/dedup.py distributes these functions, and the streaming
transform and the benchmark reuse them.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import xxhash

from pipeline.dedup import shingles as sh
from pipeline.dedup.config import DedupConfig
from pipeline.dedup.signatures import Signer, exact_jaccard
from pipeline.timestamps import epoch_seconds

NONE, AUTHOR_REPEAT, CAMPAIGN, SYNDICATED_COPY, SYNDICATION_SOURCE, COMMON_PHRASE = (
    "none", "author_repeat", "campaign", "syndicated_copy", "syndication_source", "common_phrase")
EVIDENCE_PATTERNS = (AUTHOR_REPEAT, CAMPAIGN)


ArrivalKey = Tuple[float, str, int, str]


class Fingerprint(NamedTuple):
    """What detection keeps of a review: enough to compare, order and explain, no text.

    The first posting of a cluster (its canonical member) is the first to *arrive*, by a time the
    author cannot set: ``arrival_ts`` is the platform's ``received_at``, or for a signature-store
    entry the time an earlier run first saw the review; a review of this run without
    ``received_at`` arrives "now" (infinity), after everything stored, and among such reviews
    input order (``input_uri``, ``input_line``) decides. ``created_ts`` (author-controlled) never
    orders a cluster; it only bounds retention."""

    review_id: str
    created_ts: float  # UTC seconds of created_at: retention only, never the cluster order
    author_id: str
    product_id: str
    channel: Optional[str]
    partner: Optional[str]
    family: str  # words | ko | ja | zh
    n_shingles: int
    signature: bytes  # uint32[num_perm], little-endian
    shingle_hashes: bytes  # sorted unique xxh32 of the shingles, little-endian uint32
    stored: bool = False  # from the signature store (an earlier run), not this run
    arrival_ts: float = math.inf  # received_at, or first seen by an earlier run; inf = this run
    input_uri: str = ""  # where this run read it (ties among reviews without received_at)
    input_line: int = 0

    def sig(self) -> np.ndarray:
        return np.frombuffer(self.signature, dtype="<u4")

    def hashes(self) -> np.ndarray:
        return np.frombuffer(self.shingle_hashes, dtype="<u4")

    @property
    def order(self) -> ArrivalKey:
        return (self.arrival_ts, self.input_uri, self.input_line, self.review_id)

    @property
    def declared_syndication(self) -> bool:
        return self.channel == "syndicated" and bool(self.partner)


class BandMember(NamedTuple):
    """What an LSH bucket needs of a review: identity, order and shingle hashes (~4 bytes a shingle).

    Kept small on purpose: every review is sent to ``bands`` buckets, so this is what the band
    GroupByKey shuffles, ``bands`` times per review."""

    review_id: str
    created_ts: float
    shingle_hashes: bytes
    stored: bool = False
    arrival_ts: float = math.inf
    input_uri: str = ""
    input_line: int = 0

    def hashes(self) -> np.ndarray:
        return np.frombuffer(self.shingle_hashes, dtype="<u4")

    @property
    def order(self) -> ArrivalKey:
        return (self.arrival_ts, self.input_uri, self.input_line, self.review_id)


def band_member(fp: "Fingerprint") -> BandMember:
    return BandMember(fp.review_id, fp.created_ts, fp.shingle_hashes, fp.stored, fp.arrival_ts, fp.input_uri,
                      fp.input_line)


def created_ts(created_at: str) -> float:
    return epoch_seconds(created_at)


def arrival_ts(received_at: Optional[str]) -> float:
    """The platform's receipt time in UTC seconds; infinity (this run, input order) without it."""
    return epoch_seconds(received_at) if received_at else math.inf


def eligible(fp: Fingerprint, cfg: DedupConfig) -> bool:
    """The minimum-text rule: too little text makes similarity meaningless."""
    return fp.n_shingles >= cfg.min_shingles.get(fp.family, cfg.min_shingles["words"])


def fingerprints(rows: Sequence[dict], cfg: DedupConfig, signer: Signer) -> List[Fingerprint]:
    """rows: dicts with review_id, created_at, author_id, product_id, channel, partner, text, language
    (and optionally received_at, uri, line: the arrival order)."""
    sets, families = [], []
    for row in rows:
        family = sh.script_language(row["text"], row.get("language"))
        families.append(family)
        sets.append(sh.shingles(row["text"], row.get("language"), word_n=cfg.word_ngram, cjk_n=cfg.cjk_ngram))
    sigs, hashes = signer.sign(sets)
    return [Fingerprint(review_id=row["review_id"], created_ts=created_ts(row["created_at"]),
                        author_id=row["author_id"], product_id=row["product_id"], channel=row.get("channel"),
                        partner=row.get("partner"), family=family, n_shingles=len(s),
                        signature=sig.astype("<u4").tobytes(), shingle_hashes=h.astype("<u4").tobytes(),
                        arrival_ts=arrival_ts(row.get("received_at")), input_uri=row.get("uri") or "",
                        input_line=int(row.get("line") or 0))
            for row, family, s, sig, h in zip(rows, families, sets, sigs, hashes)]


def bucket_edges(members: Iterable[BandMember], cfg: DedupConfig) -> Tuple[List[Tuple[str, str]], int]:
    """Candidate pairs of one LSH bucket whose exact Jaccard (on shingle hashes) passes the threshold.

    Members are ordered by arrival (``Fingerprint.order``) and de-duplicated by review_id (a review in the
    signature store and in this run is one review, never its own duplicate). A bucket of at most
    ``all_pairs_bucket`` members compares every pair. A larger ("hot") bucket compares each member
    only with the bucket's leaders, at most ``max_leaders`` earlier members that matched no other
    leader, so its cost is linear in its size: members of a hot bucket share ``rows`` identical
    signature positions and are nearly always copies of a few texts, which the leaders represent.
    Returns (edges, members compared with no leader left to take them).
    """
    unique: Dict[str, BandMember] = {}
    for fp in members:
        kept = unique.get(fp.review_id)
        if kept is None or (kept.stored and not fp.stored):
            unique[fp.review_id] = fp
    ordered = sorted(unique.values(), key=lambda f: f.order)
    edges: List[Tuple[str, str]] = []
    if len(ordered) < 2:
        return edges, 0
    sigs = [f.hashes() for f in ordered]
    if len(ordered) <= cfg.all_pairs_bucket:
        for i in range(len(ordered)):
            for j in range(i + 1, len(ordered)):
                if ordered[i].stored and ordered[j].stored:
                    continue  # pairs inside the store were decided by earlier runs
                if exact_jaccard(sigs[i], sigs[j]) >= cfg.threshold:
                    edges.append((ordered[i].review_id, ordered[j].review_id))
        return edges, 0
    leaders: List[int] = []
    overflow = 0
    for j in range(len(ordered)):
        matched = False
        for i in leaders:
            if exact_jaccard(sigs[i], sigs[j]) >= cfg.threshold:
                if not (ordered[i].stored and ordered[j].stored):
                    edges.append((ordered[i].review_id, ordered[j].review_id))
                matched = True
                break
        if not matched:
            if len(leaders) < cfg.max_leaders:
                leaders.append(j)
            else:
                overflow += 1
    return edges, overflow


def union(parent: Dict[str, str], a: str, b: str) -> None:
    """Joins a's and b's components in ``parent`` (union-find with path halving). The
    representative of a component is its smallest review id, whatever order edges come in."""
    ra, rb = find(parent, a), find(parent, b)
    if ra != rb:
        if rb < ra:
            ra, rb = rb, ra
        parent[rb] = ra


def find(parent: Dict[str, str], x: str) -> str:
    parent.setdefault(x, x)
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


def components(edges: Iterable[Tuple[str, str]]) -> Dict[str, str]:
    """review_id → the representative (smallest id) of its connected component."""
    parent: Dict[str, str] = {}
    for a, b in edges:
        union(parent, a, b)
    return {x: find(parent, x) for x in list(parent)}


def spanning_edges(edges: Iterable[Tuple[str, str]]) -> List[Tuple[str, str]]:
    """As few edges as join the same reviews as ``edges`` (one per member to its component's
    representative): a bucket of n near-copies makes up to n(n-1)/2 edges but needs n - 1."""
    return [(x, root) for x, root in components(edges).items() if x != root]


def cluster_id(canonical_review_id: str) -> str:
    """Stable across runs: derived from the canonical member."""
    return "dup-" + xxhash.xxh64_hexdigest(canonical_review_id.encode("utf-8"))


def describe_cluster(members: Sequence[Fingerprint], cfg: DedupConfig) -> Dict[str, dict]:
    """Per-member signal values for one connected component (members of this run and the store).

    The canonical member (the first posting) is the first to arrive (``Fingerprint.order``), never
    the earliest ``created_at``, which the author sets. ``author_repeats`` says whether a member's
    own author has other members in the cluster: the policy may withhold a first posting only then."""
    ordered = sorted({m.review_id: m for m in members}.values(), key=lambda f: f.order)
    canonical = ordered[0]
    canon_hashes = canonical.hashes()
    own = [m for m in ordered if not m.declared_syndication]
    per_author = Counter(m.author_id for m in own)
    authors = set(per_author)
    products = {m.product_id for m in own}
    family = canonical.family
    short = max(m.n_shingles for m in ordered) <= cfg.common_max_shingles.get(family, cfg.common_max_shingles["words"])
    common = (short and len(authors) >= cfg.common_min_authors and len(products) >= cfg.common_min_products
              and len(products) >= cfg.common_spread * len(authors))
    if len(own) <= 1:
        cluster_pattern = SYNDICATION_SOURCE  # one original and its declared syndicated copies
    elif common:
        cluster_pattern = COMMON_PHRASE
    elif len(authors) == 1:
        cluster_pattern = AUTHOR_REPEAT
    else:
        cluster_pattern = CAMPAIGN
    cid = cluster_id(canonical.review_id)
    out = {}
    for m in ordered:
        pattern = SYNDICATED_COPY if m.declared_syndication else cluster_pattern
        out[m.review_id] = {
            "cluster_id": cid,
            "cluster_size": len(ordered),
            "canonical_review_id": canonical.review_id,
            "is_canonical": m.review_id == canonical.review_id,
            "similarity_to_canonical": round(exact_jaccard(m.hashes(), canon_hashes), 4),
            "pattern": pattern,
            "evidence": pattern in EVIDENCE_PATTERNS,
            "distinct_authors": len(authors),
            "distinct_products": len(products),
            "members_from_earlier_runs": sum(1 for x in ordered if x.stored),
            "author_repeats": per_author.get(m.author_id, 0) > 1,
            "canonical_by": "received_at" if math.isfinite(canonical.arrival_ts) and not canonical.stored
            else "first_seen",
            "shingles": m.n_shingles,
        }
    return out


def unclustered_values(fp: Fingerprint) -> dict:
    return {"cluster_id": None, "cluster_size": 1, "canonical_review_id": fp.review_id, "is_canonical": True,
            "similarity_to_canonical": 1.0, "pattern": NONE, "evidence": False, "author_repeats": False,
            "shingles": fp.n_shingles}
