"""The pure logic of near-duplicate detection: fingerprints, candidate pairs per LSH bucket,
connected components, and what a cluster means for each of its members.

No Beam here: pipeline/transforms/dedup.py distributes these functions, and the streaming
transform and the benchmark reuse them.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import xxhash

from pipeline.dedup import shingles as sh
from pipeline.dedup.config import DedupConfig
from pipeline.dedup.signatures import Signer, exact_jaccard
from schemas.records import author_key
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
    # arrival_ts is the platform's received_at (not when a run first saw it): the behavioural
    # detectors may order by it as a time the author cannot set (``Event.trusted``)
    received: bool = False
    # this run's review that an earlier run already saw: arrival_ts / input_uri / input_line are
    # its stored copy's (where it was first seen), and it is ordered with the stored members
    earlier_run: bool = False
    # when the run that stored it ran (its stored_at; inf: not from the store): with the input
    # position, the order that run used, whatever mix of received_at its members had
    run_ts: float = math.inf
    # this run's edit of a stored review by the same author (shares >= 0.5 of its text, under the
    # copy threshold) placed where that earlier version was first seen: the earlier version's
    # shingle hashes, the only text that place vouches for (:func:`first_seen_copy`)
    earlier_text: bytes = b""

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
    """A stored member goes without its input file name (the order in a bucket only picks a hot
    bucket's leaders; clusters are ordered from the full fingerprints): every review is shuffled
    ``bands`` times, so this keeps a large store's shuffle as small as before it kept positions."""
    return BandMember(fp.review_id, fp.created_ts, fp.shingle_hashes, fp.stored, fp.arrival_ts,
                      "" if fp.stored else fp.input_uri, fp.input_line)


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
                        input_line=int(row.get("line") or 0), received=bool(row.get("received_at")))
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


SOURCE_SCAN = 32  # earlier members compared, from each end of the arrival order, to find a review's source
# How much text a review must share with an earlier member for that member to be its source (and
# with its author's other member to repeat it). Below the clustering threshold on purpose: copies
# of one template, each lightly edited, share ~0.7 with each other (each ~0.85 with the template)
# and are joined in one component through others; an honest review shares next to nothing with
# what an attacker posted before it, as the attacker did not know its text (a chain of bridges to
# it: 0.04).
SOURCE_MIN_JACCARD = 0.5


class Placement(NamedTuple):
    """A component's arrival order (:func:`arrival_order`): ``key`` sorts its members; ``capped``
    names, for each stored member placed earlier than its run's time because a stamped copy of it
    came to light later, that copy's review id and the time the member would have had without it."""

    key: Callable[[Fingerprint], tuple]
    capped: Dict[str, Tuple[str, float]]


def arrival_key(members: Sequence[Fingerprint], min_jaccard: float = SOURCE_MIN_JACCARD):
    """The sort key of :func:`arrival_order`."""
    return arrival_order(members, min_jaccard).key


def arrival_order(members: Sequence[Fingerprint], min_jaccard: float = SOURCE_MIN_JACCARD) -> Placement:
    """The order in which a component's members arrived.

    By ``Fingerprint.order`` (the platform's ``received_at``, or first seen by an earlier run) when
    every member of this run has a ``received_at``. When one has none, the run's members cannot be
    put on that time scale: a review without it would sort after every stamped one, so copies posted
    days later with a ``received_at`` would pass for the first posting of an honest review that came
    through a channel without one. Then members from earlier runs come first (by first seen), and
    this run's members follow in input order; a review of this run that an earlier run already saw
    (:func:`first_seen_copy`) is ordered where it was first seen.

    Members from earlier runs are placed by :func:`_placed_times`: their received_at, or their run's
    time, but no later than a stamped member that came to light after them and shares their text
    (session 21; session 23: only one that shares their text)."""
    placed, capped = _placed_times(members, min_jaccard)
    if all(_has_receipt(m) for m in members if not m.stored):
        key = lambda f: (0, placed.get(f.review_id, f.arrival_ts), f.run_ts, f.input_uri, f.input_line, f.review_id)
    else:
        key = lambda f: ((0, placed[f.review_id], f.run_ts, f.input_uri, f.input_line, f.review_id)
                         if f.review_id in placed else (1, 0.0, math.inf, f.input_uri, f.input_line, f.review_id))
    return Placement(key, capped)


