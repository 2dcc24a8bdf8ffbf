"""The short-text rule, measured: how many honest reviews would be flagged as duplicate spam.

Every NSMC review is an ordinary user's review (none is fake), and short ones repeat word for
word ("굿", "최고의 영화"); the fake-reviews set's `OR` rows are human-written originals. For each
minimum-text setting, with and without the common-phrase rule, prints the share of these honest
reviews that near-duplicate detection would give `evidence: true` (in-memory LSH with the same
bucket, component and cluster functions the pipeline uses).

    python -m research.measure_short_rule
"""
from __future__ import annotations

import csv
import json
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from benchmarks.dedup_corpus import DATASETS, load_korean
from pipeline.dedup import clusters as cl
from pipeline.dedup.config import DedupConfig


def flag_rate(rows, cfg: DedupConfig) -> float:
    signer = cfg.signer()
    fps = []
    for i in range(0, len(rows), 2048):
        fps += cl.fingerprints(rows[i:i + 2048], cfg, signer)
    buckets = defaultdict(list)
    for fp in fps:
        if cl.eligible(fp, cfg):
            for key in signer.band_keys(fp.sig()):
                buckets[key].append(cl.band_member(fp))
    edges = [e for members in buckets.values() if len(members) > 1 for e in cl.bucket_edges(members, cfg)[0]]
    roots = cl.components(edges)
    groups = defaultdict(list)
    by_id = {fp.review_id: fp for fp in fps}
    for rid, root in roots.items():
        groups[root].append(by_id[rid])
    flagged = sum(1 for g in groups.values() for v in cl.describe_cluster(g, cfg).values() if v["evidence"])
    return flagged / len(fps)


def main():
    ko = [{"review_id": f"k{i}", "created_at": "2015-01-01T00:00:00Z", "author_id": r["author"] + str(i),
           "product_id": r["movie_id"], "text": r["review"], "language": "ko"} for i, r in enumerate(load_korean())]
    with (DATASETS / "fake-reviews-8k.csv").open(encoding="utf-8") as handle:
        en = [{"review_id": f"e{i}", "created_at": "2020-01-01T00:00:00Z", "author_id": f"a{i}",
               "product_id": f"p{i % 500}", "text": r["text_"], "language": "en"}
              for i, r in enumerate(csv.DictReader(handle)) if r["label"] == "OR"]
    base = DedupConfig()
    for min_ko, min_words in [(0, 0), (4, 3), (6, 4), (8, 5), (10, 6), (12, 8)]:
        for common in (False, True):
            cfg = replace(base, min_shingles={"words": min_words, "ko": min_ko, "ja": min_ko, "zh": min_ko},
                          common_min_authors=base.common_min_authors if common else 10**9)
            print(json.dumps({"min_shingles_ko": min_ko, "min_shingles_words": min_words, "common_phrase_rule": common,
                              "ko_docs": len(ko), "ko_honest_flag_rate": round(flag_rate(ko, cfg), 5),
                              "en_docs": len(en), "en_honest_flag_rate": round(flag_rate(en, cfg), 5)}), flush=True)


if __name__ == "__main__":
    main()
