"""Probe (issue #22, session 22): Gemma 3 270M's hidden states as features (a stronger encoder?).

Sessions 17–19 read multilingual-e5-small's frozen pools (embedding output and layers 1–6) with a
linear and an MLP head: en 0.941 / 0.985 alone, below the char n-grams. ``research.lm_perplexity``
found Gemma 3 270M's token likelihoods add to the char n-grams in Korean. Here the same language
model's hidden states: mean-pooled over each review's tokens (not ``<bos>``) at layers 6, 12 and 18
(as transformers' ``hidden_states`` gives them), 3 × 640 numbers; standardised, one LR per language (C 0.05, the 2.0.1 pools' C),
out of fold on MAiDE-up's 5 hotel-grouped folds; then per-language LR stackers over the lexical
out-of-fold logit, the likelihood features and the pools' out-of-fold logit. Settings fixed before
any fold was scored. The body only (no 262k-word output layer): ~15 min on 2 cores, cached.

    python -m research.lm_perplexity   # first: its features and the GGUF file
    python -m research.lm_pools
"""
import json

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold
from sklearn.preprocessing import StandardScaler

from models import multilingual as mm, common
from models.multilingual_gemma import pools_of, torch_pools as pools  # noqa: F401 (moved there in session 23)
from research import lm_perplexity as lp

LAYERS = (6, 12, 18)


def oof_lr(X, y, lang, hotel, C, per_language=True) -> np.ndarray:
    p = np.zeros(len(y))
    for tr, te in GroupKFold(5).split(X, y, hotel):
        for L in (mm.SERVED if per_language else [None]):
            a = tr if L is None else tr[lang[tr] == L]
            b = te if L is None else te[lang[te] == L]
            ss = StandardScaler().fit(X[a])
            p[b] = LogisticRegression(C=C, max_iter=3000).fit(ss.transform(X[a]), y[a]).decision_function(ss.transform(X[b]))
    return p


def scores(p, y, lang) -> dict:
    return {L: [round(float(((p[lang == L] > 0) == y[lang == L]).mean()), 4),
                round(float(roc_auc_score(y[lang == L], p[lang == L])), 4)] for L in mm.SERVED}


def main() -> int:
    m = mm.maide()
    rows = np.flatnonzero(np.isin(m.language, mm.SERVED))
    texts = [str(t) for t in m.texts[rows]]
    lex = np.load(common.CACHE / "lexical-oof.npz", allow_pickle=True)["selected"][rows]
    F = lp.cached_features(texts)
    P = pools_of({"maide": texts})["maide"]
    y, lang, hotel = m.y[rows], m.language[rows], m.hotel[rows]
    res = {}
    pools_oof = oof_lr(P, y, lang, hotel, 0.05)
    res["pools_alone"] = scores(pools_oof, y, lang)
    res["pools_all_languages"] = scores(oof_lr(P, y, lang, hotel, 0.05, per_language=False), y, lang)
    res["lex_only"] = scores(lex, y, lang)
    res["lex+likelihood"] = scores(oof_lr(np.column_stack([lex, F]), y, lang, hotel, 1.0), y, lang)
    res["lex+pools"] = scores(oof_lr(np.column_stack([lex, pools_oof]), y, lang, hotel, 1.0), y, lang)
    res["lex+likelihood+pools"] = scores(oof_lr(np.column_stack([lex, F, pools_oof]), y, lang, hotel, 1.0), y, lang)
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
