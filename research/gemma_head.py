"""Probe (issue #22, session 22): 2.0.1's `generated` head recipe with Gemma 3 270M's pools in place of e5's.

``research.lm_pools`` found Gemma 3 270M's mean-pooled hidden states (layers 6, 12, 18) separate
MAiDE-up's generated reviews better than anything on multilingual-e5-small. Here they replace the
e5 pools (embedding output and layers 1–6) in ``models.multilingual``'s recipe, nothing else changed:
the same char TF-IDF part (C 10), the pools' LR (C 0.05), the inner hotel-grouped stacker, the same
training rows (MAiDE-up's 10 languages + fake-reviews dev `OR` + 2,000 NSMC reviews of even-numbered
movies), the same 5 hotel-grouped folds, 2.0.1's thresholds, and the per-language char TF-IDF
baseline beside it. Then the head fitted on all of it, on honest reviews from other sources: Ott
truthful (by polarity), NSMC odd-numbered movies (by stars), fake-reviews test `OR`.

This is the generated head alone: the served 2.0.1 takes, for Latin-script text, the larger of it
and 1.3.0's English detectors (which cost English accuracy on hotel reviews; unchanged here).

    python -m research.lm_perplexity && python -m research.lm_pools   # the GGUF file, first pools
    python -m research.gemma_head   # ~25 min on 2 cores the first time (pools cached by text digest), then ~4 min
"""
import json

import numpy as np

from models import common, heads, multilingual as mm
from pipeline.classifier import runtime
from research import lm_perplexity as lp, lm_pools

# 2.0.1's thresholds, read from the served artifact
THRESHOLDS = json.loads((common.ARTIFACTS / heads.NAME / "2.0.1" / "config.json").read_text())["thresholds"]
pools_of = lm_pools.pools_of


def main() -> int:
    m = mm.maide()
    served = np.isin(m.language, mm.SERVED)
    fr = common.fake_reviews()
    keep = [i for i, r in enumerate(fr) if r["split"] == "dev" and r["y"] == 0]
    ns_t, ns_movie, ns_rating = mm.nsmc_sample()
    ns_train = np.where(ns_movie % 2 == 0)[0][:mm.NSMC_TRAIN]
    ns_eval = np.where(ns_movie % 2 == 1)[0]
    fr_or = [r["text"] for r in fr if r["split"] == "test" and r["y"] == 0]
    truthful = [r for r in common.ott() if r["y"] == 0]
    P = pools_of({
        "maide_served": [str(t) for t in m.texts[served]],
        "maide_other": [str(t) for t in m.texts[~served]],
        "fake_reviews_dev_or": [fr[i]["text"] for i in keep],
        "nsmc_train": [str(t) for t in ns_t[ns_train]],
        "fake_reviews_test_or": fr_or,
        "ott_truthful": [r["text"] for r in truthful],
        "nsmc_eval": [str(t) for t in ns_t[ns_eval]],
    })
    E = np.zeros((len(m.texts), P["maide_served"].shape[1]), dtype=np.float32)
    E[served], E[~served] = P["maide_served"], P["maide_other"]
    extra = mm.Honest(np.r_[np.array([fr[i]["text"] for i in keep], dtype=object), ns_t[ns_train]],
                      np.vstack([P["fake_reviews_dev_or"], P["nsmc_train"]]),
                      np.r_[np.array([f"fake-reviews-{i % 7}" for i in keep]),
                            np.array([f"nsmc-{mv}" for mv in ns_movie[ns_train]])])
    mm.WIDTH = E.shape[1]   # the head spec's column range: the Gemma pools, not e5's 2,688
    cv = mm.cross_validate(m, E, extra)
    table = {lang: {"generated_head_gemma": mm.short(g), "baseline": mm.short(b)}
             for (lang, g), b in zip(mm.language_figures(m, cv["model"], THRESHOLDS).items(),
                                     mm.language_figures(m, cv["baseline"], {"p>=0.5": 0.5}).values())}
    spec = runtime.rounded(mm.fit_generated(np.r_[m.texts, extra.texts], np.vstack([E, extra.E]),
                                            np.r_[m.y, np.zeros(len(extra.texts), int)], np.r_[m.hotel, extra.groups]),
                           mm.HEAD_DIGITS)

    def fpr(p, sel=None):
        p = np.asarray(p) if sel is None else np.asarray(p)[sel]
        return {"n": int(len(p)), **{k: round(float((p >= v).mean()), 4) for k, v in THRESHOLDS.items()}}

    p_ot = mm.served_generated(spec, P["ott_truthful"], [r["text"] for r in truthful])
    pol = np.array([r["polarity"] for r in truthful])
    p_ns = mm.served_generated(spec, P["nsmc_eval"], list(ns_t[ns_eval]))
    stars = np.ceil(ns_rating[ns_eval] / 2)
    honest = {"fake_reviews_test_OR": fpr(mm.served_generated(spec, P["fake_reviews_test_or"], fr_or)),
              "ott_truthful": {**fpr(p_ot), "negative": fpr(p_ot, pol == "negative"), "positive": fpr(p_ot, pol == "positive")},
              "nsmc_odd_movies": {**fpr(p_ns), "1-2": fpr(p_ns, stars <= 2), "4-5": fpr(p_ns, stars >= 4)},
              **{k: {kk: (fpr(cv["model"], (m.language == k.split("_")[-1]) & (m.y == 0) & (m.sentiment == kk))
                          if kk in ("neg", "pos") else vv) for kk, vv in {"all": None, "neg": None, "pos": None}.items()}
                 for k in ("maide_up_real_en", "maide_up_real_ko", "maide_up_real_zh")}}
    for k in ("maide_up_real_en", "maide_up_real_ko", "maide_up_real_zh"):
        honest[k]["all"] = fpr(cv["model"], (m.language == k.split("_")[-1]) & (m.y == 0))
    np.savez(common.CACHE / "gemma-head-oof.npz", generated=cv["model"], baseline=cv["baseline"])
    # en/ko/zh: the head's out-of-fold logit stacked per language with the likelihood features of
    # research.lm_perplexity (its 5 hotel-grouped folds, LR C 1, as research.lm_pools' stackers)
    F = lp.cached_features([str(t) for t in m.texts[served]])
    q = np.clip(cv["model"][served], 1e-7, 1 - 1e-7)
    logit = np.log(q / (1 - q))
    y, lang, hotel = m.y[served], m.language[served], m.hotel[served]
    with_likelihood = {"head": lm_pools.scores(logit, y, lang), "head+likelihood": lm_pools.scores(
        lm_pools.oof_lr(np.column_stack([logit, F]), y, lang, hotel, 1.0), y, lang)}
    print(json.dumps({"maide_up_hotel_grouped_cv": table, "stacker": spec["stacker"], "honest_fpr": honest,
                      "with_likelihood_acc_auc": with_likelihood}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
