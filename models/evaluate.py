"""Evaluates a classifier artifact on any labelled CSV and prints one JSON object.

    python -m models.evaluate --data CSV --text-col COL --label-col COL --positive VALUE \
        [--group-col COL] [--model DIR] [--where COL=VALUE ...] [--threads N] [--baseline-train COL=VALUE ...]

Keys: ``n``, ``accuracy`` and ``macro_f1`` (calibrated probability ≥ 0.5 means positive),
``roc_auc``, ``fpr`` (false-positive rate at each operating threshold, by name: ``lower``,
``upper``), ``fpr_by_group`` (the same per value of ``--group-col``, with ``n`` and ``n_negative``),
plus ``model`` (the artifact version) and ``thresholds``. A row is positive when its label equals
``--positive`` (string comparison). ``--where`` keeps only rows whose column equals the value
(e.g. ``--where orig_split=test``, ``--where language=ko``). Texts in any script are scored (2.0.0:
Latin-script texts by both detectors, others by the generated-review detector); the pipeline's
language and length rule is not applied here.

``--baseline-train COL=VALUE`` also fits the TF-IDF + logistic regression baseline (word 1–2-grams,
``models.heads.tfidf_baseline``, as in the model card) on the file's rows matching every condition
(before ``--where``) and scores the same evaluated rows with it, side by side: key ``baseline``
(``n_train``, ``accuracy``, ``macro_f1``, ``roc_auc`` at probability ≥ 0.5). Needs scikit-learn
(the ``train``/``test`` extras). E.g. ``--where orig_split=test --baseline-train orig_split=dev``.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys

from models import common, metrics
from pipeline.classifier import runtime


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--text-col", required=True, action="append",
                    help="the text column; given more than once, the columns are joined by a newline with missing "
                         "parts (empty, or pandas' literal \"nan\") left out (MAiDE-up: --text-col positive_text --text-col negative_text)")
    ap.add_argument("--label-col", required=True)
    ap.add_argument("--positive", required=True)
    ap.add_argument("--group-col")
    ap.add_argument("--model", help="artifact directory or gs:// prefix (default: the committed one)")
    ap.add_argument("--where", action="append", default=[], metavar="COL=VALUE")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--baseline-train", action="append", default=[], metavar="COL=VALUE",
                    help="fit a TF-IDF + LR baseline on the rows matching this and score the evaluated rows with it")
    args = ap.parse_args(argv)

    csv.field_size_limit(sys.maxsize)
    with open(args.data, newline="", encoding="utf-8") as f:
        all_rows = list(csv.DictReader(f))
    rows = _matching(all_rows, args.where)
    columns = [*args.text_col, args.label_col, args.group_col,
               *(cond.partition("=")[0] for cond in args.where + args.baseline_train)]
    missing = [c for c in columns if c and all_rows and c not in all_rows[0]]
    if missing:
        ap.error(f"column(s) not in {args.data}: {', '.join(missing)}")
    train_rows = _matching(all_rows, args.baseline_train) if args.baseline_train else None
    if train_rows is not None and len({r[args.label_col] == args.positive for r in train_rows}) < 2:
        ap.error(f"--baseline-train {' '.join(args.baseline_train)} must select rows of both classes "
                 f"({len(train_rows)} selected)")
    clf = runtime.load(args.model, threads=args.threads)
    texts = [_text(r, args.text_col) for r in rows]
    y = [int(r[args.label_col] == args.positive) for r in rows]
    p = clf.predict_proba(texts)
    groups = [r[args.group_col] for r in rows] if args.group_col else None
    out = metrics.summary(y, p, clf.thresholds, groups)
    out["model"] = clf.version
    out["thresholds"] = clf.thresholds
    if train_rows is not None:
        from models.heads import tfidf_baseline
        p_base = tfidf_baseline([_text(r, args.text_col) for r in train_rows],
                                [int(r[args.label_col] == args.positive) for r in train_rows], texts)
        base = metrics.summary(y, p_base, {})
        out["baseline"] = {"model": "tfidf_lr (word 1-2-grams)", "train_where": args.baseline_train,
                           "n_train": len(train_rows),
                           **{k: base[k] for k in ("accuracy", "macro_f1", "roc_auc")}}
    print(json.dumps(out, sort_keys=False))
    return 0


def _text(row, columns) -> str:
    return common.joined_text(row[c] for c in columns)


def _matching(rows, conditions):
    for cond in conditions:
        col, _, val = cond.partition("=")
        rows = [r for r in rows if r.get(col) == val]
    return rows


if __name__ == "__main__":
    sys.exit(main())
