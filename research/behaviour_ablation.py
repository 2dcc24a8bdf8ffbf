"""Which coordinated-group rule? Measured on a YelpZip-format file (docs/behaviour.md).

    python -m research.behaviour_ablation --metadata FILE.gz

For each candidate setting of the link graph → group step, the same injected campaigns as
``models.evaluate_behaviour`` (seed 0): recall on the target campaigns (≥ 5 accounts × ≥ 3 products
within 7 days), on the smaller ones, and the share of label-1 reviews withheld by group evidence.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys

import numpy as np

from models.evaluate_behaviour import inject, load
from pipeline.behaviour.config import DAY, BehaviourConfig
from pipeline.behaviour.detect import scores

CANDIDATES = {
    "components_links1_authors3": dict(min_links=1, min_group_authors=3),
    "components_links1_authors4": dict(min_links=1, min_group_authors=4),
    "kcore2_authors3": dict(min_links=2, min_group_authors=3),
    "kcore2_authors4 (default)": dict(),
    "kcore3_authors4": dict(min_links=3, min_group_authors=4),
    "kcore2_authors4_shared2": dict(min_shared_products=2),
    "kcore2_authors4_window14": dict(window_days=14.0),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--metadata", required=True)
    args = parser.parse_args(argv)
    data = load(args.metadata)
    n = len(data["user"])
    rec = ~data["filtered"]
    u, p, d, camp, table = inject(data, np.random.default_rng(0), 3)
    target = np.isin(camp, [i for i, c in enumerate(table) if c["k"] >= 5 and c["m"] >= 3 and not c["partial"]])
    small = np.isin(camp, [i for i, c in enumerate(table) if (c["k"] < 5 or c["m"] < 3) and not c["partial"]])
    partial = np.isin(camp, [i for i, c in enumerate(table) if c["partial"]])
    for name, kw in CANDIDATES.items():
        cfg = dataclasses.replace(BehaviourConfig(), **kw)
        s = scores(u, p, d.astype(float) * DAY, cfg)
        g = s["group_evidence"]
        print(json.dumps({"rule": name, "recall_target": round(float(g[target].mean()), 4),
                          "recall_small": round(float(g[small].mean()), 4),
                          "recall_partial": round(float(g[partial].mean()), 4),
                          "group_flag_rate_recommended": round(float(g[:n][rec].mean()), 6),
                          "groups": s["groups"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
