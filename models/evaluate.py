"""Evaluates a classifier artifact on any labelled CSV and prints one JSON object.

    python -m models.evaluate --data CSV --text-col COL --label-col COL --positive VALUE \
        [--group-col COL] [--model DIR] [--where COL=VALUE ...] [--threads N]

Keys: ``n``, ``accuracy`` and ``macro_f1`` (calibrated probability ≥ 0.5 means positive),
``roc_auc``, ``fpr`` (false-positive rate at each operating threshold, by name: ``lower``,
``upper``), ``fpr_by_group`` (the same per value of ``--group-col``, with ``n`` and ``n_negative``),
plus ``model`` (the artifact version) and ``thresholds``. A row is positive when its label equals
``--positive`` (string comparison). ``--where`` keeps only rows whose column equals the value
(e.g. ``--where orig_split=test``).
"""
from __future__ import annotations

import argparse
import csv
import json
import sys

from models import metrics, runtime


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--text-col", required=True)
    ap.add_argument("--label-col", required=True)
    ap.add_argument("--positive", required=True)
    ap.add_argument("--group-col")
    ap.add_argument("--model", help="artifact directory or gs:// prefix (default: the committed one)")
    ap.add_argument("--where", action="append", default=[], metavar="COL=VALUE")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    csv.field_size_limit(sys.maxsize)
    with open(args.data, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for cond in args.where:
        col, _, val = cond.partition("=")
        rows = [r for r in rows if r.get(col) == val]
    missing = [c for c in (args.text_col, args.label_col, args.group_col) if c and rows and c not in rows[0]]
    if missing:
        ap.error(f"column(s) not in {args.data}: {', '.join(missing)}")
    clf = runtime.load(args.model, threads=args.threads)
    texts = [r[args.text_col] or "" for r in rows]
    y = [int(r[args.label_col] == args.positive) for r in rows]
    p = clf.predict_proba(texts)
    groups = [r[args.group_col] for r in rows] if args.group_col else None
    out = metrics.summary(y, p, clf.thresholds, groups)
    out["model"] = clf.version
    out["thresholds"] = clf.thresholds
    print(json.dumps(out, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
