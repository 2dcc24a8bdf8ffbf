"""Behavioural detection for streaming: two stateful transforms, keyed by product then by author.

    items ─ KeyByProduct ─ ProductWindowFn (state: recent reviewers within the window, reviews per
            │               day within retention; GC timer)
            │   → product_burst signal; the earlier co-reviewers of this product within the window
            │   → a "co-review" note to each of those earlier reviewers' authors
            └─ KeyByAuthor ─ AuthorWindowFn (state: own recent reviews, co-reviews learned; GC timer)
                → author_velocity and coordinated_group signals

The same rules as batch (``pipeline.behaviour``), computed from what the stream has seen so far:

* Bursts: the product's reviews within ±``burst_window_days``/2 of this one (from per-day counts)
  against its average rate since it was first seen in state (at least ``burst_min_baseline_days``).
* Velocity: the author's reviews within 24 h / 1 h of this one; the floor
  ``velocity_min_per_day`` stands in for the population quantile a stream cannot see (on YelpZip
  the quantile, 7, is below the floor).
* Groups: the author's links (another account that co-reviewed ≥ ``min_shared_products`` of
  this author's products within the window, all inside one span) and, among the linked accounts,
  their mutual links through the same products; a 2-core of ≥ ``min_group_authors`` accounts
  around this author makes this review evidence when it is one of the linking reviews.

Differences from batch: a review is judged on what arrived before it. The reviews that complete a
campaign carry the evidence; the campaign's first reviews were already decided (a stream cannot
take back what it published) and the next batch run over the signature store sees them all.

State is bounded: per product at most ``max_neighbours`` recent reviewers and one counter per day
of retention; per author at most ``STREAM_MAX_OWN`` own reviews and ``STREAM_MAX_COREVIEWS``
co-reviews, all expired by event-time timers after ``window_days`` (reviewers, co-reviews) or
``retention_days`` (day counts).
"""
from __future__ import annotations

import math
from typing import Dict, List, Set, Tuple

import apache_beam as beam
import numpy as np
from apache_beam.coders import PickleCoder
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import BagStateSpec, ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.utils.timestamp import Timestamp

from pipeline.behaviour.config import DAY, HOUR, BehaviourConfig
from pipeline.transforms.behaviour import behaviour_time
from pipeline.transforms.common import KEYED, stage_failed
from schemas.records import Item, Signal

STREAM_MAX_OWN = 500
STREAM_MAX_COREVIEWS = 5000
COREVIEW = "coreview"
ALERTS = "alerts"


def _ts(item: Item) -> float:
    return behaviour_time(item.review)   # received_at when given, else created_at: as batch