def _placed_times(members: Sequence[Fingerprint], min_jaccard: float = SOURCE_MIN_JACCARD
                  ) -> Tuple[Dict[str, float], Dict[str, Tuple[str, float]]]:
    """(review id → the time a member from an earlier run, or a resend placed where an earlier run
    saw it, is ordered by; ties go to the earlier run, then the input position), and the capped
    members (:class:`Placement`).

    With a received_at, that time: runs with it on both sides stay ordered by it (a backfill
    processed after a later day's run: session 21, round 4). Without one, all that is known is that
    it arrived before its run stored it, and before every stamped member that came to light after
    it *and shares its text* (at least ``min_jaccard``, the bar for a source): such a member may
    copy it (or be the same review resent). That member may be one its own run read after it in
    the same file (a run that mixes the two orders by input: round 3) or one of a later run (a copy
    delivered late with an earlier received_at: round 5). A stamped member that shares nothing with
    it says nothing about when it arrived: an attacker's unrelated review delivered late with an
    early received_at, bridged into the component, capped a stored copy ahead of the honest review
    it copied (session 22, round 7). It is placed no later than the earliest such copy, and no
    earlier than a stamped member sharing its text that an earlier run stored (round 6; an unrelated
    one lifted an honest review above a late copy: session 23, round 8). A key, not a pairwise rule,
    so the order is total.

    Shared text has no direction: the attacker's ``c`` = its own earlier text S + the honest text H
    shares 0.5 with S, so S (received before H existed) caps ``c`` as well as a copy would (round 8).
    So the cap is recorded, and :func:`describe_cluster` lets a capped member be the source only of
    reviews that share text with what capped it, or that come after it without the cap.

    Every capped member is compared exactly with every stamped member that could move it (no
    bounded scan an attacker could fill with unrelated members, no MinHash estimate an attacker
    could steer): one sorted index of their shingle hashes."""
    placed = [m for m in members if m.stored or m.earlier_run]
    out = {m.review_id: m.arrival_ts for m in placed}
    stamped = [m for m in placed if m.received and math.isfinite(m.run_ts)]
    capped = [m for m in placed if not m.received and math.isfinite(m.run_ts)]
    if not stamped or not capped:
        return out, {}
    # a stamped member can move a capped one only as a cap (received before the capped member's
    # run stored it, stored no earlier) or a floor (stored by an earlier run, received after its time)
    latest, first_run = max(out[m.review_id] for m in capped), min(m.run_ts for m in capped)
    capping = [s for s in stamped if s.arrival_ts < latest and s.run_ts >= first_run]
    lowest = min([s.arrival_ts for s in capping] + [out[m.review_id] for m in capped])
    last_run = max(m.run_ts for m in capped)
    movers = capping + [s for s in stamped if s.run_ts < last_run and s.arrival_ts > lowest
                        and not (s.arrival_ts < latest and s.run_ts >= first_run)]
    if not movers:
        return out, {}
    index, caps = _HashIndex(movers), {}
    for m in capped:
        own = out[m.review_id]
        floor, cap, by = index.floor_and_cap(m, own, min_jaccard)
        uncapped = max(own, floor)
        out[m.review_id] = max(min(own, cap), floor)
        if out[m.review_id] < uncapped:
            caps[m.review_id] = (by, uncapped)
    return out, caps


