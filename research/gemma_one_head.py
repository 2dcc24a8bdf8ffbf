"""Probe (issue #22, session 22): one Gemma-pool head for every kind of fake, or one per kind?

``research.gemma_head`` and ``research.gemma_older_sets`` fitted the recipe (char TF-IDF LR + Gemma
pools LR, inner-CV stacker: ``models.multilingual.fit_generated``) on each set alone. The issue allows
one model or a documented combination. Here **one** head, fitted on all the labelled rows at once:
MAiDE-up (10 languages; generated = 1), fake-reviews-8k dev (computer-generated = 1), Ott
(deceptive = 1) and the 2,000 NSMC even-movie reviews (honest). Each set is scored out of fold with
everything else always in training: MAiDE-up in its 5 hotel-grouped folds, Ott in its 4
hotel-grouped folds; fake-reviews test and NSMC odd-numbered movies by the head fitted on all rows.
2.0.1's thresholds. Settings fixed before any fold was scored (the recipe's, unchanged).

    python -m research.gemma_older_sets   # first (cached pools of every set)
    python -m research.gemma_one_head     # ~10 min on 2 cores
"""
import json

import numpy as np
from sklearn.model_selection import GroupKFold

from models import common, multilingual as mm
from research.gemma_head import THRESHOLDS, pools_of
from research.gemma_older_sets import figures, fit_and_score


def main() -> int:
    m = mm.maide()
    served = np.isin(m.language, mm.SERVED)
    fr = common.fake_reviews()
    ot = common.ott()
    dev = [r for r in fr if r["split"] == "dev"]
    test = [r for r in fr if r["split"] == "test"]
    ns_t, ns_movie, ns_rating = mm.nsmc_sample()
    ns_train = np.where(ns_movie % 2 == 0)[0][:mm.NSMC_TRAIN]
    ns_eval = np.where(ns_movie % 2 == 1)[0]
    P = pools_of({"maide_served": [str(t) for t in m.texts[served]],
                  "maide_other": [str(t) for t in m.texts[~served]],
                  "fake_reviews_dev_or": [r["text"] for r in dev if r["y"] == 0],
                  "fake_reviews_dev_cg": [r["text"] for r in dev if r["y"] == 1],
                  "fake_reviews_test_or": [r["text"] for r in test if r["y"] == 0],
                  "fake_reviews_test_cg": [r["text"] for r in test if r["y"] == 1],
                  "ott_truthful": [r["text"] for r in ot if r["y"] == 0],
                  "ott_deceptive": [r["text"] for r in ot if r["y"] == 1],
                  "nsmc_train": [str(t) for t in ns_t[ns_train]],
                  "nsmc_eval": [str(t) for t in ns_t[ns_eval]]})
    mm.WIDTH = P["ott_truthful"].shape[1]
    E_m = np.zeros((len(m.texts), mm.WIDTH), dtype=np.float32)
    E_m[served], E_m[~served] = P["maide_served"], P["maide_other"]
    dev_rows = [r for r in dev if r["y"] == 0] + [r for r in dev if r["y"] == 1]
    ot_rows = [r for r in ot if r["y"] == 0] + [r for r in ot if r["y"] == 1]
    te_rows = [r for r in test if r["y"] == 0] + [r for r in test if r["y"] == 1]
    sets = {   # name: (texts, pools, y, groups)
        "maide": (m.texts, E_m, m.y, m.hotel),
        "fake_reviews_dev": (np.array([r["text"] for r in dev_rows], dtype=object),
                             np.vstack([P["fake_reviews_dev_or"], P["fake_reviews_dev_cg"]]),
                             np.array([r["y"] for r in dev_rows]), np.array([f"fr-{i % 7}" for i in range(len(dev_rows))])),
        "ott": (np.array([r["text"] for r in ot_rows], dtype=object), np.vstack([P["ott_truthful"], P["ott_deceptive"]]),
                np.array([r["y"] for r in ot_rows]), np.array([f"ott-{r['hotel']}" for r in ot_rows])),
        "nsmc_train": (ns_t[ns_train], P["nsmc_train"], np.zeros(len(ns_train), int),
                       np.array([f"nsmc-{mv}" for mv in ns_movie[ns_train]])),
    }

    def fit_without(name, keep):   # training rows: every set, and of ``name`` only ``keep``
        parts = [(s[0][keep], s[1][keep], s[2][keep], s[3][keep]) if n == name else s for n, s in sets.items()]
        return [np.concatenate([p[i] for p in parts]) if i != 1 else np.vstack([p[1] for p in parts]) for i in range(4)]

    T, E, y, g = sets["maide"]
    p_maide = np.zeros(len(y))
    for k, (tr, te) in enumerate(GroupKFold(mm.FOLDS).split(T, y, g)):
        p_maide[te] = fit_and_score(*fit_without("maide", tr), T[te], E[te])
        print(f"MAiDE-up fold {k}", flush=True)
    T_o, E_o, y_o, _ = sets["ott"]
    fold = np.array(common.ott_hotel_folds(ot_rows))
    p_ott = np.zeros(len(y_o))
    for k in range(4):
        p_ott[fold == k] = fit_and_score(*fit_without("ott", fold != k), T_o[fold == k], E_o[fold == k])
        print(f"Ott fold {k}", flush=True)
    full = [np.concatenate([s[i] for s in sets.values()]) if i != 1 else np.vstack([s[1] for s in sets.values()])
            for i in range(4)]
    T_te = np.array([r["text"] for r in te_rows], dtype=object)
    y_te = np.array([r["y"] for r in te_rows])
    p_te = fit_and_score(*full, T_te, np.vstack([P["fake_reviews_test_or"], P["fake_reviews_test_cg"]]))
    p_ns = fit_and_score(*full, ns_t[ns_eval], P["nsmc_eval"])
    stars = np.ceil(ns_rating[ns_eval] / 2)
    pol = np.array([r["polarity"] for r in ot_rows])
    out = {"maide_up": {lang: mm.short(f) for lang, f in mm.language_figures(m, p_maide, THRESHOLDS).items()},
           "ott_hotel_grouped_4_folds": figures(y_o, p_ott, {"negative": pol == "negative", "positive": pol == "positive"}),
           "fake_reviews_test": figures(y_te, p_te),
           "nsmc_odd_movies_fpr": {k: {t: round(float((p_ns[sel] >= v).mean()), 4) for t, v in THRESHOLDS.items()}
                                   for k, sel in {"all": np.ones(len(p_ns), bool), "1-2": stars <= 2, "4-5": stars >= 4}.items()}}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
