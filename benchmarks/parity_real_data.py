"""Parity on real data: withheld rate by star rating through the whole batch pipeline.

Two sets of honest reviews from ../shared/datasets (read in place; the JSON Lines made from them
go to a temporary directory, never into the repo):

* NSMC: 69,676 real Korean movie reviews, every one an ordinary user's; ratings 1–10 become
  1–5 stars as ceil(r/2); movie = product, masked author = author.
* Ott: the 800 truthful hotel reviews (400 positive, 400 negative; TripAdvisor and other sites),
  negative → 1–2 stars, positive → 4–5 stars (the corpus has polarity, not stars).

Prints one JSON line per set with the run summary's parity audit (withheld rate per star with 95%
intervals), the decisions and the reasons, and where the run's outputs are.

    python -m benchmarks.parity_real_data [--limit N] [--keep DIR] [--classifier_model DIR]
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import random
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
EXTRA: list = []   # pipeline options from the command line (--classifier_model)


def nsmc_lines(limit=None):
    with (DATASETS / "nsmc-ko-reviews-bucket0.tsv").open(encoding="utf-8") as handle:
        for i, row in enumerate(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)):
            if limit and i >= limit:
                break
            yy, mm, dd = (int(x) for x in row["date"].split("."))
            yield json.dumps({"review_id": f"nsmc-{row['review_id']}", "product_id": f"movie-{row['movie_id']}",
                              "author_id": f"nsmc-{row['author']}", "rating": math.ceil(int(row["rating"]) / 2),
                              "body": row["review"] or " ", "created_at": f"20{yy:02d}-{mm:02d}-{dd:02d}T12:00:00+09:00",
                              "language": "ko", "source": {"channel": "import", "partner": "nsmc"}}, ensure_ascii=False)


def ott_lines():
    rng = random.Random(5)
    with (DATASETS / "ott-deceptive-opinion-16hotels.csv").open(encoding="utf-8") as handle:
        for i, row in enumerate(csv.DictReader(handle)):
            if row["deceptive"] != "truthful":
                continue
            stars = rng.choice([1, 2]) if row["polarity"] == "negative" else rng.choice([4, 5])
            yield json.dumps({"review_id": f"ott-{i}", "product_id": f"hotel-{row['hotel']}", "author_id": f"ott-a{i}",
                              "rating": stars, "body": row["text"], "created_at": "2011-06-01T00:00:00Z",
                              "language": "en"}, ensure_ascii=False)


def run(name, lines, workdir: Path) -> dict:
    from pipeline.run import run as run_job
    src = workdir / f"{name}.jsonl"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = workdir / f"{name}-out"
    summary = run_job(["--input", str(src), "--output", str(out), "--run_id", f"parity-{name}", *EXTRA])
    return {"set": name, "input_lines": summary["input_lines"], "decisions": summary["decisions_by_type"],
            "reasons": summary["reasons"], "duplicate_patterns": summary.get("duplicate_patterns"),
            "parity": {s: {k: b[k] for k in ("n", "withheld", "rate", "ci95")}
                       for s, b in summary["parity"]["by_rating"].items()},
            "high_rating_rate": summary["parity"]["high_rating_rate"], "parity_ok": summary["parity"]["ok"],
            "warnings": summary["parity"]["warnings"], "output": str(out)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=None, help="NSMC rows (default all)")
    parser.add_argument("--keep", type=Path, default=None, help="keep inputs and outputs here")
    parser.add_argument("--classifier_model", default=None, help="another artifact (default: the pipeline's)")
    args = parser.parse_args()
    if args.classifier_model:
        EXTRA.extend(["--classifier_model", args.classifier_model])
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="parity-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(json.dumps(run("ott-truthful", ott_lines(), workdir), ensure_ascii=False), flush=True)
    print(json.dumps(run("nsmc", nsmc_lines(args.limit), workdir), ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