class _HashIndex:
    """Stamped members' shingle hashes in one sorted array: per capped member, its own hashes looked
    up give the exact Jaccard with every indexed member at once."""

    def __init__(self, stamped: List[Fingerprint]):
        self.ids = [s.review_id for s in stamped]
        self.run = np.array([s.run_ts for s in stamped])
        self.time = np.array([s.arrival_ts for s in stamped])
        self.uri = np.array([s.input_uri for s in stamped], dtype=object)
        self.line = np.array([s.input_line for s in stamped])
        hashes = [s.hashes() for s in stamped]
        self.size = np.array([len(h) for h in hashes], dtype=np.float64)
        cat = np.concatenate(hashes)
        owner = np.repeat(np.arange(len(stamped)), [len(h) for h in hashes])
        order = np.argsort(cat, kind="stable")
        self.cat, self.owner = cat[order], owner[order]

    def jaccard(self, hashes: np.ndarray, rows: np.ndarray) -> np.ndarray:
        lo, hi = np.searchsorted(self.cat, hashes, "left"), np.searchsorted(self.cat, hashes, "right")
        n = hi - lo
        at = np.repeat(lo - np.cumsum(n) + n, n) + np.arange(int(n.sum()))
        inter = np.bincount(self.owner[at], minlength=len(self.ids))[rows]
        union = len(hashes) + self.size[rows] - inter
        return np.where(union > 0, inter / np.maximum(union, 1), 1.0)

    def floor_and_cap(self, m: Fingerprint, own: float, min_jaccard: float) -> Tuple[float, float, str]:
        """(the latest received_at among members an earlier run stored, the earliest among members
        that came to light after ``m`` (a later run, or a later line of its file) received before
        ``own``, each sharing ``min_jaccard`` of its text; the capping member's id)."""
        later = (self.run > m.run_ts) | ((self.run == m.run_ts) & (self.uri == m.input_uri) & (self.line > m.input_line)
                                         if m.input_uri else False)
        capping = later & (self.time < own)
        lowest = min(own, float(self.time[capping].min())) if capping.any() else own
        rows = np.flatnonzero(capping | ((self.run < m.run_ts) & (self.time > lowest)))
        if not len(rows):
            return -math.inf, math.inf, ""
        shares = rows[self.jaccard(m.hashes(), rows) >= min_jaccard]
        floors = shares[self.run[shares] < m.run_ts]
        caps = shares[later[shares] & (self.time[shares] < own)]
        floor = float(self.time[floors].max()) if len(floors) else -math.inf
        if not len(caps):
            return floor, math.inf, ""
        first = caps[np.argmin(self.time[caps])]
        return floor, float(self.time[first]), self.ids[first]


def same_review(current: Fingerprint, stored: Fingerprint, min_jaccard: float) -> bool:
    """Whether ``stored`` is an earlier run's copy of ``current`` (a resend, or the author's light
    edit): same author, same product and text that still overlaps as a copy does (shingle Jaccard ≥
    ``min_jaccard``, the copy threshold). The id alone is not enough: accounts that reserve ids in one
    run with unrelated text, then post an honest review's copy under them, took the reserved reviews'
    earlier place (session 21, helper round 2); nor is the source overlap (0.5): the reserved text
    plus the honest review's words overlaps each by 0.5 (round 3). At the copy threshold a review
    that took the earlier place and matches an honest review as its source (0.5) must have carried
    about a third of its words before it existed. A heavier edit is a new review; it is no longer
    a copy of what copied the first version either."""
    return (stored.product_id == current.product_id and author_key(stored.author_id) == author_key(current.author_id)
            and exact_jaccard(stored.hashes(), current.hashes()) >= min_jaccard)


def _has_receipt(m: Fingerprint) -> bool:
    """Whether this run's member is on the platform's received_at time scale: its own received_at,
    or the stored received_at of the review it resends (a first-seen time inherited from a stored
    copy without one is a run's time, not a receipt: session 21, round 3)."""
    return m.received if m.earlier_run else math.isfinite(m.arrival_ts)


