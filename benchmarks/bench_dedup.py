"""Near-duplicate detection benchmark (`make bench-dedup`): one JSON line per configuration.

Corpora come from ../shared/datasets (read in place, never copied): English reviews from
fake-reviews-8k.csv, Korean from the NSMC reviews, each with injected near-duplicates (1–5% of
words or characters swapped, deleted, inserted, re-cased, re-punctuated; new author, same product
for half of them) so the ground truth is known.

Per configuration (each in its own process, so peak memory is its own):

* recall: injected pairs whose exact Jaccard is ≥ threshold and that end in one cluster, over all
  such pairs, plus any natural pair found whose exact Jaccard is ≥ threshold;
* precision: pairs inside detected clusters whose exact Jaccard is ≥ threshold, over all pairs in
  detected clusters (clusters of > 50 members are sampled);
* sig_docs_per_s: shingling + signatures with this project's Signer, one core;
* naive_sig_docs_per_s: the same with datasketch's per-token ``MinHash.update()``; naive LSH:
  datasketch's in-memory ``MinHashLSH`` insert + query (naive_lsh_docs_per_s);
* stage_docs_per_s: the whole detection stage (``DetectNearDuplicates``) on DirectRunner;
* peak_rss_mb: the process's peak resident memory;
* honest_flag_rate (Korean): share of original, unedited honest reviews (those without an
  injected copy) whose signal says evidence of duplicate spam.

    python -m benchmarks.bench_dedup              # en and ko at default size + the 200k scale run
    python -m benchmarks.bench_dedup --config ko-char2 --docs 20000
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from itertools import combinations
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CONFIGS = {
    "en-word1": {"lang": "en", "word_ngram": 1},
    "en-word2": {"lang": "en", "word_ngram": 2},
    "ko-char2": {"lang": "ko", "cjk": 2},
    "ko-char3": {"lang": "ko", "cjk": 3},
    "scale-200k": {"lang": "ko+en", "cjk": 2, "word_ngram": 1},
}


def build_corpus(conf: dict, docs: int, rng: random.Random):
    from benchmarks.dedup_corpus import inject, load_english, load_korean
    rows = []
    if conf["lang"] in ("en", "ko+en"):
        texts = load_english()
        rows += [{"text": t, "author_id": f"en-a{i}", "product_id": f"en-p{i % 700}", "language": "en"}
                 for i, t in enumerate(texts)]
    if conf["lang"] in ("ko", "ko+en"):
        rows += [{"text": r["review"], "author_id": f"ko-{r['author']}-{i}", "product_id": f"movie-{r['movie_id']}",
                  "language": "ko"} for i, r in enumerate(load_korean())]
    rng.shuffle(rows)
    n_copies = max(1, docs // 10) if conf["lang"] != "ko+en" else 5000
    base = rows[:docs - n_copies] if conf["lang"] != "ko+en" else rows
    if conf["lang"] == "ko+en":  # scale: more distinct texts, words drawn at random from the real ones
        vocab = {lang: [w for r in rows if r["language"] == lang for w in r["text"].split()] for lang in ("ko", "en")}
        while len(base) < docs - n_copies:
            model = rng.choice(rows)
            n_words = max(3, len(model["text"].split()))
            base.append(dict(model, text=" ".join(rng.choices(vocab[model["language"]], k=n_words)),
                             author_id=f"synth-{len(base)}", product_id=f"sp-{rng.randrange(20000)}"))
    texts = [r["text"] for r in base]
    all_pairs = []
    out = list(base)
    for lang in sorted({r["language"] for r in base}):
        idx = [i for i, r in enumerate(base) if r["language"] == lang]
        share = n_copies * len(idx) // len(base)
        copied, pairs = inject([texts[i] for i in idx], lang, share, rng, min_len=10 if lang == "en" else 20)
        for orig_local, copy_local in pairs:
            orig = idx[orig_local]
            src = base[orig]
            out.append(dict(src, text=copied[copy_local], author_id=f"copy-{len(out)}",
                            product_id=src["product_id"] if rng.random() < 0.5 else f"other-{rng.randrange(500)}"))
            all_pairs.append((orig, len(out) - 1))
    for i, row in enumerate(out):
        row["review_id"] = f"r{i:07d}"
        row["created_at"] = f"2025-01-01T00:00:{i % 60:02d}Z" if i < len(base) else "2025-06-01T00:00:00Z"
    return out, all_pairs


def run_stage(rows, cfg_args: dict, workdir: Path):
    """DetectNearDuplicates on DirectRunner, in its own process so its peak memory is measured alone.

    Returns ({review_id: signal}, seconds, peak RSS in MB of that process)."""
    src = workdir / "rows.jsonl"
    src.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_dedup", "--stage", str(src),
                           str(workdir / "signals"), json.dumps(cfg_args)],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"detection stage failed ({proc.returncode}): {proc.stderr[-2000:]}")
    stats = json.loads(proc.stdout.strip().splitlines()[-1])
    signals = {}
    with open(workdir / "signals", encoding="utf-8") as handle:
        for line in handle:
            rec = json.loads(line)
            signals[rec["id"]] = rec
    return signals, stats["seconds"], stats["peak_rss_mb"]


def stage_main(src: str, dst: str, cfg_args: str) -> None:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from pipeline.dedup.config import DedupConfig
    from pipeline.transforms.dedup import DetectNearDuplicates
    from schemas.records import InputRef, Item, Review

    args = json.loads(cfg_args)
    cfg = DedupConfig(word_ngram=args["word_ngram"], cjk_ngram=args["cjk_ngram"])

    def to_item(line):
        r = json.loads(line)
        return Item(review=Review(review_id=r["review_id"], product_id=r["product_id"], author_id=r["author_id"],
                                  rating=5, body=r["text"], created_at=r["created_at"]),
                    ref=InputRef("bench", 1), ingested_at="", clean_body=r["text"], language=r["language"])

    def signal(item):
        s = item.signals["near_duplicate"]
        return json.dumps({"id": item.review.review_id, "status": s.status, "values": dict(s.values)},
                          ensure_ascii=False)

    started = time.perf_counter()
    with beam.Pipeline(options=PipelineOptions(["--direct_num_workers=1"])) as p:
        items, _ = (p | beam.io.ReadFromText(src) | beam.Map(to_item) | DetectNearDuplicates(cfg))
        items | beam.Map(signal) | beam.io.WriteToText(dst, shard_name_template="")
    print(json.dumps({"seconds": time.perf_counter() - started,
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))


def one(name: str, docs: int, seed: int) -> dict:
    from datasketch import MinHash, MinHashLSH
    from pipeline.dedup import shingles as sh
    from pipeline.dedup.config import DedupConfig
    from benchmarks.dedup_corpus import jaccard

    conf = CONFIGS[name]
    rng = random.Random(seed)
    rows, injected = build_corpus(conf, docs, rng)
    cjk = {k: conf.get("cjk", v) for k, v in sh.CJK_NGRAM.items()}
    cfg = DedupConfig(word_ngram=conf.get("word_ngram", 1), cjk_ngram=cjk)
    sets = [sh.shingles(r["text"], r["language"], word_n=cfg.word_ngram, cjk_n=cfg.cjk_ngram) for r in rows]

    # Signatures: this project's path vs datasketch per-token update(), same documents, same process,
    # interleaved in rounds so that load from other processes hits both alike (the ratio is the result).
    signer = cfg.signer()

    def ours(chunk):
        signer.sign([sh.shingles(r["text"], r["language"], word_n=cfg.word_ngram, cjk_n=cfg.cjk_ngram) for r in chunk])

    def naive_sig(chunk):
        out = []
        for r in chunk:
            m = MinHash(num_perm=cfg.num_perm, seed=cfg.seed)
            for s in sh.shingles(r["text"], r["language"], word_n=cfg.word_ngram, cjk_n=cfg.cjk_ngram):
                m.update(s.encode("utf-8"))
            out.append(m)
        return out

    ours_s = naive_s = 0.0
    ours_n = naive_n = 0
    naive = []
    for start in range(0, min(len(rows), 6000), 300):
        chunk = rows[start:start + 300]
        t = time.perf_counter()
        naive.extend(naive_sig(chunk))
        naive_s += time.perf_counter() - t
        naive_n += len(chunk)
        t = time.perf_counter()
        ours(chunk)
        ours_s += time.perf_counter() - t
        ours_n += len(chunk)
    t = time.perf_counter()
    for i in range(0, len(rows), 1024):  # and over the whole corpus, in the pipeline's batch size
        ours(rows[i:i + 1024])
    sig_rate = len(rows) / (time.perf_counter() - t)
    paired_ratio = (ours_n / ours_s) / (naive_n / naive_s)
    naive_rate = naive_n / naive_s
    t = time.perf_counter()
    lsh = MinHashLSH(threshold=cfg.threshold, num_perm=cfg.num_perm)
    for i, m in enumerate(naive):
        lsh.query(m)
        lsh.insert(str(i), m)
    naive_lsh_rate = naive_n / (time.perf_counter() - t)

    with tempfile.TemporaryDirectory() as tmp:
        signals, stage_s, stage_rss = run_stage(rows, {"word_ngram": cfg.word_ngram, "cjk_ngram": cfg.cjk_ngram},
                                                Path(tmp))

    ids = [r["review_id"] for r in rows]
    cluster = {rid: (signals[rid]["values"].get("cluster_id") if signals[rid]["status"] == "scored" else None)
               for rid in ids}
    members = defaultdict(list)
    for i, rid in enumerate(ids):
        if cluster[rid]:
            members[cluster[rid]].append(i)
    detected_true = detected_total = 0
    found_pairs = set()
    for group in members.values():
        group_pairs = list(combinations(group, 2))
        if len(group_pairs) > 1225:
            group_pairs = random.Random(0).sample(group_pairs, 1225)
        for a, b in group_pairs:
            detected_total += 1
            if jaccard(sets[a], sets[b]) >= cfg.threshold:
                detected_true += 1
                found_pairs.add((min(a, b), max(a, b)))
    truth = {(min(a, b), max(a, b)) for a, b in injected if jaccard(sets[a], sets[b]) >= cfg.threshold}
    truth |= found_pairs
    recall_hits = sum(1 for a, b in truth if cluster[ids[a]] and cluster[ids[a]] == cluster[ids[b]])
    injected_ge = sum(1 for a, b in injected if jaccard(sets[a], sets[b]) >= cfg.threshold)
    n_base = len(rows) - len(injected)
    rand = [(rng.randrange(n_base), rng.randrange(n_base)) for _ in range(20000)]
    rand_j = [jaccard(sets[a], sets[b]) for a, b in rand if a != b]
    out = {
        "config": name, "lang": conf["lang"], "docs": len(rows), "injected_pairs": len(injected),
        "injected_pairs_ge_threshold": injected_ge, "threshold": cfg.threshold,
        "bands_rows": list(cfg.bands_rows),
        "recall": round(recall_hits / len(truth), 4) if truth else None,
        "precision": round(detected_true / detected_total, 4) if detected_total else None,
        "random_pairs_ge_threshold": sum(j >= cfg.threshold for j in rand_j),
        "sig_docs_per_s": round(sig_rate), "naive_sig_docs_per_s": round(naive_rate),
        "speedup_vs_naive": round(paired_ratio, 1), "naive_lsh_docs_per_s": round(naive_lsh_rate),
        "stage_docs_per_s": round(len(rows) / stage_s), "stage_seconds": round(stage_s, 1),
        "peak_rss_mb": stage_rss,
        "bench_process_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    originals_with_copy = {a for a, _ in injected}
    for lang in ("ko", "en"):
        honest = [i for i in range(n_base) if rows[i]["language"] == lang and i not in originals_with_copy]
        if honest:
            flagged = sum(1 for i in honest if signals[ids[i]]["values"].get("evidence"))
            out[f"{lang}_honest_flag_rate" if conf["lang"] == "ko+en" or lang != "ko" else "honest_flag_rate"] = \
                round(flagged / len(honest), 5)
    not_applicable = sum(1 for s in signals.values() if s["status"] == "not_applicable")
    out["not_applicable_short"] = not_applicable
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="Near-duplicate detection benchmark")
    parser.add_argument("--config", choices=sorted(CONFIGS), action="append")
    parser.add_argument("--docs", type=int, default=None, help="documents per configuration")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--stage", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        stage_main(*args.stage)
        return
    if args.one:
        print(json.dumps(one(args.config[0], args.docs, args.seed), ensure_ascii=False), flush=True)
        return
    sizes = {"en-word1": 9000, "en-word2": 9000, "ko-char2": 40000, "ko-char3": 40000, "scale-200k": 200000}
    for name in args.config or list(CONFIGS):
        docs = args.docs or sizes[name]
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
        proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_dedup", "--one", "--config", name,
                               "--docs", str(docs), "--seed", str(args.seed)],
                              cwd=ROOT, env=env, capture_output=True, text=True)
        lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
        if proc.returncode != 0 or not lines:
            print(json.dumps({"config": name, "error": proc.stderr[-1500:]}), flush=True)
        else:
            print(lines[-1], flush=True)


if __name__ == "__main__":
    main()
