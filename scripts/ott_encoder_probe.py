"""Probe for the Ott target (hotel-grouped accuracy >= 0.90, issue #4): an encoder fine-tuned on Ott
alone, from the base MiniLM, fused with lexical and frozen-feature scores. Not part of `make train`:
its figures decide the next classifier version's design (models/README.md, "What was tried").

For each of the four hotel folds (`models.common.ott_hotel_folds`) an encoder is fine-tuned on the
other 12 hotels (`python -m models.finetune ott --from-base --replay 0 --holdout-fold K`, 3 epochs,
lr 5e-5, len 256 unless `--max-len`, the project seed unless `--seed`; the last epoch is used, fixed
in advance) and then scores only its held-out hotels. Printed (one JSON object), all out-of-fold over
the same folds:

* ``lexical``: LR over the served lexical set (word 1-2-grams with punctuation + char 1-4-grams);
* ``finetuned``: the fold encoder's own classification logit;
* ``base_frozen``: LR over the base encoder's mean-pooled hidden states of all 7 layers (frozen);
* sums of those scores, each divided by its standard deviation over the held-out rows (label-free);
* ``fake_reviews_test_with_fold0_encoder``: fake-reviews test accuracy / ROC-AUC of an LR head over
  the fold-0 Ott encoder's frozen all-layer features + the lexical set, fitted on fake-reviews dev
  train rows (can one Ott-tuned encoder also serve the computer-generated detector?).

    python scripts/ott_encoder_probe.py [--train] [--checkpoints DIR] [--threads N] [--jobs N] [--seed S] [--max-len L]
                                        [--chunk N [--chunk-overlap K]]

With ``--chunk N`` the fold encoders are fine-tuned on N-token windows covering each whole review
(``models.finetune ott --chunk N``: every window a training example) and ``finetuned`` is the mean
logit over a review's windows (session 5: N = 128, K = 32).

CPU cost: fine-tuning ~12 min per fold on one core (``--train``, ``--jobs`` folds at a time), then
~10 min of scoring. Nothing is written into the repository.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models import common, encoder, finetune, train  # noqa: E402

LEXICAL = "word12p+char14"


def chunked_logit(model_dir, texts, chunk: int, overlap: int, batch_size=32):
    """The fine-tuned classification logit averaged over token windows covering each whole text
    (``finetune.chunk_tokens``: the windows it was trained on)."""
    import torch
    model = finetune.Classifier.build(str(model_dir))
    model.head.load_state_dict(torch.load(Path(model_dir) / "head.pt"))
    model.eval()
    tok = encoder.load_tokenizer(str(model_dir))
    ids, am, owner = finetune.chunk_tokens(tok, texts, chunk, overlap)
    total, count = np.zeros(len(texts)), np.zeros(len(texts))
    order = np.argsort([len(x) for x in ids])
    with torch.inference_mode():
        for s in range(0, len(ids), batch_size):
            idx = order[s:s + batch_size]
            f = tok.pad({"input_ids": [ids[i] for i in idx], "attention_mask": [am[i] for i in idx]},
                        return_tensors="pt")
            logits = model(f["input_ids"], f["attention_mask"])
            for i, v in zip(idx, (logits[:, 1] - logits[:, 0]).tolist()):
                total[owner[i]] += v
                count[owner[i]] += 1
    return total / count


def fold_accuracies(z, y, folds):
    """Accuracy of the decision ``z >= 0`` within each fold, in fold order."""
    return [float(((z[folds == k] >= 0) == y[folds == k]).mean()) for k in np.unique(folds)]


def pooled_layers(model_dir, texts, with_logit: bool, batch_size=32, max_len=256):
    """Mean-pooled hidden states of every layer (7 × 384) [+ the classification logit] per text."""
    import torch
    model = finetune.Classifier.build(str(model_dir) if model_dir else None)
    if with_logit:
        model.head.load_state_dict(torch.load(Path(model_dir) / "head.pt"))
    model.eval()
    tok = encoder.load_tokenizer(str(model_dir) if model_dir else None)
    out = [None] * len(texts)
    order = np.argsort([len(t) for t in texts])
    with torch.inference_mode():
        for s in range(0, len(texts), batch_size):
            idx = order[s:s + batch_size]
            f = tok([texts[i] for i in idx], truncation=True, max_length=max_len, padding=True, return_tensors="pt")
            hs = model.encoder(input_ids=f["input_ids"], attention_mask=f["attention_mask"],
                               output_hidden_states=True).hidden_states
            mask = f["attention_mask"].unsqueeze(-1).float()
            pools = [(h * mask).sum(1) / mask.sum(1) for h in hs]
            if with_logit:
                logits = model.head(pools[-1])
                pools.append((logits[:, 1] - logits[:, 0]).unsqueeze(1))
            arr = torch.cat(pools, 1).numpy()
            for j, i in enumerate(idx):
                out[i] = arr[j]
    return np.stack(out)


def lexical_score(train_texts, y, test_texts):
    """The served lexical set alone (``train.fit_lexical``, C = 10), scored as the runtime scores it."""
    head = train.fuse(train.fit_lexical(train_texts, y, LEXICAL), None, 0.0)
    return train.decision(head, np.zeros((len(test_texts), 384)), test_texts)


def embedding_score(Etr, y, Ete, C=0.01):
    """LR over standardised dense features alone (``train.fit_concat`` without lexical blocks)."""
    return train.decision(train.fit_concat([], Etr, y, None, 1.0, C=C), Ete, [""] * len(Ete))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoints", help="holds fold{0..3}/epoch2 (made by --train); default "
                    ".cache/classifier/ott-from-base, with -seedN / -lenN appended for a non-default --seed / --max-len")
    ap.add_argument("--train", action="store_true", help="fine-tune the four fold encoders first")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=common.SEED, help="fine-tuning seed (dropout, batch order)")
    ap.add_argument("--max-len", type=int, default=256, help="tokens, in fine-tuning and in scoring")
    ap.add_argument("--chunk", type=int, default=0,
                    help="fine-tune on windows of this many tokens covering each whole review and score the "
                         "mean logit over a review's windows (0: one window truncated at --max-len)")
    ap.add_argument("--chunk-overlap", type=int, default=32)
    ap.add_argument("--base-dir", help="fine-tune this encoder (transformers directory with its tokenizer, e.g. "
                    "scripts/e5_convert.py's output) instead of MiniLM; base_frozen stays MiniLM's")
    ap.add_argument("--ott-only", action="store_true", help="skip the fake-reviews test part")
    ap.add_argument("--freeze-embeddings", action="store_true", help="fine-tune with the word embeddings frozen")
    args = ap.parse_args(argv)
    suffix = ((f"-seed{args.seed}" if args.seed != common.SEED else "")
              + (f"-len{args.max_len}" if args.max_len != 256 else "")
              + (f"-chunk{args.chunk}o{args.chunk_overlap}" if args.chunk else "")
              + (f"-{Path(args.base_dir).name}" if args.base_dir else "")
              + ("-frozenemb" if args.freeze_embeddings else ""))
    import torch
    torch.set_num_threads(max(1, args.threads * args.jobs))
    ck = Path(args.checkpoints or common.CACHE / f"ott-from-base{suffix}")
    if args.train:  # resumable: folds already trained are kept
        start = ["--from-base", "--replay", "0", "--seed", args.seed, "--max-len", args.max_len]
        if args.chunk:
            start += ["--chunk", args.chunk, "--chunk-overlap", args.chunk_overlap]
        if args.base_dir:
            start += ["--base-dir", Path(args.base_dir).resolve()]
        if args.freeze_embeddings:
            start += ["--freeze-embeddings"]
        train.train_ott_folds(ck, start, 3, 5e-5, args.threads, args.jobs)
    missing = [k for k in range(4) if not (ck / f"fold{k}" / "epoch2" / "head.pt").exists()]
    if missing:
        sys.exit(f"no fold encoder for folds {missing} under {ck}: run with --train (~25 min with 2 jobs)")

    ot = common.ott()
    T = [r["text"] for r in ot]
    y = np.array([r["y"] for r in ot])
    folds = np.array(common.ott_hotel_folds(ot))
    z = {name: np.zeros(len(ot)) for name in ("lexical", "finetuned", "base_frozen")}
    base = pooled_layers(None, T, with_logit=False, max_len=args.max_len)
    for k in range(4):
        tr, te = np.where(folds != k)[0], np.where(folds == k)[0]
        z["lexical"][te] = lexical_score([T[i] for i in tr], y[tr], [T[i] for i in te])
        if args.chunk:
            z["finetuned"][te] = chunked_logit(ck / f"fold{k}" / "epoch2", [T[i] for i in te], args.chunk,
                                               args.chunk_overlap)
        else:
            z["finetuned"][te] = pooled_layers(ck / f"fold{k}" / "epoch2", [T[i] for i in te], with_logit=True,
                                                max_len=args.max_len)[:, -1]
        z["base_frozen"][te] = embedding_score(base[tr], y[tr], base[te])
        print(f"fold {k} scored", file=sys.stderr, flush=True)
    std = {n: v / v.std() for n, v in z.items()}
    combos = {**{n: z[n] for n in z},
              "lexical+finetuned": std["lexical"] + std["finetuned"],
              "lexical+base_frozen": std["lexical"] + std["base_frozen"],
              "lexical+base_frozen+finetuned": std["lexical"] + std["base_frozen"] + std["finetuned"]}
    report = {"ott_hotel_grouped_cv": {}}
    for name, s in combos.items():
        acc = fold_accuracies(s, y, folds)
        report["ott_hotel_grouped_cv"][name] = {"accuracy": round(float(np.mean(acc)), 4),
                                                "fold_accuracy": [round(a, 4) for a in acc]}
    if args.ott_only:
        print(json.dumps(report))
        return
    from sklearn.metrics import roc_auc_score
    fr = common.fake_reviews()
    Tf, yf = [r["text"] for r in fr], np.array([r["y"] for r in fr])
    tr, va = finetune.dev_split(fr)
    te = [i for i, r in enumerate(fr) if r["split"] == "test"]
    F = pooled_layers(ck / "fold0" / "epoch2", [Tf[i] for i in tr + te], with_logit=False, max_len=args.max_len)
    Ftr, Fte = F[:len(tr)], F[len(tr):]
    zl = lexical_score([Tf[i] for i in tr], yf[tr], [Tf[i] for i in te])
    ze = embedding_score(Ftr, yf[tr], Fte)
    zs = zl / zl.std() + ze / ze.std()
    report["fake_reviews_test_with_fold0_encoder"] = {
        name: {"accuracy": round(float(((s >= 0) == yf[te]).mean()), 4), "roc_auc": round(float(roc_auc_score(yf[te], s)), 4)}
        for name, s in (("lexical", zl), ("frozen_all_layers", ze), ("lexical+frozen_all_layers", zs))}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