def first_seen_copy(current: Fingerprint, copies: Sequence[Fingerprint], min_jaccard: float) -> Fingerprint:
    """This run's ``current`` fingerprint with the place where the review was first seen: the
    earliest of it and those of the store's ``copies`` that are the same review (:func:`same_review`).
    Reviews one run stored share that run's time and are told apart by their input position, so a
    resent honest review keeps its place before copies stored after it in the same run (session 21:
    it took this run's position, sorted after them, and was rejected as their copy). A copy from a
    store written before positions were kept gives only its time: with no position it cannot be
    placed among the reviews its run stored."""
    same = [c for c in copies if same_review(current, c, min_jaccard)]
    # a heavier edit by its author (an appended update) keeps the earlier version's place too, but
    # that place vouches only for the earlier text: it is the source only of reviews sharing it
    # (session 23, round 12: the edit dropped its first version's place and was rejected as a copy of
    # that version's copies; "reserved text + an honest review's words" under a reserved id takes
    # the reserved text's place, which vouches for nothing of the honest review: round 3 stays shut)
    edited = [c for c in copies if not same_review(current, c, min_jaccard)
              and same_review(current, c, min(SOURCE_MIN_JACCARD, min_jaccard))]
    first = min([current] + same + edited, key=lambda f: (f.arrival_ts, not f.stored, f.input_uri, f.input_line))
    if first is current:
        return current
    earlier = {"earlier_text": first.shingle_hashes} if any(first is c for c in edited) else {}
    if not first.input_uri and not first.input_line:
        return current._replace(arrival_ts=first.arrival_ts, **earlier) if first.received else current
    return current._replace(arrival_ts=first.arrival_ts, input_uri=first.input_uri, input_line=first.input_line,
                            earlier_run=True, run_ts=first.run_ts, received=first.received, **earlier)


def _scan(earlier: List[Fingerprint]) -> List[Fingerprint]:
    """The earlier members a review is compared with to find its source: the first ``SOURCE_SCAN``
    (the first posting and what copies of it match) and the last ``SOURCE_SCAN`` (the most recent,
    what an edited chain matches): linear work per review however large the component."""
    if len(earlier) <= 2 * SOURCE_SCAN:
        return earlier
    return earlier[:SOURCE_SCAN] + earlier[-SOURCE_SCAN:]


def unknown_order(a: Fingerprint, b: Fingerprint) -> bool:
    """Whether nothing says which of two members came first: one was stored by an earlier run
    without ``received_at`` (it arrived at some time before that run), the other has a
    ``received_at`` before that run's time but came to light only later (a later run, or this one):
    a late delivery. Either may have copied the other, so neither is the other's source, and the
    decision does not change when the late one is resent (session 23, round 9: the late-delivered
    honest review was published as the original, then held, then rejected as the stored copy's
    copy when resent). Nor have two members of one run read from different files when one has a
    ``received_at`` and the other none: the run orders them by file name, which is not an arrival
    order (round 10: a partner file whose name sorted first made the attacker's unstamped copies the
    source of a stamped honest review, and an honest review from such a file, published in its run,
    was rejected when resent). The same file in one run is known: its lines are the order in which
    its run read them (round 3)."""
    for u, s in ((a, b), (b, a)):
        if not u.received and s.received:
            if (u.stored or u.earlier_run) and math.isfinite(u.run_ts) and s.arrival_ts < u.run_ts and s.run_ts > u.run_ts:
                return True
            if u.run_ts == s.run_ts and u.input_uri != s.input_uri:
                return True   # one run, two files, one stamped: file names are not an arrival order (round 10)
    return False


