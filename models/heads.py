"""Shared training helpers: heads, calibration, thresholds, fairness measures and the baseline.

Used by the recipe (``models/train.py``), evaluation (``models/evaluate.py``) and the research
probes; scikit-learn and torch are imported inside the functions that need them (training only).

* Heads: logistic regressions over TF-IDF blocks (``sklearn_vectorizers``; served by
  ``pipeline/classifier/lexical.py``) and over pooled embeddings; the fine-tuned encoder's own
  classification layer as a linear function (``transformer_logit``).
* Calibration: Platt scaling (``platt``).
* Thresholds: ``threshold_for`` (a share of honest validation reviews) and
  ``threshold_with_confidence`` (a Clopper–Pearson bound on that share).
* Fairness: accuracy per fold and the false-positive rate of truthful reviews by polarity.
* Baseline: the TF-IDF + logistic regression every figure is compared with.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from models import common
from pipeline.classifier.lexical import Tfidf

NAME = "fake-review-classifier"
VAL_FOLD = 3           # the Ott fold whose truthful reviews join the threshold validation set
LOWER_MAX_HONEST = 0.05
UPPER_MAX_HONEST = 0.01


def log(msg):
    print(f"[train {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def rel(path) -> str:
    """A path relative to the repository when it lies inside it (no machine-specific prefixes)."""
    try:
        return str(Path(path).resolve().relative_to(common.ROOT))
    except ValueError:
        return str(path)


def sklearn_vectorizers(kind: str):
    """The scikit-learn vectorizers (training only) of a lexical feature set, by name."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    if kind == "word12":  # 1.0.0
        return [TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, dtype=np.float64)]
    if kind == "word12p+char14":
        return [TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, dtype=np.float64,
                                token_pattern=r"(?u)\b\w+\b|[^\w\s]"),
                TfidfVectorizer(analyzer="char", ngram_range=(1, 4), sublinear_tf=True, min_df=2, dtype=np.float64)]
    raise ValueError(f"unknown lexical feature set {kind!r}")


def fit_blocks(texts, y, kind, sample_weight=None, C=10.0, dense=None):
    """Logistic regression over [``dense`` (optional), TF-IDF blocks of ``kind``]
    (:func:`sklearn_vectorizers`). Returns the fitted model and the blocks as served
    (vocabulary, idf and their slice of the coefficients)."""
    from scipy.sparse import csr_matrix, hstack
    from sklearn.linear_model import LogisticRegression
    vecs = sklearn_vectorizers(kind) if kind else []
    parts = ([csr_matrix(dense)] if dense is not None else []) + [v.fit_transform(texts) for v in vecs]
    lr = LogisticRegression(C=C, max_iter=10000, random_state=common.SEED).fit(
        hstack(parts).tocsr(), y, sample_weight=sample_weight)
    blocks, start = [], 0 if dense is None else dense.shape[1]
    for v in vecs:
        block = Tfidf.from_sklearn(v).to_json()
        block["coef"] = [round(float(c), 6) for c in lr.coef_[0][start:start + len(v.vocabulary_)]]
        start += len(v.vocabulary_)
        blocks.append(block)
    return lr, blocks


def fit_lexical(texts, y, kind, sample_weight=None, C=10.0):
    """The lexical model of the fusion family: served blocks, intercept and how it was fitted."""
    lr, blocks = fit_blocks(texts, y, kind, sample_weight, C)
    return {"kind": kind, "blocks": blocks, "intercept": float(lr.intercept_[0]), "C": C}


