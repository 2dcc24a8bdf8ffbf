"""Evaluates the behavioural detectors on a YelpZip-format timeline and prints one JSON object.

    python -m models.evaluate_behaviour --metadata FILE[.gz] [--seed 0] [--campaigns 3]

FILE: whitespace-separated ``user_id prod_id rating label date`` (no header; label -1 = filtered
by Yelp's recommendation software, 1 = recommended; date YYYY-MM-DD). Any file of that format,
plain or gzip. The detectors never see the rating; it is read here only to measure star parity
after the fact. Yelp's filter is a proxy that mostly tracks account activity, not ground truth.

Keys:

* ``n``, ``n_filtered``, ``n_authors``, ``n_products``.
* ``auc_by_signal``: ROC-AUC of each signal's score against the filter label (filtered = positive):
  ``coordinated_group`` (group membership, then number of links), ``author_velocity`` (reviews by
  the account within 24 h), ``author_velocity_share_of_history``, ``product_burst`` (volume ratio
  against the product's baseline).
* ``auc_combined``: :func:`pipeline.behaviour.detect.combined_score`, a fixed documented formula.
* ``auc_baseline_review_count``: "fewer reviews by this author = more suspicious".
* ``injected_recall``: synthetic coordinated campaigns (k accounts × m products within d days,
  k ≥ 5, m ≥ 3, d ≤ 7; a third of each campaign's accounts are real accounts with their own
  history, some of the others get a synthetic honest-looking history) inserted into the real
  timeline: the share of campaign reviews the policy would withhold. ``injected_recall_by_size``
  breaks it down, ``injected_recall_small`` covers groups below the target (3–4 accounts or 2
  products: not promised), ``injected_recall_partial`` campaigns of 8 or 12 accounts over 6
  products where each account reviews only 4 of them (not promised either).
* ``flag_rate_recommended``: share of label-1 (recommended) reviews the policy would withhold,
  measured on the timeline *with* the injected campaigns (``flag_rate_recommended_clean``:
  without); ``flag_rate_by_signal`` splits it.
* ``withheld_by_star_recommended``: withheld rate per star 1–5 among label-1 reviews;
  ``star_parity``: 1–2★ vs 4–5★ gap in points; ``withheld_first_time_vs_others``.
* ``product_bursts``: share of reviews inside a product burst and the filtered rate among them
  (alerts only: never withheld).

The withhold rule is the policy's own: each review's signals go through
``pipeline.policy.DEFAULT_POLICY.decide_inputs`` (no duplicate or classifier evidence here: the
file has no text).
"""
from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from typing import Dict, List, Optional, Tuple

import numpy as np

from models import metrics
from pipeline.behaviour.config import DAY, BehaviourConfig
from pipeline.behaviour.detect import scores
from pipeline.policy import DEFAULT_POLICY, PolicyInputs

TARGET = dict(min_authors=5, min_products=3, max_days=7)


def load(path: str) -> Dict[str, np.ndarray]:
    opener = gzip.open if path.endswith(".gz") else open
    users, prods, ratings, labels, days = [], [], [], [], []
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            parts = line.split()
            if len(parts) < 5:
                continue
            users.append(parts[0]); prods.append(parts[1]); ratings.append(float(parts[2]))
            labels.append(int(float(parts[3]))); days.append(parts[4][:10])
    day = np.array(days, dtype="datetime64[D]").astype(np.int64)
    _, user = np.unique(np.array(users), return_inverse=True)
    _, prod = np.unique(np.array(prods), return_inverse=True)
    return {"user": user.astype(np.int64), "product": prod.astype(np.int64), "rating": np.array(ratings),
            "filtered": np.array(labels) == -1, "day": day}


def withhold_rule() -> Dict[Tuple[bool, bool], str]:
    """The policy's decision for each combination of (group evidence, velocity evidence); a burst
    is passed too and changes nothing (tests/test_policy.py proves it)."""
    out = {}
    for grp in (False, True):
        for vel in (False, True):
            x = PolicyInputs(review_id="r", has_text=True, redacted=(), labels=(),
                             coordinated_group={"status": "scored", "values": {"evidence": grp}},
                             author_velocity={"status": "scored", "values": {"evidence": vel}},
                             product_burst={"status": "scored", "values": {"burst": True, "evidence": False}})
            out[(grp, vel)] = DEFAULT_POLICY.decide_inputs(x).decision
    return out


def withheld(s: Dict[str, np.ndarray], rule) -> np.ndarray:
    g, v = s["group_evidence"], s["velocity_evidence"]
    out = np.zeros(len(g), dtype=bool)
    for (gk, vk), decision in rule.items():
        if decision in ("hold_for_review", "reject"):
            out |= (g == gk) & (v == vk)
    return out