def describe_cluster(members: Sequence[Fingerprint], cfg: DedupConfig) -> Dict[str, dict]:
    """Per-member signal values for one connected component (members of this run and the store).

    A component joins reviews through chains of similar pairs, so two of its members can share no
    text at all. What a member *is* is therefore decided by the reviews it matches itself:

    * its **source** is the first earlier member (:func:`arrival_key`, never the ``created_at`` the
      author sets) whose text it shares at least ``SOURCE_MIN_JACCARD`` (0.5) with. A member without one is a
      **first posting** (``is_canonical``): a review that copies of it came after, or a chain of
      edited copies reaches, is never itself a copy. Declared syndicated copies are never a source
      of the site's own reviews (the same text legitimately published by a partner, even earlier);
    * ``author_repeats``: its author has another member whose text *it* matches (so a chain between
      two different reviews of one honest author is not an author repeating itself); in a cluster
      whose only non-syndicated author is one author, a member that repeats nothing is not
      ``author_repeat`` evidence either.

    ``canonical_review_id`` names the member's source (itself for a first posting);
    ``cluster_id``, ``cluster_size`` and the authors and products are the component's;
    ``site_members`` counts the component's members that are not declared syndicated copies (what
    the policy's "large cluster" rule counts: a popular review's partner copies are not a campaign)."""
    unique = list({m.review_id: m for m in members}.values())
    by_id = {m.review_id: m for m in unique}
    bar = min(SOURCE_MIN_JACCARD, cfg.threshold)
    placement = arrival_order(unique, bar)
    ordered = sorted(unique, key=placement.key)
    own = [m for m in ordered if not m.declared_syndication]
    first = own[0] if own else ordered[0]
    hashes = {m.review_id: m.hashes() for m in ordered}

    def matches(a: Fingerprint, b: Fingerprint) -> bool:
        return exact_jaccard(hashes[a.review_id], hashes[b.review_id]) >= bar

    def source_of(e: Fingerprint, m: Fingerprint) -> bool:
        """``e`` (earlier) is ``m``'s source: they share text, their order is known (not
        :func:`unknown_order`; ``e`` not received after ``m``), and if ``e`` is earlier only because a stamped member capped it,
        ``m`` shares text with that member too (what proves ``e`` early is its text in common with
        the capper, not the rest of it: session 23, round 8)."""
        if not matches(e, m) or unknown_order(e, m):
            return False
        if e.earlier_text and exact_jaccard(np.frombuffer(e.earlier_text, dtype="<u4"), hashes[m.review_id]) < bar:
            return False   # an edit placed where its earlier version was: it vouches for that text only
        if e.received and m.received and e.arrival_ts >= m.arrival_ts:
            return False   # received after it: whatever the run's order mode (round 9: an unstamped
                           # member of this run put every member of the run after the stored ones)
        if e.review_id not in placement.capped:
            return True
        by, uncapped = placement.capped[e.review_id]
        if placement.key(m) > (0, uncapped, e.run_ts, e.input_uri, e.input_line, e.review_id):
            return True   # after it even without the cap
        capper = by_id[by]   # ... and the capper itself is known to come before m (round 11)
        return (exact_jaccard(hashes[by], hashes[m.review_id]) >= bar and not unknown_order(capper, m)
                and not (capper.received and m.received and capper.arrival_ts >= m.arrival_ts))

    source: Dict[str, Fingerprint] = {}
    earlier: List[Fingerprint] = []
    for m in ordered:
        if m.declared_syndication:
            source[m.review_id] = next((e for e in _scan(own) if matches(e, m)), first)
            continue
        source[m.review_id] = next((e for e in _scan(earlier) if source_of(e, m)), m)
        earlier.append(m)
    by_author: Dict[str, List[Fingerprint]] = {}
    for m in own:
        by_author.setdefault(m.author_id, []).append(m)
    repeats = {m.review_id: any(o.review_id != m.review_id and matches(o, m) for o in _scan(by_author[m.author_id]))
               for m in own}
    authors = {m.author_id for m in own}
    products = {m.product_id for m in own}
    family = first.family
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
    cid = cluster_id(first.review_id)
    out = {}
    for m in ordered:
        src = source[m.review_id]
        if m.declared_syndication:
            pattern = SYNDICATED_COPY
        elif cluster_pattern == AUTHOR_REPEAT and not repeats[m.review_id]:
            pattern = SYNDICATION_SOURCE   # linked to its author's other reviews only through others' texts
        else:
            pattern = cluster_pattern
        out[m.review_id] = {
            "cluster_id": cid,
            "cluster_size": len(ordered),
            "site_members": len(own),
            "canonical_review_id": src.review_id,
            "is_canonical": src.review_id == m.review_id,
            "similarity_to_canonical": round(exact_jaccard(hashes[m.review_id], hashes[src.review_id]), 4),
            "pattern": pattern,
            "evidence": pattern in EVIDENCE_PATTERNS,
            "distinct_authors": len(authors),
            "distinct_products": len(products),
            "members_from_earlier_runs": sum(1 for x in ordered if x.stored),
            "author_repeats": repeats.get(m.review_id, False),
            "canonical_by": ("received_at" if math.isfinite(src.arrival_ts) and not (src.stored or src.earlier_run)
                             else "first_seen"),
            "shingles": m.n_shingles,
        }
    return out


def unclustered_values(fp: Fingerprint) -> dict:
    return {"cluster_id": None, "cluster_size": 1, "site_members": 1, "canonical_review_id": fp.review_id, "is_canonical": True,
            "similarity_to_canonical": 1.0, "pattern": NONE, "evidence": False, "author_repeats": False,
            "shingles": fp.n_shingles}