def fit_concat(texts, E, y, kind, w, sample_weight=None, C=10.0):
    """The 1.0.0 head family, with a choice of lexical set: one logistic regression over
    [standardised embedding × w, TF-IDF blocks of ``kind``]. Returns a head spec (no calibration)."""
    mean, scale = E.mean(0), E.std(0) + 1e-6
    lr, blocks = fit_blocks(texts, y, kind, sample_weight, C, dense=(E - mean) / scale * w)
    coef, d = lr.coef_[0], E.shape[1]
    return {"embedding": {"mean": mean.tolist(), "scale": scale.tolist(), "coef": (coef[:d] * w).tolist()},
            "intercept": float(lr.intercept_[0]), "lexical": {"blocks": blocks} if blocks else None,
            "calibration": {"method": "platt", "a": 1.0, "b": 0.0},
            "fit": {"family": "concat", "lexical": kind, "embedding_weight": w, "C": C}}


def transformer_logit(ckpt):
    """The fine-tuned encoder's own classification layer as a linear function of the pooled
    embedding: logit(fake) - logit(honest) = w·e + b."""
    import torch
    state = torch.load(Path(ckpt) / "head.pt")
    w = (state["weight"][1] - state["weight"][0]).numpy().astype(np.float64)
    b = float(state["bias"][1] - state["bias"][0])
    return w, b


def platt(z, y):
    from sklearn.linear_model import LogisticRegression
    lr = LogisticRegression(C=1e6, max_iter=10000).fit(np.asarray(z).reshape(-1, 1), y)
    return {"method": "platt", "a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0])}


def threshold_for(p_honest, max_share):
    """Smallest threshold t (from the scores) with share(p_honest >= t) <= max_share."""
    s = np.sort(np.asarray(p_honest))[::-1]
    k = int(np.floor(max_share * len(s)))  # at most k honest scores may be >= t
    t = s[k] + 1e-9 if k < len(s) else s[-1]
    return float(min(max(t, 1e-6), 1 - 1e-9))


def threshold_with_confidence(p_honest, max_share, confidence=0.95):
    """Smallest threshold whose one-sided Clopper–Pearson upper bound on the share of honest
    reviews at or above it is <= max_share: with few validation reviews a point estimate of 1% is
    too noisy (measured: 0.8% on validation became 3.1% on test), so the bound decides instead."""
    from scipy.stats import beta
    s = np.sort(np.asarray(p_honest))[::-1]
    n = len(s)
    k = -1
    while k + 1 < n and beta.ppf(confidence, k + 2, n - (k + 1)) <= max_share:
        k += 1  # k + 1 exceedances still keep the bound within max_share
    if k < 0:
        raise ValueError(f"{n} honest validation reviews cannot bound the share at {max_share:.1%}")
    t = s[k] + 1e-9 if k < n else s[-1]
    return float(min(max(t, 1e-6), 1 - 1e-9))


def roc_points(y, p, n=101):
    y, p = np.asarray(y), np.asarray(p)
    pts = []
    for t in np.linspace(0, 1, n):
        pos, neg = p[y == 1], p[y == 0]
        pts.append([round(float((neg >= t).mean()), 4), round(float((pos >= t).mean()), 4)])
    return pts


def histogram(p, bins=20):
    h, _ = np.histogram(np.asarray(p), bins=bins, range=(0, 1))
    return h.tolist()


def tfidf_baseline(tr_texts, tr_y, te_texts):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    lr = LogisticRegression(C=10.0, max_iter=10000, random_state=common.SEED)
    lr.fit(vec.fit_transform(tr_texts), tr_y)
    return lr.predict_proba(vec.transform(te_texts))[:, 1]


def fold_accuracy(y, p, folds) -> list:
    return [float(((p[folds == k] >= 0.5) == y[folds == k]).mean()) for k in range(4)]


def truthful_fpr_by_polarity(y, p, polarity, thresholds) -> dict:
    """Share of truthful negative and truthful positive reviews at or above each threshold, and the gap."""
    out = {}
    for name, t in thresholds.items():
        v = {f"truthful_{pol}": float((p[(y == 0) & (polarity == pol)] >= t).mean()) for pol in ("negative", "positive")}
        v["gap_points"] = round(100 * (v["truthful_negative"] - v["truthful_positive"]), 2)
        out[name] = v
    return out
