"""Probe (issue #22): can a small fine-tuned branch on the served encoder's layer-6 states catch
LLM-written reviews better than the frozen pools, on this 2-core CPU?

The served 2.0.0 encoder (``encoder-first.onnx``) already computes, for every review window, the
hidden states after layer 6 (its ``carry.2`` output, what ``encoder-rest.onnx`` continues from). This
probe caches those states once (fp16), then fine-tunes a branch of ``--layers`` transformer layers
initialised from the base multilingual-e5-small's layers 7.. (``.cache/classifier/e5-small``, made by
``scripts.e5_convert``), mean-pooled, with one logit. Every window is a training example with its
review's label; a review's logit is the mean of its windows'. Training rows: MAiDE-up (``--languages``)
of the other folds + the generated head's honest rows from other sources (fake-reviews dev ``OR``,
2,000 NSMC reviews of even-numbered movies). Folds: the 5 hotel-grouped folds of
``models.multilingual`` (GroupKFold over all of MAiDE-up). Printed per language and fold, beside the
served ``generated`` head and the char TF-IDF baseline of ``models.multilingual evaluate``'s saved
out-of-fold scores.

    python -m research.generated_branch --folds 0 --languages en,ko,zh --layers 2 --epochs 3

``--layers 12 --trunk base`` fine-tunes the whole base e5-small instead (from its embedding output of
the same windows, frozen). The report ends with the branch stacked with the generated head
(``stacked_with_head``) over the folds scored so far (``--out`` keeps earlier runs' folds).

Every choice (layers, lr 5e-5, batch 16, epochs, last epoch kept) is fixed before a fold is scored.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from models import common, heads, metrics, multilingual
from pipeline.classifier import runtime

STATES = common.CACHE / "branch-states"


def window_states(clf, texts, name: str, trunk: str = "served"):
    """(states fp16 [tokens, 384], window start offsets, window lengths, owner text) for every window
    of ``texts``: through the served encoder-first (``trunk="served"``: its layer-6 states), or the
    base e5-small's embedding output (``trunk="base"``: the served windows' pieces mapped to the base
    vocabulary by the artifact's ``vocab-base-ids``); cached."""
    tag = "" if trunk == "served" else f"-{trunk}"
    path = STATES / f"{name}{tag}-{multilingual.texts_digest(texts)[:16]}.npz"    # keyed by the texts themselves
    if path.exists():
        d = np.load(path)
        return d["states"], d["starts"], d["lengths"], d["owner"]
    path.parent.mkdir(parents=True, exist_ok=True)
    per_text = clf.tokenize_windows(list(texts))
    ids = [w for ws in per_text for w in ws]
    owner = np.repeat(np.arange(len(texts)), [len(ws) for ws in per_text]).astype(np.int32)
    lengths = np.array([len(w) for w in ids], dtype=np.int32)
    starts = np.r_[0, np.cumsum(lengths)[:-1]].astype(np.int64)
    states = np.zeros((int(lengths.sum()), 384), dtype=np.float16)
    order = np.argsort(lengths, kind="stable")
    if trunk == "base":
        _base_embeddings(clf, ids, states, starts, lengths)
        np.savez(path, states=states, starts=starts, lengths=lengths, owner=owner, n_texts=len(texts))
        return states, starts, lengths, owner
    t0 = time.perf_counter()
    for c in range(0, len(order), 32):
        b = order[c:c + 32]
        width = int(lengths[b].max())
        x = np.zeros((len(b), width), np.int64)
        m = np.zeros((len(b), width), np.int64)
        for j, i in enumerate(b):
            x[j, :lengths[i]] = ids[i]
            m[j, :lengths[i]] = 1
        outs = dict(zip([o.name for o in clf.session.get_outputs()],
                        clf.session.run(None, {"input_ids": x, "attention_mask": m})))
        h = outs["carry.2"]
        for j, i in enumerate(b):
            states[starts[i]:starts[i] + lengths[i]] = h[j, :lengths[i]]
        if c % 3200 == 0:
            heads.log(f"states {name}: {c}/{len(order)} windows ({time.perf_counter() - t0:.0f} s)")
    np.savez(path, states=states, starts=starts, lengths=lengths, owner=owner, n_texts=len(texts))
    return states, starts, lengths, owner


