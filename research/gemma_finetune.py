"""Probe (issue #22, session 26): does fine-tuning Gemma's layers 7–12 lift the ``generated`` head?

Sessions 22–25 read Gemma 3 270M frozen: mean pools of layers 6 and 12 into linear heads. The
MAiDE-up figures stopped at ~0.96 accuracy / ~0.993 ROC-AUC in en, ko and zh (target 0.97 / 0.995),
and every note said the next route, fine-tuning, was a GPU task. This measures whether it is worth
one, on this 2-core CPU: low-rank adapters (LoRA) on every linear map of layers 7–12 plus a linear
read-out of the pools of layers 6 (frozen) and 12 (tuned), trained on a fold's training hotels and
scored on its held-out hotels. The serving cost would not change (same layers, same shapes: the
adapters fold into the weights).

Everything below was fixed before any fold was scored, and the probe runs once:

* folds: MAiDE-up's 5 hotel-grouped folds (``GroupKFold`` on hotel, as ``models.multilingual``);
  training rows: the training hotels' en, ko and zh reviews only (time: ~3,800 a fold); scored: the
  held-out hotels' en, ko and zh reviews;
* model: transformers' float32 Gemma from the pinned GGUF, cut after layer 12; LoRA rank 8, alpha 16
  on q, k, v, o, gate, up and down of layers 7–12 (B starts at zero, so training starts from the
  frozen model); read-out on the standardised pools (mean and scale of the training rows' frozen
  pools), started from the frozen pools' logistic regression (C = ``models.multilingual.C_EMB``);
* training: 2 epochs, AdamW (adapters 2e-4, read-out 1e-3, no weight decay), batches of ~1,024
  tokens, seeded order, binary cross-entropy;
* compared, on the same held-out rows, side by side: the frozen pools' LR trained on the same rows;
  the tuned model's own logit; the char 1–4 TF-IDF LR (the lexical part) trained on the same rows;
  and each encoder logit plus the lexical logit (a plain sum, no stacker fitted).

    python -m research.gemma_finetune [--folds 0,1,2,3,4] [--threads 2]   # ~25 min a fold on 2 cores

Writes ``.cache/classifier/gemma-finetune-fold<k>.npz`` per fold (held-out logits), so folds can run
in separate sessions; ``--report`` prints the table over the folds cached.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

from models import common, multilingual as mm, multilingual_gemma as mg

LANGS = ("en", "ko", "zh")
RANK, ALPHA, EPOCHS, LR_ADAPTER, LR_HEAD, TOKENS = 8, 16, 2, 2e-4, 1e-3, 1024
TUNED = range(6, 12)        # 0-based: layers 7–12
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def cache(k: int):
    return common.CACHE / f"gemma-finetune-fold{k}.npz"


def model(threads: int):
    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    tok, lm = mg.load_lm()
    body = lm.model
    body.layers = body.layers[:12]
    body.config.num_hidden_layers = 12
    body.norm = torch.nn.Identity()   # hidden_states[12] stays layer 12's output, as the cached pools
    for p in body.parameters():
        p.requires_grad_(False)

    class LoRA(torch.nn.Module):
        def __init__(self, base):
            super().__init__()
            self.base = base
            self.a = torch.nn.Parameter(torch.randn(RANK, base.in_features) / math.sqrt(base.in_features))
            self.b = torch.nn.Parameter(torch.zeros(base.out_features, RANK))

        def forward(self, x):
            return self.base(x) + (x @ self.a.T @ self.b.T) * (ALPHA / RANK)

    adapters = []
    for i in TUNED:
        layer = body.layers[i]
        for part in (layer.self_attn, layer.mlp):
            for name in TARGETS:
                if hasattr(part, name):
                    wrapped = LoRA(getattr(part, name))
                    setattr(part, name, wrapped)
                    adapters += [wrapped.a, wrapped.b]
    return tok, body, adapters


def pools(body, x, mask):
    hs = body(input_ids=x, attention_mask=mask, output_hidden_states=True).hidden_states
    m = mask[:, 1:, None].float()
    return [(hs[L][:, 1:] * m).sum(1) / m.sum(1).clamp(min=1) for L in (6, 12)]


def batches(ids, rows, rng=None):
    import torch
    order = np.asarray(rows)
    if rng is not None:
        order = order[rng.permutation(len(order))]
    out, cur, width = [], [], 0
    for r in order:
        w = max(width, len(ids[r]))
        if cur and w * (len(cur) + 1) > TOKENS:
            out.append(cur)
            cur, w = [], len(ids[r])
        cur.append(r)
        width = w
    if cur:
        out.append(cur)
    for b in out:
        n = max(len(ids[r]) for r in b)
        x = torch.zeros((len(b), n), dtype=torch.long)
        mask = torch.zeros_like(x)
        for j, r in enumerate(b):
            x[j, :len(ids[r])] = torch.tensor(ids[r])
            mask[j, :len(ids[r])] = 1
        yield np.asarray(b), x, mask


def run_fold(k: int, threads: int) -> None:
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold
    from sklearn.preprocessing import StandardScaler

    m = mm.maide()
    served = np.isin(m.language, mm.SERVED)
    frozen = mg.pools_of({"maide_served": [str(t) for t in m.texts[served]]})["maide_served"][:, :1280]
    F = np.zeros((len(m.texts), 1280), dtype=np.float32)
    F[served] = frozen
    tr, te = list(GroupKFold(mm.FOLDS).split(m.texts, m.y, m.hotel))[k]
    tr = tr[np.isin(m.language[tr], LANGS)]
    te = te[np.isin(m.language[te], LANGS)]
    y = m.y
    sc = StandardScaler().fit(F[tr])
    lr = LogisticRegression(C=mm.C_EMB, max_iter=5000).fit(sc.transform(F[tr]), y[tr])
    vec = mm._vectorizer().fit(m.texts[tr])
    lex = LogisticRegression(C=mm.C_LEX, max_iter=3000).fit(vec.transform(m.texts[tr]), y[tr])

    tok, body, adapters = model(threads)
    ids = {int(r): tok(str(m.texts[r]), truncation=True, max_length=mg.MAX_TOKENS).input_ids for r in np.r_[tr, te]}
    mean, scale = (torch.tensor(v, dtype=torch.float32) for v in (sc.mean_, sc.scale_))
    head = torch.nn.Linear(1280, 1)
    with torch.no_grad():
        head.weight.copy_(torch.tensor(lr.coef_, dtype=torch.float32))
        head.bias.copy_(torch.tensor(lr.intercept_, dtype=torch.float32))
    opt = torch.optim.AdamW([{"params": adapters, "lr": LR_ADAPTER}, {"params": head.parameters(), "lr": LR_HEAD}],
                            weight_decay=0.0)
    yt = torch.tensor(y, dtype=torch.float32)
    rng = np.random.default_rng(k)
    t0 = time.time()
    for epoch in range(EPOCHS):
        seen, total = 0, 0.0
        for b, x, mask in batches(ids, tr, rng):
            p6, p12 = pools(body, x, mask)
            logit = head((torch.cat([p6, p12], 1) - mean) / scale)[:, 0]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, yt[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            seen += len(b)
            total += float(loss) * len(b)
            if seen % 256 < len(b):
                print(f"fold {k} epoch {epoch + 1}: {seen}/{len(tr)}, loss {total / seen:.4f}, {time.time() - t0:.0f} s",
                      file=sys.stderr, flush=True)
    tuned = np.zeros(len(te), dtype=np.float64)
    where = {int(r): j for j, r in enumerate(te)}
    with torch.no_grad():
        for b, x, mask in batches(ids, te):
            p6, p12 = pools(body, x, mask)
            tuned[[where[int(r)] for r in b]] = head((torch.cat([p6, p12], 1) - mean) / scale)[:, 0].numpy()
    np.savez(cache(k), rows=te, tuned=tuned, frozen=lr.decision_function(sc.transform(F[te])),
             lexical=lex.decision_function(vec.transform(m.texts[te])), seconds=time.time() - t0)


def report() -> dict:
    from sklearn.metrics import roc_auc_score
    m = mm.maide()
    parts = [dict(np.load(cache(k))) for k in range(mm.FOLDS) if cache(k).exists()]
    if not parts:
        raise SystemExit("no fold cached: run the probe first")
    rows = np.concatenate([p["rows"] for p in parts])
    z = {name: np.concatenate([p[name] for p in parts]) for name in ("tuned", "frozen", "lexical")}
    z["frozen + lexical"] = z["frozen"] + z["lexical"]
    z["tuned + lexical"] = z["tuned"] + z["lexical"]
    out = {"folds": len(parts), "minutes_per_fold": round(float(np.mean([p["seconds"] for p in parts])) / 60, 1)}
    for lang in LANGS:
        sel = m.language[rows] == lang
        y = m.y[rows][sel]
        out[lang] = {name: {"n": int(sel.sum()), "accuracy": round(float(((v[sel] >= 0) == y).mean()), 4),
                            "roc_auc": round(float(roc_auc_score(y, v[sel])), 4)} for name, v in z.items()}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--folds", default="0,1,2,3,4")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("PROBE_THREADS", "2")))
    ap.add_argument("--report", action="store_true", help="only print the table over the cached folds")
    a = ap.parse_args(argv)
    if not a.report:
        for k in (int(f) for f in a.folds.split(",")):
            if not cache(k).exists():
                run_fold(k, a.threads)
    print(json.dumps(report(), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