def inject(data: Dict[str, np.ndarray], rng: np.random.Generator, repeats: int):
    """Synthetic campaigns appended to the timeline. Returns (user, product, day, campaign id per row
    (-1 for real rows), campaign table)."""
    user, prod, day = data["user"], data["product"], data["day"]
    n_users, n_prods = int(user.max()) + 1, int(prod.max()) + 1
    per_user = np.bincount(user)
    seasoned = np.flatnonzero(per_user >= 5)
    pop = np.bincount(prod, minlength=n_prods).astype(float)
    lo_day, hi_day = int(day.min()), int(day.max())
    sizes = [(k, m, d) for k in (5, 8, 12, 20) for m in (3, 5) for d in (1, 3, 7)]
    sizes += [(3, 3, 7), (4, 3, 7), (6, 2, 7)]  # below the target: reported apart
    sizes += [(8, 6, 7, "partial"), (12, 6, 7, "partial")]  # each account on 4 of the 6: reported apart
    add_u, add_p, add_d, add_c = [], [], [], []
    table = []
    next_user = n_users
    for rep in range(repeats):
        for size in sizes:
            k, m, d = size[:3]
            partial = len(size) > 3
            if m > n_prods:
                continue  # a file with fewer products than the campaign needs
            cid = len(table)
            first = lo_day + min(365, (hi_day - lo_day) // 2)  # leave room for an earlier history
            start = int(rng.integers(first, max(first + 1, hi_day - d + 1)))
            # half the campaigns on popular products, half on any product
            if cid % 2:
                products = rng.choice(n_prods, size=m, replace=False, p=pop / pop.sum())
            else:
                products = rng.choice(n_prods, size=m, replace=False)
            n_real = min(k // 3, len(seasoned))
            accounts = list(rng.choice(seasoned, size=n_real, replace=False)) if n_real else []
            for j in range(k - n_real):
                acct = next_user; next_user += 1
                if j % 2 == 0:  # a synthetic honest-looking history before the campaign
                    for _ in range(int(rng.integers(2, 9))):
                        add_u.append(acct); add_p.append(int(rng.integers(n_prods)))
                        add_d.append(int(rng.integers(lo_day, max(lo_day + 1, start)))); add_c.append(-1)
                accounts.append(acct)
            for acct in accounts:
                for p in (rng.choice(products, size=4, replace=False) if partial else products):
                    add_u.append(int(acct)); add_p.append(int(p))
                    add_d.append(start + int(rng.integers(0, d + 1))); add_c.append(cid)
            table.append({"k": k, "m": m, "d": d, "partial": partial})
    u = np.r_[user, np.array(add_u, np.int64)]
    p = np.r_[prod, np.array(add_p, np.int64)]
    dd = np.r_[day, np.array(add_d, np.int64)]
    camp = np.r_[np.full(len(user), -1, np.int64), np.array(add_c, np.int64)]
    return u, p, dd, camp, table


def rate(mask: np.ndarray, sel: np.ndarray) -> Optional[float]:
    return round(float(mask[sel].mean()), 6) if sel.any() else None


def evaluate(path: str, seed: int = 0, repeats: int = 3, cfg: BehaviourConfig = BehaviourConfig()) -> dict:
    started = time.perf_counter()
    data = load(path)
    n = len(data["user"])
    y = data["filtered"]
    rec = ~y
    rule = withhold_rule()
    t = data["day"].astype(np.float64) * DAY
    clean = scores(data["user"], data["product"], t, cfg)
    held_clean = withheld(clean, rule)
    per_author = np.bincount(data["user"])[data["user"]]

    def auc(score):
        v = metrics.roc_auc(y.astype(int), np.asarray(score, float))
        return None if v is None else round(v, 4)

    out: dict = {"n": n, "n_filtered": int(y.sum()), "n_authors": int(data["user"].max()) + 1,
                 "n_products": int(data["product"].max()) + 1, "detector_version": cfg.version}
    out["auc_by_signal"] = {"coordinated_group": auc(clean["coordinated_group"]),
                            "author_velocity": auc(clean["author_velocity"]),
                            "author_velocity_share_of_history": auc(clean["velocity_share_of_history"]),
                            "product_burst": auc(clean["product_burst"])}
    out["auc_combined"] = auc(clean["combined"])
    out["auc_combined_without_share_of_history"] = auc(clean["combined"] - clean["velocity_share_of_history"])
    out["auc_baseline_review_count"] = auc(-per_author)
    out["combined_formula"] = ("1*group_evidence + 0.5*velocity_evidence + share_of_history "
                               "+ 0.1*ln(1 + burst_ratio)  (pipeline.behaviour.detect.combined_score)")

    # injected campaigns
    rng = np.random.default_rng(seed)
    u, p, d, camp, table = inject(data, rng, repeats)
    inj = scores(u, p, d.astype(np.float64) * DAY, cfg)
    held = withheld(inj, rule)
    by_size: Dict[str, List[float]] = {}
    target_rows, small_rows = [], []
    partial_rows = []
    for cid, c in enumerate(table):
        rows = np.flatnonzero(camp == cid)
        key = f"{c['k']}x{c['m']}x{c['d']}d" + ("-partial" if c["partial"] else "")
        by_size.setdefault(key, []).append(float(held[rows].mean()))
        in_target = c["k"] >= TARGET["min_authors"] and c["m"] >= TARGET["min_products"] and c["d"] <= TARGET["max_days"]
        if c["partial"]:
            partial_rows.append(rows)
        else:
            (target_rows if in_target else small_rows).append(rows)
    tr = np.concatenate(target_rows) if target_rows else np.empty(0, np.int64)
    out["injected_recall"] = round(float(held[tr].mean()), 4) if len(tr) else None
    out["injected_campaigns"] = {"campaigns": len(target_rows), "reviews": int(len(tr)), "repeats": repeats,
                                 "seed": seed, "group_recall": round(float(np.mean(
                                     [held[r].mean() >= 0.9 for r in target_rows])), 4) if target_rows else None}
    out["injected_recall_by_size"] = {k: round(float(np.mean(v)), 4) for k, v in by_size.items()}
    sr = np.concatenate(small_rows) if small_rows else np.empty(0, np.int64)
    out["injected_recall_small"] = round(float(held[sr].mean()), 4) if len(sr) else None
    pr = np.concatenate(partial_rows) if partial_rows else np.empty(0, np.int64)
    out["injected_recall_partial"] = round(float(held[pr].mean()), 4) if len(pr) else None

    # a batch run without received_at also orders author-set times by input line (came_no_later):
    # the same rows as an export in posting order (day, then a seeded random order within the day)
    posting = np.lexsort((np.random.default_rng(seed + 1).permutation(len(d)), d)).argsort()
    held_po = withheld(scores(u, p, d.astype(np.float64) * DAY, cfg, order=posting), rule)
    lo_po, hi_po = (rate(held_po[:n], ~y & s) for s in (data["rating"] <= 2.5, data["rating"] >= 3.5))
    out["in_posting_order"] = {
        "injected_recall": round(float(held_po[tr].mean()), 4) if len(tr) else None,
        "group_recall": round(float(np.mean([held_po[r].mean() >= 0.9 for r in target_rows])), 4) if target_rows else None,
        "flag_rate_recommended": rate(held_po[:n], rec), "withheld_1_2_star": lo_po, "withheld_4_5_star": hi_po,
        "note": "ties within a day broken by input line: as if the times were to the second"}

    held_real = held[:n]
    out["flag_rate_recommended"] = rate(held_real, rec)
    out["flag_rate_recommended_clean"] = rate(held_clean, rec)
    out["flag_rate_filtered"] = rate(held_real, y)
    out["flag_rate_by_signal"] = {"coordinated_group": rate(inj["group_evidence"][:n], rec),
                                  "author_velocity": rate(inj["velocity_evidence"][:n], rec)}
    stars = np.clip(np.rint(data["rating"]), 1, 5).astype(int)
    out["withheld_by_star_recommended"] = {str(s): rate(held_real, rec & (stars == s)) for s in range(1, 6)}
    low, high = rate(held_real, rec & (stars <= 2)), rate(held_real, rec & (stars >= 4))
    out["star_parity"] = {"withheld_1_2_star": low, "withheld_4_5_star": high,
                          "gap_points": None if low is None or high is None else round(100 * (low - high), 4),
                          "within_1_point": None if low is None or high is None else abs(low - high) <= 0.01}
    first = per_author == 1
    out["withheld_first_time_vs_others"] = {"first_time": rate(held_real, rec & first),
                                            "others": rate(held_real, rec & ~first),
                                            "share_first_time": round(float(first[rec].mean()), 4)}
    out["product_bursts"] = {"share_in_burst": rate(clean["burst"], np.ones(n, bool)),
                             "filtered_rate_in_burst": rate(y, clean["burst"]),
                             "filtered_rate_overall": round(float(y.mean()), 6),
                             "withheld": "never (alert only)"}
    out["groups_found_clean"] = int(clean["groups"])
    out["velocity_threshold_per_day"] = int(clean["velocity_threshold"])
    out["withhold_rule"] = {f"group={g},velocity={v}": dec for (g, v), dec in rule.items()}
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--metadata", required=True, help="YelpZip-format file (.gz or plain)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--campaigns", type=int, default=3, help="repeats of the campaign size grid")
    args = parser.parse_args(argv)
    print(json.dumps(evaluate(args.metadata, args.seed, args.campaigns), sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
