"""Plain-numpy metrics (no scikit-learn needed at evaluation or serving time)."""
from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence

import numpy as np


def roc_auc(y: Sequence[int], p: Sequence[float]) -> Optional[float]:
    """Area under the ROC curve (Mann–Whitney, ties counted half); None with a single class."""
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((1 - y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(p, kind="mergesort")
    ranks = np.empty(len(p), dtype=np.float64)
    sorted_p = p[order]
    i = 0
    while i < len(p):  # average ranks over ties
        j = i
        while j + 1 < len(p) and sorted_p[j + 1] == sorted_p[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def macro_f1(y, pred) -> float:
    y, pred = np.asarray(y, dtype=int), np.asarray(pred, dtype=int)
    f1s = []
    for c in (0, 1):
        tp = int(((pred == c) & (y == c)).sum())
        fp = int(((pred == c) & (y != c)).sum())
        fn = int(((pred != c) & (y == c)).sum())
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s))


def fpr_at(y, p, thresholds: Mapping[str, float]) -> Dict[str, Optional[float]]:
    """Share of negatives (label 0) scored at or above each threshold."""
    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=np.float64)
    neg = p[y == 0]
    return {name: (float((neg >= t).mean()) if len(neg) else None) for name, t in thresholds.items()}


def summary(y, p, thresholds: Mapping[str, float], groups=None, cut: float = 0.5) -> dict:
    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=np.float64)
    pred = (p >= cut).astype(int)
    out = {"n": int(len(y)),
           "accuracy": float((pred == y).mean()) if len(y) else None,
           "macro_f1": macro_f1(y, pred) if len(y) else None,
           "roc_auc": roc_auc(y, p),
           "fpr": fpr_at(y, p, thresholds),
           "fpr_by_group": {},
           "tpr": fpr_at(1 - y, p, thresholds)}  # share of positives at or above each threshold
    if groups is not None:
        groups = np.asarray(groups, dtype=object)
        for g in sorted(set(groups.tolist()), key=str):
            sel = groups == g
            out["fpr_by_group"][str(g)] = {"n": int(sel.sum()), "n_negative": int((y[sel] == 0).sum()),
                                          **fpr_at(y[sel], p[sel], thresholds)}
    return out
