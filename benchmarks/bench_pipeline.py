"""make bench-pipeline: the whole batch pipeline on N reviews built from real text, and the floor.

    python -m benchmarks.bench_pipeline [--sizes 10000,100000] [--job-args '--classifier=false'] [--floor-sample 1000]
    python -m benchmarks.bench_pipeline --code ../old-checkout --no-floor   # the same corpus through other code

Corpus (deterministic, seed fixed): 70% Korean reviews from NSMC and 30% English reviews from
fake-reviews-8k's human-written rows (``../shared/datasets``, read in place), their products and authors; about
2% are injected near-copies of an earlier review by another author on the same product (what the
near-duplicate detector must find); NSMC's own word-for-word repeats stay as they are.

Beyond one pass over a source (NSMC bucket 0 has 69,676 usable reviews, fake-reviews-8k 3,976 human-written
ones: from ~13k reviews on for English), a review is made by ``--repeats``:

- ``spliced`` (default): the first half of the source review's words followed by the second half
  of another review of the same language and a similar length (the lap-th nearest). Lengths, scripts and vocabulary stay
  real, and it is a new text: its shingle Jaccard with either source is about 0.3–0.5, under the
  0.8 near-duplicate threshold, so the share of near-duplicates stays what the injected copies make.
- ``clause``: the source review with a short clause and the pass number appended (sessions 13–14).
  Every pass is a near-copy of the source, so at 1M reviews 97% of the eligible reviews share an
  LSH bucket and the English texts form clusters of ~75 copies: a near-copy flood (an attack), not
  a store's ordinary traffic. Kept to measure that case.

For each size, one ``python -m pipeline.run`` job in a fresh process (DirectRunner, this
machine, the job's default runner settings unless ``--job-args`` says otherwise): wall time,
reviews/s, peak RSS summed over the job's process tree (sampled from /proc every 0.5 s; GNU
time's largest single process beside it) and conservation; the summary gives the RSS growth per
review between the smallest and largest size (``rss_kb_per_review_slope``, target ≤ 4 KB). Beside it, the
**plain-loop floor**: the same per-review work as plain Python on one core over a sample (parse
with validation, normalise with language id and redaction, MinHash fingerprint, classifier where it
applies, policy, provenance and signing, JSON of the decision and published record), µs per review
per stage, and the pipeline's time per review over the floor's (``pipeline_over_floor``).

Prints one JSON object per size, then a summary object. The box is shared and noisy: compare
figures from one run, side by side.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
NSMC = DATASETS / "nsmc-ko-reviews-bucket0.tsv"
FAKE_REVIEWS = DATASETS / "fake-reviews-8k.csv"
SEED = 20261206
CLAUSES_KO = ["그리고 또 봤어요", "다시 생각해도", "친구랑 같이 봄", "주말에 봤는데", "두 번째 관람"]
CLAUSES_EN = ["Bought a second one.", "Still the same opinion.", "Update after a month.", "My partner agrees.",
              "Second order, same result."]


def _nsmc() -> List[dict]:
    with open(NSMC, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return [r for r in rows if (r.get("review") or "").strip()]


def _english() -> List[dict]:
    """fake-reviews-8k's human-written rows (label OR): a store's ordinary traffic, not a fake campaign."""
    with open(FAKE_REVIEWS, encoding="utf-8") as fh:
        return [r for r in csv.DictReader(fh) if (r.get("text_") or "").strip() and r.get("label") == "OR"]


REPEATS = ("spliced", "clause")


def splice(first: str, second: str) -> str:
    """The first half of ``first``'s words, then the second half of ``second``'s (characters when
    either has fewer than two words)."""
    a, b = first.split(), second.split()
    if len(a) < 2 or len(b) < 2:
        return first[:(len(first) + 1) // 2] + second[len(second) // 2:]
    return " ".join(a[:(len(a) + 1) // 2] + b[len(b) // 2:])


def build_corpus(n: int, path: Path, seed: int = SEED, repeats: str = "spliced") -> Dict[str, int]:
    """Writes ``n`` review lines to ``path``; returns counts of what was made (``repeats``: how a
    review beyond one pass over its source is made, see the module docstring)."""
    if repeats not in REPEATS:
        raise ValueError(f"repeats must be one of {REPEATS}, not {repeats!r}")
    rng = random.Random(seed)
    ko, en = _nsmc(), _english()
    counts = {"ko": 0, "en": 0, "injected_copies": 0, repeats: 0}

    # each pool's texts by length: a spliced review's second source is one of similar length (a
    # long first half with a short second would be a near-copy of every other splice of that half)
    by_length = {id(pool): sorted(range(len(pool)), key=lambda i, p=pool, f=field: (len(p[i][f].split()), i))
                 for pool, field in ((ko, "review"), (en, "text_"))}
    rank = {key: {i: r for r, i in enumerate(order)} for key, order in by_length.items()}

    def again(index: int, lap: int, pool: List[dict], field: str, clause: str) -> str:
        """Pass ``lap`` ≥ 1 over ``pool[index]``: its partner is the lap-th nearest in length, so the
        passes over one review have different partners (no accidental exact repeats)."""
        if repeats == "clause":
            return clause
        order, here = by_length[id(pool)], rank[id(pool)][index]
        step = (lap + 1) // 2 * (1 if lap % 2 else -1)  # +1, -1, +2, -2, ...
        r = here + step if 0 <= here + step < len(order) else here - step
        return splice(pool[index][field], pool[order[r]][field])
    made: List[str] = []  # earlier reviews as JSON lines (a copy is made of one): compact enough for 1M
    with open(path, "w", encoding="utf-8") as out:
        for i in range(n):
            if made and rng.random() < 0.02:   # a near-copy of an earlier review, another author
                src = json.loads(made[rng.randrange(len(made))])
                words = src["body"].split()
                if len(words) > 3:
                    words[rng.randrange(len(words))] = rng.choice(["정말", "really", "so", "진짜"])
                review = {**src, "review_id": f"copy-{i}", "author_id": f"copier-{rng.randrange(n // 50 + 1)}",
                          "body": " ".join(words)}
                counts["injected_copies"] += 1
            elif rng.random() < 0.7:
                k = counts["ko"]
                row, lap = ko[k % len(ko)], k // len(ko)
                body = row["review"] if not lap else again(
                    k % len(ko), lap, ko, "review", f"{row['review']} {CLAUSES_KO[(k + lap) % len(CLAUSES_KO)]} {lap}")
                yy, mm, dd = row["date"].split(".")
                review = {"review_id": f"ko-{i}", "product_id": f"movie-{row['movie_id']}",
                          "author_id": f"{row['author']}-{lap}", "rating": max(1, min(5, -(-int(row["rating"]) // 2))),
                          "body": body, "created_at": f"20{yy}-{mm}-{dd}T12:00:00+09:00"}
                counts["ko"] += 1
                counts[repeats] += bool(lap)
            else:
                k = counts["en"]
                row, lap = en[k % len(en)], k // len(en)
                body = row["text_"] if not lap else again(
                    k % len(en), lap, en, "text_", f"{row['text_']} {CLAUSES_EN[(k + lap) % len(CLAUSES_EN)]} ({lap})")
                review = {"review_id": f"en-{i}", "product_id": f"sku-{(k * 7919) % max(1, n // 40)}",
                          "author_id": f"en-author-{k}", "rating": 1 + (k * 31) % 5, "body": body,
                          "created_at": f"2026-{1 + k % 11:02d}-{1 + k % 28:02d}T08:00:00Z", "language": "en"}
                counts["en"] += 1
                counts[repeats] += bool(lap)
            line = json.dumps(review, ensure_ascii=False)
            made.append(line)
            out.write(line + "\n")
    return counts


def _tree_rss_kb(root_pid: int) -> int:
    """Resident set (kB) of a process and all its descendants, summed, from /proc (Linux).

    GNU time's %M is the largest single process's peak; with ``--direct_running_mode=multi_processing``
    the job is several processes, so the bench samples the whole tree instead."""
    children: Dict[int, List[int]] = {}
    rss: Dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/statm") as fh:
                rss[int(entry)] = int(fh.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, ()))
    return total


def run_job(path: Path, out: Path, threads: Optional[int], extra: List[str], code: Path = ROOT) -> dict:
    """One batch job in a fresh process (run from the checkout ``code``): wall time, and peak RSS both
    as GNU time's largest single process and as the sum over the job's process tree (sampled)."""
    cmd = ["/usr/bin/time", "-f", "MAXRSS_KB %M", sys.executable, "-m", "pipeline.run", "--input", str(path),
           "--output", str(out), "--run_id", "bench",
           *(["--classifier_threads", str(threads)] if threads else []), *extra]
    env = dict(os.environ, PYTHONPATH=str(code))
    started = time.monotonic()
    peak_tree = 0
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, cwd=code, stdout=subprocess.DEVNULL, stderr=err, env=env, text=True)
        while proc.poll() is None:
            peak_tree = max(peak_tree, _tree_rss_kb(proc.pid))
            time.sleep(0.5)
        wall = time.monotonic() - started
        err.seek(0)
        stderr = err.read()
    rss = [line for line in stderr.splitlines() if line.startswith("MAXRSS_KB")]
    summary = {}
    if (out / "run_summary.json").exists():
        summary = json.loads((out / "run_summary.json").read_text())
    return {"exit": proc.returncode, "wall_s": round(wall, 1),
            "peak_rss_mb": round(max(peak_tree, int(rss[-1].split()[1]) if rss else 0) / 1024),
            "largest_process_rss_mb": round(int(rss[-1].split()[1]) / 1024) if rss else None,
            "conservation_ok": (summary.get("conservation") or {}).get("ok"),
            "decisions_by_type": summary.get("decisions_by_type"), "products": summary.get("products"),
            **({"stderr_tail": stderr[-1500:]} if proc.returncode else {})}


def floor(path: Path, sample: int) -> dict:
    """µs per review of each stage's own function in a plain loop on one core (no Beam)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from pipeline import signing
    from pipeline.classifier import runtime
    from pipeline.context import RunContext
    from pipeline.dedup import clusters as cl
    from pipeline.dedup.config import DedupConfig
    from pipeline.files import to_json_line
    from pipeline.policy import DEFAULT_POLICY
    from pipeline.transforms.decide import Decided
    from pipeline.transforms.dedup import dedup_row
    from pipeline.transforms.detect import mark_not_run
    from pipeline.transforms.normalize import normalize_item
    from pipeline.transforms.parse import parse_line
    from pipeline.transforms.provenance import to_records
    from schemas.records import InputRef, Item, RawLine, Signal

    lines = path.read_bytes().splitlines()[:sample]
    clf = runtime.load(threads=1)
    key, ctx, cfg = signing.SigningKey("bench", b"b" * 32), RunContext(run_id="bench"), DedupConfig()
    signer = cfg.signer()
    t: Dict[str, float] = {k: 0.0 for k in ("parse", "normalize", "fingerprint", "classifier", "decide",
                                            "provenance_and_json")}
    scored = 0
    for i, line in enumerate(lines):   # a warm-up pass, untimed: Lingua's models load lazily (seconds, once per process)
        item = parse_line(RawLine(ref=InputRef("w.jsonl", i + 1), data=line), run_id="w", ingested_at="2026-12-06T00:00:00Z")
        if isinstance(item, Item):
            normalize_item(item)
    clf.predict_proba(["a warm-up text for the classifier, long enough to count as a review of some length"])
    for i, line in enumerate(lines):
        t0 = time.perf_counter()
        item = parse_line(RawLine(ref=InputRef("bench.jsonl", i + 1), data=line), run_id="bench",
                          ingested_at="2026-12-06T00:00:00Z")
        t1 = time.perf_counter()
        if not isinstance(item, Item):
            t["parse"] += t1 - t0
            continue
        item = normalize_item(item)
        t2 = time.perf_counter()
        cl.fingerprints([dedup_row(item)], cfg, signer)
        t3 = time.perf_counter()
        text = item.clean_body or ""
        if clf.applies_to(item.language, text):
            probability = float(clf.predict_proba([text])[0])
            scored += 1
            item = item.replace(signals={**item.signals, "fake_classifier": Signal(
                "scored", clf.version, {"probability": probability, "band": clf.band(probability)})})
        t4 = time.perf_counter()
        item = mark_not_run(item)
        outcome = DEFAULT_POLICY.decide(item)
        t5 = time.perf_counter()
        decision, published = to_records(Decided(item, outcome, "2026-12-06T00:00:01Z"), ctx, key)
        to_json_line(decision)
        if published is not None:
            to_json_line(published)
        t6 = time.perf_counter()
        for k, a, b in (("parse", t0, t1), ("normalize", t1, t2), ("fingerprint", t2, t3), ("classifier", t3, t4),
                        ("decide", t4, t5), ("provenance_and_json", t5, t6)):
            t[k] += b - a
    n = len(lines)
    per_stage = {k: round(v / n * 1e6, 1) for k, v in t.items()}
    total = sum(t.values()) / n
    return {"sample": n, "classifier_scored": scored, "us_per_review": per_stage,
            "floor_us_per_review": round(total * 1e6, 1), "floor_reviews_per_s_one_core": round(1 / total, 1)}


