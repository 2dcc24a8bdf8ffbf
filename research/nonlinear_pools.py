"""Probe (issue #22): does a non-linear head on the frozen pools beat the linear one?

The ``generated`` head of 2.0.1 reads the standardised pools of the embedding output and layers 1-6
(2,688 numbers a review, what ``encoder-first.onnx`` computes anyway) with a logistic regression
(C 0.05), stacked with a char TF-IDF LR. This probe replaces only that LR by a one-hidden-layer MLP
(256 units, alpha 1e-2, early stopping on 10% of the training rows, seed 0), settings fixed before
any fold was scored, and compares both out of fold on MAiDE-up's 5 hotel-grouped folds of
``models.multilingual`` (the honest rows from other sources always in training, as for the head),
beside the saved 2.0.1 head and baseline out-of-fold scores. ~4 min on 2 cores (features cached).

    python -m research.nonlinear_pools
"""
from __future__ import annotations

import json
import time

import numpy as np

from models import common, multilingual as mm
from pipeline.classifier import runtime


def main() -> int:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler
    common.seed_everything()
    clf = runtime.load(common.CACHE / "stage-2.0.1", threads=2)
    m = mm.maide()
    E = mm.features(clf, "maide-up", m.texts)
    extra = mm.honest_training(clf)
    saved = np.load(common.CACHE / "features-2.0.1" / "maide-up-oof.npz")
    linear, mlp = np.zeros(len(m.y)), np.zeros(len(m.y))
    t0 = time.perf_counter()
    for k, (tr, te) in enumerate(GroupKFold(mm.FOLDS).split(m.texts, m.y, m.hotel)):
        X, y = np.vstack([E[tr], extra.E]), np.r_[m.y[tr], np.zeros(len(extra.texts), int)]
        sc = StandardScaler().fit(X)
        A, B = sc.transform(X), sc.transform(E[te])
        linear[te] = LogisticRegression(C=mm.C_EMB, max_iter=5000).fit(A, y).decision_function(B)
        net = MLPClassifier(hidden_layer_sizes=(256,), alpha=1e-2, early_stopping=True, max_iter=200,
                            random_state=0).fit(A, y)
        p = np.clip(net.predict_proba(B)[:, 1], 1e-7, 1 - 1e-7)
        mlp[te] = np.log(p / (1 - p))
        print(f"fold {k}: {time.perf_counter() - t0:.0f} s", flush=True)
    report = {}
    for lang in mm.SERVED:
        s = m.language == lang
        y = m.y[s]
        report[lang] = {name: [round(float(((q > thr) == y).mean()), 4), round(float(roc_auc_score(y, q)), 4)]
                        for name, q, thr in (("pools_lr", linear[s], 0.0), ("pools_mlp", mlp[s], 0.0),
                                             ("head_2.0.1", saved["generated"][s], 0.5),
                                             ("baseline", saved["baseline"][s], 0.5))}
    print(json.dumps({"accuracy_roc_auc": report}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