def _base_embeddings(clf, ids, states, starts, lengths):
    """The base e5-small's embedding output (word + position + type, LayerNorm) of every window."""
    import io
    import lzma
    import torch
    from transformers import BertModel
    spec = runtime.read_config(runtime.default_model_dir())["encoder"]["word_embeddings"]
    to_base = np.load(io.BytesIO(lzma.decompress((clf.dir / spec["base_ids"]).read_bytes())))
    emb = BertModel.from_pretrained(str(common.CACHE / "e5-small")).embeddings.eval()
    with torch.inference_mode():
        for i, w in enumerate(ids):
            x = torch.from_numpy(to_base[np.asarray(w)].astype(np.int64))[None]
            states[starts[i]:starts[i] + lengths[i]] = emb(input_ids=x)[0].numpy()


def build_branch(layers: int, first: int = 6):
    import torch
    from transformers import BertModel
    base = BertModel.from_pretrained(str(common.CACHE / "e5-small"), attn_implementation="eager")
    blocks = [base.encoder.layer[first + k] for k in range(layers)]

    class Branch(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = torch.nn.ModuleList(blocks)
            self.dropout = torch.nn.Dropout(0.1)
            self.head = torch.nn.Linear(384, 1)

        def forward(self, h, mask):
            ext = (1.0 - mask[:, None, None, :].to(h.dtype)) * -1e4
            for layer in self.layers:
                out = layer(h, attention_mask=ext)
                h = out[0] if isinstance(out, tuple) else out
            mk = mask.unsqueeze(-1).to(h.dtype)
            pooled = (h * mk).sum(1) / mk.sum(1).clamp(min=1.0)
            return self.head(self.dropout(pooled)).squeeze(-1)

    return Branch()


class Windows:
    """Padded batches of cached window states."""

    def __init__(self, states, starts, lengths):
        self.states, self.starts, self.lengths = states, starts, lengths

    def batch(self, idx):
        import torch
        width = int(self.lengths[idx].max())
        h = np.zeros((len(idx), width, 384), np.float32)
        m = np.zeros((len(idx), width), np.int64)
        for j, i in enumerate(idx):
            n = self.lengths[i]
            h[j, :n] = self.states[self.starts[i]:self.starts[i] + n]
            m[j, :n] = 1
        return torch.from_numpy(h), torch.from_numpy(m)


def train(win: Windows, tr, y_win, args, log_tag=""):
    import torch
    from models.finetune import batches_by_length
    torch.manual_seed(common.SEED)
    model = build_branch(args.layers, 0 if args.trunk == "base" else 6)
    rng = __import__("random").Random(common.SEED)
    total = int(np.ceil(len(tr) / args.batch_size)) * args.epochs
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    warm = max(1, int(0.1 * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else max(0.0, (total - s) / max(1, total - warm)))
    y = torch.tensor(y_win, dtype=torch.float32)
    step, t0 = 0, time.time()
    for epoch in range(args.epochs):
        model.train()
        for b in batches_by_length(list(win.lengths[tr]), args.batch_size, rng):
            b = tr[np.array(b)]
            h, m = win.batch(b)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(h, m), y[b])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            if step % 100 == 0:
                heads.log(f"{log_tag}epoch {epoch} step {step}/{total} loss {loss.item():.4f} "
                          f"{step * args.batch_size / (time.time() - t0):.1f} windows/s")
    model.eval()
    return model


def score(model, win: Windows, idx, owner, n_texts):
    """Per text: the mean of its windows' logits (texts with no window in ``idx`` get NaN)."""
    import torch
    z = np.zeros(n_texts)
    cnt = np.zeros(n_texts)
    order = idx[np.argsort(win.lengths[idx], kind="stable")]
    with torch.inference_mode():
        for c in range(0, len(order), 64):
            b = order[c:c + 64]
            np.add.at(z, owner[b], model(*win.batch(b)).numpy())
            np.add.at(cnt, owner[b], 1)
    with np.errstate(invalid="ignore"):
        return z / cnt


def stacked(m, oof, saved, langs):
    """The branch's logit stacked with the served generated head's (LR), over the MAiDE-up rows that
    have a branch score; every row's stacked score from a stacker fitted by 5-fold hotel-grouped CV
    on the other scored rows (so a single fold's scores give an honest figure too)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold
    p = np.clip(saved["generated"], 1e-6, 1 - 1e-6)
    x = np.c_[np.log(p / (1 - p)), oof]
    idx = np.where(~np.isnan(oof))[0]
    z = np.full(len(m.y), np.nan)
    for tr, te in GroupKFold(5).split(idx, groups=m.hotel[idx]):
        z[idx[te]] = LogisticRegression().fit(x[idx[tr]], m.y[idx[tr]]).decision_function(x[idx[te]])
    out = {}
    for lang in langs:
        r = idx[m.language[idx] == lang]
        out[lang] = {"accuracy": round(float(((z[r] >= 0) == m.y[r]).mean()), 4),
                     "roc_auc": round(metrics.roc_auc(m.y[r], z[r]), 4), "n": int(len(r))}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--folds", default="0,1,2,3,4")
    ap.add_argument("--languages", default="en,ko,zh")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--trunk", choices=("served", "base"), default="served",
                    help="served: branch on the served layer-6 states, from the base's layer 7; "
                         "base: the whole base e5-small fine-tuned from its embedding output (frozen)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(common.CACHE / "branch-oof.npz"))
    args = ap.parse_args(argv)
    import torch
    from sklearn.model_selection import GroupKFold
    torch.set_num_threads(args.threads)
    common.seed_everything()
    clf = runtime.load(threads=args.threads, batch_size=32)
    m = multilingual.maide()
    langs = args.languages.split(",")
    sel = np.isin(m.language, langs)
    extra = multilingual.honest_training(clf)
    texts = np.r_[m.texts[sel], extra.texts]
    y_text = np.r_[m.y[sel], np.zeros(len(extra.texts), int)]
    n_sel = int(sel.sum())
    states, starts, lengths, owner = window_states(clf, texts, f"maide-{'-'.join(langs)}+honest", args.trunk)
    win = Windows(states, starts, lengths)
    heads.log(f"{len(texts)} texts, {len(lengths)} windows, {len(states)} tokens")
    y_win = y_text[owner].astype(np.float32)
    maide_idx = np.where(sel)[0]                      # row in MAiDE-up of each selected text
    fold_of = np.zeros(len(m.y), int)
    for k, (_, te) in enumerate(GroupKFold(multilingual.FOLDS).split(m.texts, m.y, m.hotel)):
        fold_of[te] = k
    text_fold = np.r_[fold_of[maide_idx], np.full(len(extra.texts), -1)]
    oof = np.full(len(m.y), np.nan)
    # the served generated head's and the baseline's out-of-fold scores (models.multilingual evaluate)
    version = runtime.read_config(runtime.default_model_dir())["version"]
    saved = np.load(common.CACHE / f"features-{version}" / "maide-up-oof.npz")
    if Path(args.out).exists():
        prev = np.load(args.out)
        oof = np.where(np.isnan(prev["branch"]), oof, prev["branch"])
    report = {}
    for k in map(int, args.folds.split(",")):
        t0 = time.time()
        tr = np.where(text_fold[owner] != k)[0]
        te = np.where(text_fold[owner] == k)[0]
        model = train(win, tr, y_win, args, log_tag=f"fold {k}: ")
        z = score(model, win, te, owner, len(texts))
        done = text_fold == k
        oof[maide_idx[done[:n_sel]]] = z[:n_sel][done[:n_sel]]
        np.savez(args.out, branch=oof)
        rows = {}
        for lang in langs:
            r = maide_idx[(m.language[maide_idx] == lang) & (fold_of[maide_idx] == k)]
            yy = m.y[r]
            rows[lang] = {name: {"accuracy": round(float(((p >= 0.5) == yy).mean()), 4),
                                 "roc_auc": round(metrics.roc_auc(yy, p), 4)}
                          for name, p in (("branch", 1 / (1 + np.exp(-oof[r]))), ("generated_head", saved["generated"][r]),
                                          ("baseline", saved["baseline"][r]))}
        report[k] = rows
        heads.log(f"fold {k} ({time.time() - t0:.0f} s): {json.dumps(rows)}")
    report["stacked_with_head"] = stacked(m, oof, saved, langs)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