def rss_slope(results: List[dict]) -> Optional[float]:
    """Peak RSS growth per review (KB) between the smallest and the largest size that finished:
    what memory costs per additional review beyond the fixed base (target ≤ 4 KB)."""
    done = sorted((r for r in results if r.get("peak_rss_mb") and r["exit"] == 0), key=lambda r: r["reviews"])
    if len(done) < 2:
        return None
    a, b = done[0], done[-1]
    return round((b["peak_rss_mb"] - a["peak_rss_mb"]) * 1024 / (b["reviews"] - a["reviews"]), 2)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000", help="comma-separated review counts (e.g. 10000,100000,1000000)")
    ap.add_argument("--threads", type=int, default=None,
                    help="--classifier_threads of the job (default: the job's own default)")
    ap.add_argument("--floor-sample", type=int, default=1000)
    ap.add_argument("--keep", type=Path, default=None, help="keep corpora and outputs here")
    ap.add_argument("--job-args", default="", help="extra flags for pipeline.run (e.g. '--classifier=false')")
    ap.add_argument("--code", type=Path, default=ROOT,
                    help="run the job from this checkout (e.g. a worktree of the previous commit), same corpus")
    ap.add_argument("--no-floor", action="store_true", help="skip the plain-loop floor")
    ap.add_argument("--repeats", choices=REPEATS, default="spliced",
                    help="how reviews beyond one pass over a source are made (clause: a near-copy flood)")
    args = ap.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    work.mkdir(parents=True, exist_ok=True)
    job_args = args.job_args.split()
    with_classifier = not any(a.replace(" ", "") in ("--classifier=false", "--classifier=0", "--classifier=off")
                              for a in job_args)
    results = []
    for n in [int(x) for x in args.sizes.split(",")]:
        path, counts = work / f"reviews-{args.repeats}-{n}.jsonl", work / f"reviews-{args.repeats}-{n}.counts.json"
        made = json.loads(counts.read_text()) if path.exists() and counts.exists() else None
        if made is None:
            made = build_corpus(n, path, repeats=args.repeats)
            counts.write_text(json.dumps(made))
        out = work / f"out-{n}-{os.getpid()}"
        job = run_job(path, out, args.threads, job_args, args.code)
        row = {"reviews": n, "code": str(args.code), "job_args": args.job_args, "corpus": made, **job,
               "reviews_per_s": round(n / job["wall_s"], 1) if job["exit"] == 0 else None,
               "load_average": [round(x, 2) for x in os.getloadavg()]}
        if row["peak_rss_mb"] is not None:
            row["rss_kb_per_review"] = round(row["peak_rss_mb"] * 1024 / n, 2)
        print(json.dumps(row), flush=True)
        results.append(row)
    summary = {"threads": args.threads, "cpu_count": os.cpu_count(), "code": str(args.code),
               "load_average": [round(x, 2) for x in os.getloadavg()],
               "rss_kb_per_review_slope": rss_slope(results)}
    best = max((r for r in results if r["reviews_per_s"]), key=lambda r: r["reviews"], default=None)
    if best:
        summary["projected_1m_minutes"] = round(1_000_000 / best["reviews_per_s"] / 60, 1)
    if not args.no_floor:
        fl = floor(work / f"reviews-{args.repeats}-{int(args.sizes.split(',')[0])}.jsonl", args.floor_sample)
        summary["floor"] = fl
        floor_us = fl["floor_us_per_review"] - (0 if with_classifier else fl["us_per_review"]["classifier"])
        summary["floor_us_per_review_this_config"] = round(floor_us, 1)
        if best:
            # the pipeline's wall time per review against one core's plain loop of the same work
            summary["pipeline_over_floor"] = round(best["wall_s"] / best["reviews"] * 1e6 / floor_us, 2)
    print(json.dumps(summary), flush=True)
    return 0 if all(r["exit"] == 0 and r["conservation_ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
