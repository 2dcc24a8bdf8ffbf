"""Behavioural signals over ``(review_id, author_id, product_id, time)`` records, with numpy.

Nothing here receives a rating or a text: :class:`Event` has no field for either, so no signal can
read them, directly or through a derived feature.

:func:`analyse` takes every event in view (this run's reviews and, in batch, the signature
store's reviews within the retention window, marked ``context``) and returns one entry per
review for each signal, the coordinated groups, and the product alerts.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from pipeline.behaviour.config import DAY, HOUR, BehaviourConfig

SIGNALS = ("coordinated_group", "author_velocity", "product_burst", "shared_client")


class Event(NamedTuple):
    """What the behavioural detectors know of a review: who, what, when, and through which client."""

    review_id: str
    author_id: str
    product_id: str
    ts: float  # UTC seconds
    client_prefix: Optional[str] = None  # hashed IP prefix, as given by the platform
    device_id: Optional[str] = None
    context: bool = False  # from an earlier run (signature store): evidence, not decided here
    trusted: bool = False  # ts is the platform's received_at (the author cannot set it)
    # when the pipeline first saw it: (arrival_ts, input uri, line); arrival_ts is an earlier run's
    # first-seen time (or received_at) for a stored review, inf for this run's. None: not known
    seen: Optional[Tuple[float, str, int]] = None


class RowValues(Mapping):
    """review id → its values, made by ``make(row)`` when read (read-only; equal to the dict it reads as)."""

    def __init__(self, index: Dict[str, int], make: Callable[[int], Dict[str, Any]]):
        self._index, self._make = index, make

    def __getitem__(self, review_id: str) -> Dict[str, Any]:
        return self._make(self._index[review_id])

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)


@dataclass
class Analysis:
    """Per-review values for each signal (keyed by review id), groups and product alerts."""

    coordinated_group: Mapping[str, Dict[str, Any]] = field(default_factory=dict)
    author_velocity: Mapping[str, Dict[str, Any]] = field(default_factory=dict)
    product_burst: Mapping[str, Dict[str, Any]] = field(default_factory=dict)
    shared_client: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    groups: List[Dict[str, Any]] = field(default_factory=list)
    product_alerts: List[Dict[str, Any]] = field(default_factory=list)
    day_resolution: bool = False
    velocity_threshold: int = 0


# -- helpers ---------------------------------------------------------------------------------------

def _window_counts(key: np.ndarray, t: np.ndarray, half: float) -> np.ndarray:
    """For each row, how many rows with the same key have a time within ±half (inclusive)."""
    order = np.lexsort((t, key))
    k, ts = key[order], t[order]
    # composite sort on (key, t): search within the key's run
    starts = np.searchsorted(k, k, side="left")
    ends = np.searchsorted(k, k, side="right")
    out = np.empty(len(t), dtype=np.int64)
    lo = np.empty(len(t), dtype=np.int64)
    hi = np.empty(len(t), dtype=np.int64)
    # ts is sorted inside each key run; offset searches by a big constant per key keep it vectorised
    span = float(ts.max() - ts.min() + 4 * half + 1) if len(ts) else 1.0
    kt = k.astype(np.float64) * span + (ts - (ts.min() if len(ts) else 0.0))
    lo[:] = np.searchsorted(kt, kt - half, side="left")
    hi[:] = np.searchsorted(kt, kt + half, side="right")
    np.maximum(lo, starts, out=lo)
    np.minimum(hi, ends, out=hi)
    out[order] = hi - lo
    return out


def _stable_id(prefix: str, parts: Iterable[str]) -> str:
    return prefix + hashlib.sha256("\x1f".join(sorted(parts)).encode()).hexdigest()[:12]


def _day(ts: float) -> str:
    return np.datetime64(int(ts), "s").astype("datetime64[D]").astype(str)


# -- coordinated groups ----------------------------------------------------------------------------

def co_review_pairs(author: np.ndarray, product: np.ndarray, t: np.ndarray, window: float,
                    max_neighbours: int, min_products: int = 1) -> np.ndarray:
    """Pairs of reviews (row indices i < j in the input) of one product by two different authors
    within ``window`` seconds of each other; at most ``max_neighbours`` later reviews per review.

    ``min_products``: only pairs of two authors who each reviewed at least that many distinct
    products (a link needs ``min_shared_products`` of them); the neighbour limit still counts every
    review, so the pairs kept are the same as without it. A store's many one-off reviewers make
    most co-reviews: 27M pairs for the 1M bench corpus before, in 1.3 GB."""
    order = np.lexsort((t, product))
    p, ts, a = product[order], t[order], author[order]
    dtype = np.int32 if len(order) < 2 ** 31 else np.int64
    order = order.astype(dtype)
    able = None
    if min_products > 1:
        nprod = int(product.max()) + 1 if len(product) else 1
        distinct = np.unique(author.astype(np.int64) * nprod + product)
        per_author = np.bincount(distinct // nprod, minlength=int(author.max()) + 1 if len(author) else 0)
        able = (per_author >= min_products)[a]
    out_i, out_j = [], []
    n = len(order)
    for off in range(1, min(max_neighbours, n - 1) + 1):
        same = (p[off:] == p[:-off]) & (ts[off:] - ts[:-off] <= window)
        if not same.any():
            break
        if able is not None:
            same &= able[off:] & able[:-off]
        idx = np.nonzero(same)[0]
        idx = idx[a[idx] != a[idx + off]]
        out_i.append(order[idx])
        out_j.append(order[idx + off])
    if not out_i:
        return np.empty((0, 2), dtype=dtype)
    return np.stack([np.concatenate(out_i), np.concatenate(out_j)], axis=1)


def linked_pairs(author: np.ndarray, product: np.ndarray, t: np.ndarray, cfg: BehaviourConfig
                 ) -> Tuple[np.ndarray, np.ndarray, List[np.ndarray]]:
    """Author links: (lo author, hi author) arrays and, per link, the review rows that make it.

    A link needs ``min_shared_products`` distinct products co-reviewed (each within the window)
    with all those co-reviews inside one span of ``window_days``."""
    window = cfg.window_days * DAY
    pairs = co_review_pairs(author, product, t, window, cfg.max_neighbours, cfg.min_shared_products)
    empty = (np.empty(0, np.int64), np.empty(0, np.int64), [])
    if len(pairs) == 0:
        return empty
    i, j = pairs[:, 0], pairs[:, 1]
    lo = np.minimum(author[i], author[j]).astype(np.int64)
    hi = np.maximum(author[i], author[j]).astype(np.int64)
    n_auth = int(author.max()) + 1
    pair_key = lo * n_auth + hi
    # distinct products per author pair: keep the pairs with enough of them
    pk_prod = np.unique(np.stack([pair_key, product[i].astype(np.int64)], axis=1), axis=0)
    keys, counts = np.unique(pk_prod[:, 0], return_counts=True)
    cand = keys[counts >= cfg.min_shared_products]
    keep = np.isin(pair_key, cand)
    if not keep.any():
        return empty
    i, j, pair_key = i[keep], j[keep], pair_key[keep]
    when = np.minimum(t[i], t[j])
    order = np.lexsort((when, pair_key))
    i, j, pair_key, when = i[order], j[order], pair_key[order], when[order]
    bounds = np.flatnonzero(np.diff(pair_key)) + 1
    out_lo, out_hi, rows = [], [], []
    for s, e in zip(np.r_[0, bounds], np.r_[bounds, len(pair_key)]):
        w, prods = when[s:e], product[i[s:e]]
        best, best_rows = 0, None
        right = 0
        for left in range(e - s):  # sliding span over the pair's co-reviews, in time order
            while right < e - s and w[right] - w[left] <= window:
                right += 1
            distinct = len(set(prods[left:right].tolist()))
            if distinct > best:
                best, best_rows = distinct, np.r_[i[s + left:s + right], j[s + left:s + right]]
        if best >= cfg.min_shared_products:
            out_lo.append(pair_key[s] // n_auth)
            out_hi.append(pair_key[s] % n_auth)
            rows.append(best_rows)
    return np.asarray(out_lo, np.int64), np.asarray(out_hi, np.int64), rows


def k_core_groups(lo: np.ndarray, hi: np.ndarray, min_links: int, min_authors: int) -> List[np.ndarray]:
    """Sets of authors (ids) where each is linked to ≥ ``min_links`` others in the set, ≥ ``min_authors`` large:
    greedy peeling of the link graph (remove the authors below the degree until none is), then
    connected components."""
    if len(lo) == 0:
        return []
    nodes, inv = np.unique(np.r_[lo, hi], return_inverse=True)
    a, b = inv[:len(lo)], inv[len(lo):]
    alive_edge = np.ones(len(a), dtype=bool)
    while True:
        deg = np.bincount(a[alive_edge], minlength=len(nodes)) + np.bincount(b[alive_edge], minlength=len(nodes))
        weak = (deg > 0) & (deg < min_links)
        if not weak.any():
            break
        alive_edge &= ~(weak[a] | weak[b])
    if not alive_edge.any():
        return []
    a, b = a[alive_edge], b[alive_edge]
    labels = _components(len(nodes), a, b)
    members = np.unique(np.r_[a, b])
    groups = []
    for lab in np.unique(labels[members]):
        g = members[labels[members] == lab]
        if len(g) >= min_authors:
            groups.append(nodes[g])
    return groups


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected-component label per node (union-find; the link graph is small: links, not reviews)."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for x, y in zip(a.tolist(), b.tolist()):
        rx, ry = find(x), find(y)
        if rx != ry:
            parent[max(rx, ry)] = min(rx, ry)
    return np.array([find(x) for x in range(n)], dtype=np.int64)


# -- analysis --------------------------------------------------------------------------------------

def analyse(events: Sequence[Event], cfg: BehaviourConfig = BehaviourConfig()) -> Analysis:
    """Every signal for every event (context events included: callers keep the ones they decide)."""
    res = Analysis()
    n = len(events)
    if n == 0:
        return res
    rid = [e.review_id for e in events]
    _, author = np.unique(np.array([e.author_id for e in events], dtype=object).astype(str), return_inverse=True)
    prod_names, product = np.unique(np.array([e.product_id for e in events], dtype=object).astype(str),
                                    return_inverse=True)
    t = np.fromiter((e.ts for e in events), dtype=np.float64, count=n)
    trusted = np.fromiter((e.trusted for e in events), dtype=bool, count=n)
    order = seen_order(events)
    arrays = _analyse_arrays(author, product, t, cfg, trusted, order)
    res.day_resolution = arrays["day_resolution"]
    res.velocity_threshold = arrays["velocity_threshold"]
    authors_of = [e.author_id for e in events]
    # per-review values are made when read, from the arrays: a dict per review per signal, made
    # at once, took ~3 GB for a million reviews; each review's values are read once
    index = {review_id: r for r, review_id in enumerate(rid)}

    # coordinated groups
    in_group = arrays["group_of_row"]
    for gi, g in enumerate(arrays["groups"]):
        rows = g["rows"]
        members = sorted({authors_of[r] for r in rows})
        products = sorted({events[r].product_id for r in rows})
        times = t[rows]
        gid = _stable_id("grp-", members + ["|"] + products)
        res.groups.append({"group_id": gid, "authors": len(members), "products": len(products),
                           "reviews": int(len(rows)), "first_day": _day(times.min()), "last_day": _day(times.max()),
                           "author_ids": members, "product_ids": products})
        g["group_id"] = gid
        g["n_authors"], g["n_products"] = len(members), len(products)
        g["product_ids"] = products[:20]

    def group_values(r: int) -> Dict[str, Any]:
        gi = in_group[r]
        links = int(arrays["links_of_author"].get(int(author[r]), 0))
        if gi < 0:
            return {"evidence": False, "group_id": None, "links": links, "window_days": cfg.window_days,
                    "reason": "no coordinated group of accounts around this review"}
        g = arrays["groups"][gi]
        if not arrays["group_evidence"][r]:
            return {"evidence": False, "group_id": g["group_id"], "links": links, "window_days": cfg.window_days,
                    "reason": "the first review of this product among the group's accounts: the others came "
                              "after it, so it is not evidence (accounts can gather around an honest review)"}
        mine = {events[x].product_id for x in g["rows"] if authors_of[x] == authors_of[r]}
        return {"evidence": True, "group_id": g["group_id"], "group_authors": g["n_authors"],
                "group_products": g["n_products"], "group_product_ids": g["product_ids"],
                "author_shared_products": len(mine), "links": links, "window_days": cfg.window_days,
                "reason": (f"one of {g['n_authors']} accounts that reviewed the same {g['n_products']} products "
                           f"within {cfg.window_days:g} days (this account: {len(mine)} of them)")}

    # velocity
    per_day, per_hour = arrays["per_day"], arrays["per_hour"]
    vel_ev = arrays["velocity_evidence"]

    def velocity_values(r: int) -> Dict[str, Any]:
        vals = {"per_day": int(per_day[r]), "per_hour": None if res.day_resolution else int(per_hour[r]),
                "share_of_history": round(float(per_day[r] / arrays["author_reviews"][r]), 4),
                "population_threshold_per_day": res.velocity_threshold, "evidence": bool(vel_ev[r])}
        if vel_ev[r]:
            vals["reason"] = (f"{int(per_day[r])} reviews by this account within 24 hours across products "
                              f"(population threshold {res.velocity_threshold})")
        else:
            vals["reason"] = "review rate within the population's range"
        if res.day_resolution:
            vals["note"] = "timestamps at day resolution: the hourly rate is not measurable"
        return vals

    # bursts and alerts
    burst = arrays["burst"]

    def burst_values(r: int) -> Dict[str, Any]:
        b = bool(burst[r])
        return {"burst": b, "evidence": False, "window_count": int(arrays["win"][r]),
                "expected": round(float(arrays["expected"][r]), 3), "ratio": round(float(arrays["ratio"][r]), 3),
                "reason": (f"product received {int(arrays['win'][r])} reviews within {cfg.burst_window_days:g} days, "
                           f"{arrays['ratio'][r]:.1f}× its usual rate (counted regardless of rating; never withholds)"
                           if b else "product volume within its usual range")}

    res.coordinated_group = RowValues(index, group_values)
    res.author_velocity = RowValues(index, velocity_values)
    res.product_burst = RowValues(index, burst_values)
    for p in np.unique(product[burst]):
        rows = np.flatnonzero((product == p) & burst)
        days = np.unique(np.floor(t[rows] / DAY))
        # one alert per run of burst days (gaps of more than the window split alerts)
        cuts = np.flatnonzero(np.diff(days) > cfg.burst_window_days) + 1
        for seg in np.split(days, cuts):
            sel = rows[(np.floor(t[rows] / DAY) >= seg[0]) & (np.floor(t[rows] / DAY) <= seg[-1])]
            res.product_alerts.append({
                "product_id": str(prod_names[p]), "alert": "review_burst",
                "first_day": _day(seg[0] * DAY), "last_day": _day(seg[-1] * DAY),
                "reviews_in_burst": int(len(sel)), "peak_window_count": int(arrays["win"][sel].max()),
                "expected_per_window": round(float(arrays["expected"][sel[0]]), 3),
                "peak_ratio": round(float(arrays["ratio"][sel].max()), 2),
                "review_ids": sorted(events[x].review_id for x in sel)[:200],
                "note": "volume counted regardless of rating: a wave of honest complaints looks the same; "
                        "for moderators to look at, never a reason to withhold"})

    # shared client (optional metadata)
    for r, vals in _shared_client(events, t, cfg, trusted, order).items():
        res.shared_client[rid[r]] = vals
    return res


def seen_order(events: Sequence[Event]) -> Optional[np.ndarray]:
    """Per event (run, file, rank) as an (n, 3) array: ``rank`` in the order the pipeline first saw
    them (earlier runs' stored reviews by their first-seen time, then each run's by input file and
    line; equal places share a rank); ``run`` and ``file`` number the first-seen times and the
    (time, input file) pairs, so two files of one run can be told apart (they have no order). None
    when any event lacks it. Arrays, not a dict of tuples: a million events in a batch run."""
    n = len(events)
    if not n or any(e.seen is None for e in events):
        return None
    when = np.fromiter((e.seen[0] for e in events), dtype=np.float64, count=n)
    uri_rank = {u: i for i, u in enumerate(sorted({e.seen[1] for e in events}))}
    uri = np.fromiter((uri_rank[e.seen[1]] for e in events), dtype=np.int64, count=n)
    line = np.fromiter((e.seen[2] for e in events), dtype=np.int64, count=n)
    idx = np.lexsort((line, uri, when))
    new = np.ones(n, dtype=np.int64)
    w, u, k = when[idx], uri[idx], line[idx]
    new[1:] = (w[1:] != w[:-1]) | (u[1:] != u[:-1]) | (k[1:] != k[:-1])   # (inf != inf is False)
    rank = np.empty(n, dtype=np.int64)
    rank[idx] = np.cumsum(new) - 1
    run = np.unique(when, return_inverse=True)[1].reshape(-1)
    file = np.unique(run * len(uri_rank) + uri, return_inverse=True)[1].reshape(-1)
    return np.column_stack([run, file, rank]).astype(np.int64)


def _analyse_arrays(author: np.ndarray, product: np.ndarray, t: np.ndarray, cfg: BehaviourConfig,
                    trusted: Optional[np.ndarray] = None, order: Optional[np.ndarray] = None) -> Dict[str, Any]:
    n = len(t)
    out: Dict[str, Any] = {}
    day_res = bool(np.all(np.mod(t, DAY) == 0))
    out["day_resolution"] = day_res
    # velocity: centred windows (a day-resolution timestamp: the same day)
    per_day = _window_counts(author, t, DAY / 2 - (1 if day_res else 0))
    per_hour = _window_counts(author, t, HOUR / 2)
    # the population: author-days
    day_key = author.astype(np.int64) * 100000 + np.floor(t / DAY).astype(np.int64)
    _, day_counts = np.unique(day_key, return_counts=True)
    thr = int(max(cfg.velocity_min_per_day, np.ceil(np.quantile(day_counts, cfg.velocity_quantile)) + 1))
    out["velocity_threshold"] = thr
    ev = per_day >= thr
    if not day_res:
        ev |= per_hour >= cfg.velocity_min_per_hour
    out["per_day"], out["per_hour"], out["velocity_evidence"] = per_day, per_hour, ev
    out["author_reviews"] = np.bincount(author)[author]
    # bursts
    win = _window_counts(product, t, cfg.burst_window_days * DAY / 2)
    nprod = int(product.max()) + 1
    cnt = np.bincount(product, minlength=nprod).astype(float)
    first = np.full(nprod, np.inf)
    last = np.full(nprod, -np.inf)
    np.minimum.at(first, product, t)
    np.maximum.at(last, product, t)
    span_days = np.maximum((last - first) / DAY + 1, cfg.burst_min_baseline_days)
    rate = cnt / span_days  # per day, over the product's whole history in view
    expected = rate[product] * cfg.burst_window_days
    ratio = win / np.maximum(expected, 1e-9)
    z = (win - expected) / np.sqrt(np.maximum(expected, 1e-9))
    out["win"], out["expected"], out["ratio"] = win, expected, ratio
    out["burst"] = (win >= cfg.burst_min_reviews) & (ratio >= cfg.burst_min_ratio) & (z >= cfg.burst_min_z)
    # coordinated groups
    lo, hi, rows = linked_pairs(author, product, t, cfg)
    links: Dict[int, int] = {}
    for x, y in zip(lo.tolist(), hi.tolist()):
        links[x] = links.get(x, 0) + 1
        links[y] = links.get(y, 0) + 1
    out["links_of_author"] = links
    groups = k_core_groups(lo, hi, cfg.min_links, cfg.min_group_authors)
    group_of_row = np.full(n, -1, dtype=np.int64)
    gdesc = []
    for gi, members in enumerate(groups):
        mset = set(members.tolist())
        grows = set()
        for x, y, rr in zip(lo.tolist(), hi.tolist(), rows):
            if x in mset and y in mset:
                grows.update(rr.tolist())
        grows_arr = np.array(sorted(grows), dtype=np.int64)
        group_of_row[grows_arr] = gi
        gdesc.append({"rows": grows_arr})
    out["groups"], out["group_of_row"] = gdesc, group_of_row
    out["group_evidence"] = joined_after_others(author, product, t, gdesc, trusted, order)
    out["n_links"] = len(lo)
    return out


def joined_after_others(author: np.ndarray, product: np.ndarray, t: np.ndarray,
                        groups: List[Dict[str, Any]], trusted: Optional[np.ndarray] = None,
                        order: Optional[np.ndarray] = None) -> np.ndarray:
    """Per row: in a group, and another account of the group reviewed its product no later than it.
    The group's first review of a product is not evidence: accounts that review the same products
    after an honest reviewer, within the window, would otherwise make the honest reviews look
    coordinated. "No later" is :func:`came_no_later` (``trusted`` marks platform times, ``order``
    the order first seen)."""
    out = np.zeros(len(t), dtype=bool)
    for g in groups:
        by_product: Dict[int, List[int]] = {}
        for r in g["rows"].tolist():
            by_product.setdefault(int(product[r]), []).append(r)
        for rows in by_product.values():
            for r in rows:
                out[r] = any(author[x] != author[r] and _no_later(x, r, t, trusted, order) for x in rows)
    return out


def _no_later(x: int, r: int, t: np.ndarray, trusted: Optional[np.ndarray], order: Optional[np.ndarray]) -> bool:
    return came_no_later(t[x], t[r], trusted is not None and bool(trusted[x]), trusted is not None and bool(trusted[r]),
                         _seen(order, x), _seen(order, r))


def _seen(order: Optional[np.ndarray], r: int) -> Optional[Tuple[int, int, int]]:
    return None if order is None else (int(order[r, 0]), int(order[r, 1]), int(order[r, 2]))


def came_no_later(tx: float, tr: float, x_trusted: bool = False, r_trusted: bool = False,
                  x_seen: Optional[Tuple[int, int, int]] = None, r_seen: Optional[Tuple[int, int, int]] = None) -> bool:
    """Whether a review at ``tx`` came no later than one at ``tr``, for the "first review is not
    evidence" rules. A tie counts: accounts that post a product's reviews at one instant (or claim
    one) are a campaign, not a first review each (session 20's attack: six accounts on one device
    with one time escaped when ties did not count). The times are the platform's ``received_at``
    when given (``trusted``); without it they are ``created_at``, which the author sets. A time the
    author set never counts as before a platform time (session 20's attack: accounts without
    ``received_at`` dating their reviews an hour before an honest reviewer's made its reviews
    evidence).

    Between two author-set times the review must also have been **seen** no later (``x_seen``,
    ``r_seen``: (run, file, rank) of :func:`seen_order`: earlier runs first, then input file and
    line; a review resent in a later run keeps where it was first seen): accounts that copy or
    back-date an honest review's ``created_at`` but reach the platform after it no longer make it
    evidence (session 21). Two input files of one run have no order (shards, or a partner feed
    whose file name sorts first): across them, an author-set time is never before. The price: a campaign
    without ``received_at`` that dates each later review before the earlier ones, or spreads over
    input files, makes its reviews look first, and an export not in posting order loses evidence
    the same way; only ``received_at`` makes the order trustworthy both ways."""
    if r_trusted and not x_trusted:
        return False
    if not x_trusted and x_seen is not None and r_seen is not None:
        if x_seen[0] == r_seen[0] and x_seen[1] != r_seen[1]:
            return False
        if x_seen[2] > r_seen[2]:
            return False
    return tx <= tr


def _shared_client(events: Sequence[Event], t: np.ndarray, cfg: BehaviourConfig,
                   trusted: Optional[np.ndarray] = None, order: Optional[np.ndarray] = None) -> Dict[int, Dict[str, Any]]:
    """Accounts reviewing the same product through one device id / client prefix within the window.

    Only reviews with the metadata are scored; "new account" is not an input at all. A client
    prefix used by more than ``client_max_prefix_accounts`` accounts in view is a shared network
    (an office, a campus, carrier NAT): it is reported, never evidence. As for groups
    (:func:`joined_after_others`), the first review of a product through a key is not evidence:
    accounts that come onto an honest reviewer's network prefix (or claim its device id) and review
    its product after it would otherwise get the honest review held. A tie counts as before
    (:func:`came_no_later`)."""
    out: Dict[int, Dict[str, Any]] = {}
    window = cfg.window_days * DAY
    for attr, label in (("device_id", "device"), ("client_prefix", "client prefix")):
        by_key: Dict[str, List[int]] = {}
        for r, e in enumerate(events):
            v = getattr(e, attr)
            if v:
                by_key.setdefault(v, []).append(r)
        for key, rows in by_key.items():
            accounts_on_key = len({events[r].author_id for r in rows})
            shared_network = attr == "client_prefix" and accounts_on_key > cfg.client_max_prefix_accounts
            by_product: Dict[str, List[int]] = {}
            for r in rows:
                by_product.setdefault(events[r].product_id, []).append(r)
            for prows in by_product.values():
                prows.sort(key=lambda r: t[r])
                ts = t[prows]
                lo = np.searchsorted(ts, ts - window, side="left")
                hi = np.searchsorted(ts, ts + window, side="right")
                for k, r in enumerate(prows):
                    accounts = len({events[x].author_id for x in prows[lo[k]:hi[k]]})
                    first = not any(x != r and events[x].author_id != events[r].author_id
                                    and _no_later(x, r, t, trusted, order)
                                    for x in prows[lo[k]:hi[k]])
                    ev = accounts >= cfg.client_min_accounts and not shared_network and not first
                    prev = out.get(r)
                    if prev is not None and prev["accounts"] >= accounts and (prev["evidence"] or not ev):
                        continue
                    if ev:
                        reason = (f"{accounts} accounts reviewed this product through one {label} within "
                                  f"{cfg.window_days:g} days")
                    elif shared_network:
                        reason = f"shared network ({accounts_on_key} accounts on this {label}): not evidence"
                    elif accounts >= cfg.client_min_accounts:
                        reason = (f"the first review of this product through this {label}: the other "
                                  f"{accounts - 1} account(s) came after it, so it is not evidence (accounts "
                                  f"can gather on an honest reviewer's network)")
                    else:
                        reason = f"{accounts} account(s) reviewed this product through this {label} in the window"
                    out[r] = {"evidence": bool(ev), "by": attr, "accounts": accounts,
                              "accounts_on_client": accounts_on_key, "reason": reason}
    return out


# -- scores for evaluation -------------------------------------------------------------------------

def scores(author: np.ndarray, product: np.ndarray, t: np.ndarray, cfg: BehaviourConfig = BehaviourConfig(),
           order: Optional[np.ndarray] = None) -> Dict[str, np.ndarray]:
    """Array form of :func:`analyse` for evaluation over large files: per row, each signal's score
    and the evidence flags the policy acts on. ``order``: each row's rank in the order first seen
    (the line order of one input file, as a batch run without received_at uses it), or None for
    times alone."""
    if order is not None:
        order = np.column_stack([np.zeros((len(order), 2), np.int64), np.asarray(order, np.int64)])
    a = _analyse_arrays(author, product, t, cfg, None, order)
    links = np.zeros(int(author.max()) + 1 if len(author) else 0)
    for x, k in a["links_of_author"].items():
        links[x] = k
    ingrp = a["group_evidence"]
    # group score: membership of a group first, then how many links the author has
    grp = links[author] + np.where(ingrp, 1000.0, 0.0)
    share = a["per_day"] / a["author_reviews"]
    return {"coordinated_group": grp, "group_evidence": ingrp, "author_velocity": a["per_day"].astype(float),
            "velocity_share_of_history": share, "velocity_evidence": a["velocity_evidence"],
            "product_burst": a["ratio"], "burst": a["burst"], "velocity_threshold": a["velocity_threshold"],
            "groups": len(a["groups"]), "links": a["n_links"],
            "combined": combined_score(ingrp, a["velocity_evidence"], share, a["ratio"])}


def combined_score(group_evidence, velocity_evidence, share_of_history, burst_ratio):
    """One ranking score per review from the signals, for evaluation and for ordering the review
    queue; it never decides anything (the policy does, from the evidence flags).

        combined = 1·group_evidence + 0.5·velocity_evidence + share_of_history + 0.1·ln(1 + burst_ratio)

    ``share_of_history`` is the share of the account's reviews in view that fall within 24 hours
    of this one (1.0 when its whole visible history is that day, a first-time reviewer included):
    a ranking feature only, never a ground to withhold. The 0.1 weight on the burst term was
    chosen on YelpZip (0.1–0.3 give the same AUC within 0.001; see docs/behaviour.md)."""
    return (1.0 * np.asarray(group_evidence, float) + 0.5 * np.asarray(velocity_evidence, float)
            + np.asarray(share_of_history, float) + 0.1 * np.log1p(np.asarray(burst_ratio, float)))