class ProductWindowFn(beam.DoFn):
    """Keyed by product: burst values and the earlier co-reviewers of each new review."""

    RECENT = BagStateSpec("recent", PickleCoder())  # (ts, author_id, review_id) within window_days
    DAYS = ReadModifyWriteStateSpec("days", PickleCoder())  # {day: count} within retention, first day seen
    ALERTED = ReadModifyWriteStateSpec("alerted", PickleCoder())  # last day a product alert was emitted
    GC = TimerSpec("gc", TimeDomain.WATERMARK)

    def __init__(self, cfg: BehaviourConfig):
        self._cfg = cfg

    def process(self, element, recent=beam.DoFn.StateParam(RECENT), days=beam.DoFn.StateParam(DAYS),
                alerted=beam.DoFn.StateParam(ALERTED), gc=beam.DoFn.TimerParam(GC)):
        """Every review goes on to its author's step: on a failure here, product_burst not_run."""
        _, item = element
        try:
            out = list(self._process(item, recent, days, alerted, gc))
        except Exception as exn:  # noqa: BLE001 - one review's failure costs only its signal
            note = stage_failed("behaviour_product_window", exn, item.review.review_id)
            item = item.replace(signals={**item.signals,
                                         "product_burst": Signal("not_run", self._cfg.version, note=note)})
            out = [(item.review.author_id, ("review", item, ()))]
        yield from out

    def _process(self, item, recent, days, alerted, gc):
        cfg = self._cfg
        ts, author, rid = _ts(item), item.review.author_id, item.review.review_id
        window = cfg.window_days * DAY
        entries = list(recent.read())
        earlier = [(a, t) for t, a, r in entries if a != author and r != rid and abs(t - ts) <= window]
        earlier = earlier[-cfg.max_neighbours:]
        # bursts from per-day counts
        state = days.read() or {"first": math.floor(ts / DAY), "counts": {}}
        day = math.floor(ts / DAY)
        seen_before = any(r == rid for _, _, r in entries)
        if not seen_before:
            state["counts"][day] = state["counts"].get(day, 0) + 1
            state["first"] = min(state["first"], day)
        half = int(cfg.burst_window_days // 2)
        win = sum(n for d, n in state["counts"].items() if abs(d - day) <= half)
        total = sum(state["counts"].values())
        span_days = max(max(state["counts"]) - state["first"] + 1, cfg.burst_min_baseline_days)
        expected = total / span_days * cfg.burst_window_days
        ratio = win / max(expected, 1e-9)
        z = (win - expected) / math.sqrt(max(expected, 1e-9))
        burst = win >= cfg.burst_min_reviews and ratio >= cfg.burst_min_ratio and z >= cfg.burst_min_z
        values = {"burst": bool(burst), "evidence": False, "window_count": int(win),
                  "expected": round(expected, 3), "ratio": round(ratio, 3),
                  "reason": (f"product received {win} reviews within {cfg.burst_window_days:g} days, "
                             f"{ratio:.1f}× its usual rate (counted regardless of rating; never withholds)"
                             if burst else "product volume within its usual range")}
        item = item.replace(signals={**item.signals, "product_burst": Signal("scored", cfg.version, values)})
        # keep state bounded: recent reviewers within the window (capped), day counts within retention
        if not seen_before:
            keep = [e for e in entries if ts - e[0] <= window][-(cfg.max_neighbours - 1):] + [(ts, author, rid)]
            recent.clear()
            for e in keep:
                recent.add(e)
            oldest_day = day - cfg.retention_days
            state["counts"] = {d: n for d, n in state["counts"].items() if d >= oldest_day}
            state["first"] = max(state["first"], oldest_day)
            days.write(state)
            gc.set(Timestamp(seconds=ts + max(window, cfg.retention_days * DAY)))
        last = alerted.read()
        if burst and (last is None or day - last > cfg.burst_window_days):
            # one alert when a product enters a burst (again after a quiet window), as batch's
            # product_alerts/; recorded last, so a failure before it cannot mark an alert never sent
            alert = {
                "product_id": item.review.product_id, "alert": "review_burst",
                "first_day": str(np.datetime64(int(day), "D")), "window_count": int(win),
                "expected_per_window": round(expected, 3), "ratio": round(ratio, 2), "review_id": rid,
                "note": "volume counted regardless of rating: a wave of honest complaints looks the same; "
                        "for moderators to look at, never a reason to withhold"}
            alerted.write(day)
            yield beam.pvalue.TaggedOutput(ALERTS, alert)
        yield author, ("review", item, tuple(earlier))
        for other, t_other in earlier:  # tell the earlier reviewers' authors about this co-review
            yield other, (COREVIEW, item.review.product_id, author, ts)

    @on_timer(GC)
    def expire(self, fired=beam.DoFn.TimestampParam, recent=beam.DoFn.StateParam(RECENT),
               days=beam.DoFn.StateParam(DAYS), alerted=beam.DoFn.StateParam(ALERTED)):
        now = fired.micros / 1e6
        cfg = self._cfg
        keep = [e for e in recent.read() if now - e[0] <= cfg.window_days * DAY]
        recent.clear()
        for e in keep:
            recent.add(e)
        state = days.read()
        if state:
            oldest = math.floor(now / DAY) - cfg.retention_days
            state["counts"] = {d: n for d, n in state["counts"].items() if d >= oldest}
            if state["counts"]:
                days.write(state)
            else:
                days.clear()
                alerted.clear()


def local_group(me: str, own: List[Tuple[float, str, str]], co: List[Tuple[str, str, float]],
                cfg: BehaviourConfig) -> Tuple[Set[str], Dict[str, Set[str]]]:
    """From one author's view: the accounts of a 2-core group around ``me`` (empty if none) and, per
    linked account, the products that link it. ``own``: (ts, review_id, product); ``co``: (product,
    other author, other ts)."""
    window = cfg.window_days * DAY
    own_by_product: Dict[str, List[float]] = {}
    for t, _, p in own:
        own_by_product.setdefault(p, []).append(t)
    shared: Dict[str, Dict[str, float]] = {}  # other → product → co-review time (earliest of the pair)
    for p, other, t_other in co:
        for t in own_by_product.get(p, ()):
            if abs(t - t_other) <= window:
                when = min(t, t_other)
                prev = shared.setdefault(other, {}).get(p)
                if prev is None or when < prev:
                    shared[other][p] = when
    links: Dict[str, Set[str]] = {}
    for other, prods in shared.items():
        times = sorted(prods.items(), key=lambda kv: kv[1])
        best: Set[str] = set()
        right = 0
        for left in range(len(times)):
            while right < len(times) and times[right][1] - times[left][1] <= window:
                right += 1
            span = {p for p, _ in times[left:right]}
            if len(span) > len(best):
                best = span
        if len(best) >= cfg.min_shared_products:
            links[other] = best
    # mutual links among my linked accounts, through the products they share with me
    nodes = set(links) | {me}
    adj: Dict[str, Set[str]] = {n: set() for n in nodes}
    for other in links:
        adj[me].add(other)
        adj[other].add(me)
    names = sorted(links)
    for i, b in enumerate(names):
        for c in names[i + 1:]:
            if len(links[b] & links[c]) >= cfg.min_shared_products:
                adj[b].add(c)
                adj[c].add(b)
    alive = set(nodes)
    changed = True
    while changed:  # 2-core peeling
        changed = False
        for n in list(alive):
            if len(adj[n] & alive) < cfg.min_links:
                alive.discard(n)
                changed = True
    if me not in alive:
        return set(), links
    # my connected component within the core
    comp, todo = {me}, [me]
    while todo:
        n = todo.pop()
        for m in adj[n] & alive:
            if m not in comp:
                comp.add(m)
                todo.append(m)
    return (comp if len(comp) >= cfg.min_group_authors else set()), links


class AuthorWindowFn(beam.DoFn):
    """Keyed by author: velocity and coordinated-group evidence for each new review."""

    OWN = BagStateSpec("own", PickleCoder())  # (ts, review_id, product_id)
    CO = BagStateSpec("co", PickleCoder())  # (product_id, other author, other ts)
    GC = TimerSpec("gc", TimeDomain.WATERMARK)

    def __init__(self, cfg: BehaviourConfig):
        self._cfg = cfg

    def process(self, element, own=beam.DoFn.StateParam(OWN), co=beam.DoFn.StateParam(CO),
                gc=beam.DoFn.TimerParam(GC)):
        """Every review comes out: on a failure here, author_velocity and coordinated_group not_run."""
        author, payload = element
        try:
            out = list(self._process(author, payload, own, co, gc))
        except Exception as exn:  # noqa: BLE001 - one review's failure costs only its signal
            if payload[0] == COREVIEW:
                stage_failed("behaviour_author_window", exn, author)
                return
            item = payload[1]
            note = stage_failed("behaviour_author_window", exn, item.review.review_id)
            failed = Signal("not_run", self._cfg.version, note=note)
            out = [item.replace(signals={**item.signals, "author_velocity": failed, "coordinated_group": failed})]
        yield from out

    def _process(self, author, payload, own, co, gc):
        cfg = self._cfg
        keep_for = 2 * cfg.window_days * DAY
        if payload[0] == COREVIEW:
            _, product, other, t_other = payload
            co.add((product, other, t_other))
            gc.set(Timestamp(seconds=t_other + keep_for))
            return
        _, item, earlier = payload
        ts, rid, product = _ts(item), item.review.review_id, item.review.product_id
        mine = [e for e in own.read() if e[1] != rid]
        learned = list(co.read()) + [(product, a, t) for a, t in earlier]
        entries = mine + [(ts, rid, product)]
        per_day = sum(1 for t, _, _ in entries if abs(t - ts) <= DAY / 2)
        per_hour = sum(1 for t, _, _ in entries if abs(t - ts) <= HOUR / 2)
        sub_day = any(t % DAY for t, _, _ in entries)
        vel = per_day >= cfg.velocity_min_per_day or (sub_day and per_hour >= cfg.velocity_min_per_hour)
        velocity = {"per_day": per_day, "per_hour": per_hour if sub_day else None,
                    "population_threshold_per_day": cfg.velocity_min_per_day, "evidence": bool(vel),
                    "reason": (f"{per_day} reviews by this account within 24 hours across products "
                               f"(threshold {cfg.velocity_min_per_day})" if vel
                               else "review rate within the population's range"),
                    "note": "streaming: the fixed floor stands in for the population quantile"}
        group, links = local_group(author, entries, learned, cfg)
        linking = {p for other in group if other in links for p in links[other]}
        evidence = bool(group) and product in linking
        if evidence:
            grp = {"evidence": True, "group_authors": len(group), "group_products": len(linking),
                   "author_shared_products": len(linking), "links": len(links), "window_days": cfg.window_days,
                   "reason": (f"one of {len(group)} accounts that reviewed the same {len(linking)} products "
                              f"within {cfg.window_days:g} days (seen so far in the stream)")}
        else:
            grp = {"evidence": False, "group_id": None, "links": len(links), "window_days": cfg.window_days,
                   "reason": "no coordinated group of accounts around this review (so far in the stream)"}
        signals = {**item.signals, "author_velocity": Signal("scored", cfg.version, velocity),
                   "coordinated_group": Signal("scored", cfg.version, grp)}
        # bounded state: own reviews and co-reviews within twice the window, capped
        own.clear()
        for e in [e for e in entries if ts - e[0] <= keep_for][-STREAM_MAX_OWN:]:
            own.add(e)
        co.clear()
        for e in [e for e in learned if ts - e[2] <= keep_for][-STREAM_MAX_COREVIEWS:]:
            co.add(e)
        gc.set(Timestamp(seconds=ts + keep_for))
        yield item.replace(signals=signals)

    @on_timer(GC)
    def expire(self, fired=beam.DoFn.TimestampParam, own=beam.DoFn.StateParam(OWN), co=beam.DoFn.StateParam(CO)):
        now = fired.micros / 1e6
        keep_for = 2 * self._cfg.window_days * DAY
        kept_own = [e for e in own.read() if now - e[0] < keep_for]
        kept_co = [e for e in co.read() if now - e[2] < keep_for]
        own.clear()
        co.clear()
        for e in kept_own:
            own.add(e)
        for e in kept_co:
            co.add(e)


class StreamingBehaviour(beam.PTransform):
    """PCollection[Item] (event time = created_at) → (PCollection[Item] with the three behavioural
    signals, product alerts: one when a product enters a burst)."""

    def __init__(self, cfg: BehaviourConfig):
        super().__init__()
        self._cfg = cfg

    def expand(self, items):
        cfg = self._cfg
        by_product = (items
                      | "KeyByProduct" >> beam.Map(lambda it: (it.review.product_id, it)).with_output_types(KEYED)
                      | "ProductWindow" >> beam.ParDo(ProductWindowFn(cfg)).with_output_types(KEYED).with_outputs(ALERTS, main="reviews"))
        out = by_product.reviews | "AuthorWindow" >> beam.ParDo(AuthorWindowFn(cfg))
        return out, by_product[ALERTS]
