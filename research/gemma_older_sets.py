"""Probe (issue #22, session 22): can the Gemma-pool head also catch the older kinds of fake?

The served 2.0.1 keeps 1.3.0's English detectors (e5 fine-tuned on Ott, plus a head for
fake-reviews-8k's computer-generated product reviews) beside the `generated` head and takes the
larger score for Latin-script text; they flag 3.9% of real MAiDE-up hotel reviews at `lower`, which
is most of what keeps the served English figure (0.930) below the generated head's. If Gemma 3 270M's
pools serve those sets too, one model could replace the combination. The recipe of
``research.gemma_head`` (char TF-IDF LR + Gemma pools LR, inner-CV stacker: ``models.multilingual
.fit_generated``), unchanged, on each older set:

- fake-reviews-8k: fitted on `dev` (inner groups: row index mod 7, as the generated head's honest
  rows), scored on `test` (issue target: accuracy ≥ 0.94, ROC-AUC ≥ 0.98);
- Ott: the 4 hotel-grouped folds of ``models.common.ott_hotel_folds`` (target: accuracy ≥ 0.90),
  with truthful FPR at 2.0.1's thresholds by polarity.

    python -m research.gemma_head          # first (the GGUF file, cached pools)
    python -m research.gemma_older_sets    # ~8 min on 2 cores the first time
"""
import json

import numpy as np
from sklearn.metrics import roc_auc_score

from models import common, multilingual as mm
from pipeline.classifier import runtime
from research.gemma_head import THRESHOLDS, pools_of


def figures(y, p, sel_groups=None) -> dict:
    out = {"n": int(len(y)), "accuracy": round(float(((p >= 0.5) == y).mean()), 4),
           "roc_auc": round(float(roc_auc_score(y, p)), 4),
           "recall": {k: round(float((p[y == 1] >= t).mean()), 4) for k, t in THRESHOLDS.items()},
           "fpr": {k: round(float((p[y == 0] >= t).mean()), 4) for k, t in THRESHOLDS.items()}}
    for name, sel in (sel_groups or {}).items():
        out[f"fpr_{name}"] = {k: round(float((p[sel & (y == 0)] >= t).mean()), 4) for k, t in THRESHOLDS.items()}
    return out


def fit_and_score(T_tr, E_tr, y_tr, g_tr, T_te, E_te) -> np.ndarray:
    spec = runtime.rounded(mm.fit_generated(T_tr, E_tr, y_tr, g_tr), mm.HEAD_DIGITS)
    return mm.served_generated(spec, E_te, T_te)


def older_set_pools(fr, ot):
    """(fake-reviews dev rows, test rows, Gemma pools by named list) of the two older sets."""
    dev = [r for r in fr if r["split"] == "dev"]
    test = [r for r in fr if r["split"] == "test"]
    return dev, test, pools_of({"fake_reviews_dev_or": [r["text"] for r in dev if r["y"] == 0],
                                "fake_reviews_dev_cg": [r["text"] for r in dev if r["y"] == 1],
                                "fake_reviews_test_or": [r["text"] for r in test if r["y"] == 0],
                                "fake_reviews_test_cg": [r["text"] for r in test if r["y"] == 1],
                                "ott_truthful": [r["text"] for r in ot if r["y"] == 0],
                                "ott_deceptive": [r["text"] for r in ot if r["y"] == 1]})


def main() -> int:
    fr = common.fake_reviews()
    ot = common.ott()
    dev, test, P = older_set_pools(fr, ot)
    mm.WIDTH = P["ott_truthful"].shape[1]

    def stacked(rows, a, b):   # rows in the order of the two pooled lists a (y 0) and b (y 1)
        T = np.array([r["text"] for r in rows if r["y"] == 0] + [r["text"] for r in rows if r["y"] == 1], dtype=object)
        y = np.r_[np.zeros(len(a), int), np.ones(len(b), int)]
        return T, np.vstack([a, b]), y

    T_dev, E_dev, y_dev = stacked(dev, P["fake_reviews_dev_or"], P["fake_reviews_dev_cg"])
    T_te, E_te, y_te = stacked(test, P["fake_reviews_test_or"], P["fake_reviews_test_cg"])
    p_te = fit_and_score(T_dev, E_dev, y_dev, np.arange(len(y_dev)) % 7, T_te, E_te)
    p_te_lex = mm.baseline(T_dev, y_dev, T_te)

    rows = [r for r in ot if r["y"] == 0] + [r for r in ot if r["y"] == 1]
    T_ot, E_ot, y_ot = stacked(ot, P["ott_truthful"], P["ott_deceptive"])
    hotel = np.array([r["hotel"] for r in rows])
    fold = np.array(common.ott_hotel_folds(rows))
    pol = np.array([r["polarity"] for r in rows])
    p_ot, p_ot_lex = np.zeros(len(rows)), np.zeros(len(rows))
    for k in range(4):
        tr, te = fold != k, fold == k
        p_ot[te] = fit_and_score(T_ot[tr], E_ot[tr], y_ot[tr], hotel[tr], T_ot[te], E_ot[te])
        p_ot_lex[te] = mm.baseline(T_ot[tr], y_ot[tr], T_ot[te])
    by_pol = {"negative": pol == "negative", "positive": pol == "positive"}
    print(json.dumps({"fake_reviews_test": {"gemma_head": figures(y_te, p_te), "char_tfidf_lr": figures(y_te, p_te_lex)},
                      "ott_hotel_grouped_4_folds": {"gemma_head": figures(y_ot, p_ot, by_pol),
                                                    "char_tfidf_lr": figures(y_ot, p_ot_lex, by_pol)}}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
