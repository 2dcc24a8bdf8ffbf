"""Which n-grams to shingle with: measured on real reviews with injected near-duplicates.

For each candidate shingling, prints the share of injected copies (1–5% edits) whose exact
Jaccard with their original stays ≥ 0.8 (what LSH can find at the 0.8 threshold), and the
share of random unrelated pairs at ≥ 0.5 and ≥ 0.8 (what would be false matches).

    python -m research.measure_shingles [--docs 3000]
"""
from __future__ import annotations

import argparse
import json
import random

from benchmarks.dedup_corpus import inject, jaccard, load_english, load_korean
from pipeline.dedup.shingles import shingles


def measure(texts, lang, pairs, shingle_fn, rng):
    sets = [shingle_fn(t) for t in texts]
    copies = [jaccard(sets[a], sets[b]) for a, b in pairs]
    n = len(texts) - len(pairs)
    randoms = [jaccard(sets[i], sets[j]) for i, j in ((rng.randrange(n), rng.randrange(n)) for _ in range(20000)) if i != j]
    return {"copies_ge_0.8": round(sum(j >= 0.8 for j in copies) / len(copies), 4),
            "copies_median_j": round(sorted(copies)[len(copies) // 2], 3),
            "random_ge_0.5": round(sum(j >= 0.5 for j in randoms) / len(randoms), 5),
            "random_ge_0.8": round(sum(j >= 0.8 for j in randoms) / len(randoms), 5),
            "mean_shingles": round(sum(map(len, sets)) / len(sets), 1)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=3000)
    args = parser.parse_args()
    rng = random.Random(1)
    en, en_pairs = inject(load_english(args.docs), "en", 1000, rng, min_len=10)
    ko_rows = load_korean(args.docs)
    ko, ko_pairs = inject([r["review"] for r in ko_rows], "ko", 1000, rng, min_len=20)
    for n in (1, 2, 3, 5):
        print(json.dumps({"lang": "en", "shingle": f"word {n}-gram",
                          **measure(en, "en", en_pairs, lambda t: shingles(t, "en", word_n=n), random.Random(2))}))
    for n in (2, 3, 4, 5):
        print(json.dumps({"lang": "ko", "shingle": f"char {n}-gram",
                          **measure(ko, "ko", ko_pairs, lambda t: shingles(t, "ko", cjk_n={"ko": n}), random.Random(2))}))


if __name__ == "__main__":
    main()
