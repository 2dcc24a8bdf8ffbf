"""Probe (issue #22/#23, session 24): how much do the heads lose reading only Gemma's early layers?

A full Gemma 3 270M pass (18 layers) is ~115 ms a short review on this 2-core CPU, near its float32
peak; 2.2.0 therefore serves English at ~11/s. An early exit (1.2.0 did it on e5) would run layers
1–6 or 1–12 for every review and the rest only where it could change the band; its cost is roughly
proportional to the layers run. This measures the heads of 2.2.0's recipe reading the pools of layer 6
alone and of layers 6 and 12 (the first 640 / 1,280 of the 1,920 cached numbers), beside all three:

* the generated head, MAiDE-up en/ko/zh out of fold (5 hotel-grouped folds, 2.0.1's extra honest rows;
  all three layers: the scores `models.multilingual_gemma evaluate` saved);
* the product head (fake-reviews dev + MAiDE-up real Latin reviews), fake-reviews test.

    python -m research.gemma_layers     # ~10 min on 2 cores with cached pools
"""
import json

import numpy as np
from sklearn.metrics import roc_auc_score

from models import common, multilingual as mm, multilingual_gemma as mg, multilingual_kinds as mk

SUBSETS = {"layer 6": 640, "layers 6, 12": 1280, "layers 6, 12, 18": 1920}


def main() -> int:
    s = mg.Sets()
    k = mk.Kinds(s)
    extra = s.honest_training()
    test = np.array([r["split"] == "test" for r in s.fr])
    y_te = np.array([r["y"] for r in s.fr])[test]
    T_te = np.array([r["text"] for r in s.fr], dtype=object)[test]
    real = k.real(np.where(k.real_latin)[0])
    out = {}
    for name, width in SUBSETS.items():
        row = {}
        cut = lambda part: (part[0], part[1][:, :width], part[2], part[3])   # noqa: E731
        spec = mk.fit_parts([cut(k.product), cut(real)])
        p = mm.served_generated(spec, s.G_fr[test][:, :width], T_te)
        row["product_head_fake_reviews_test"] = {"accuracy": round(float(((p >= 0.5) == y_te).mean()), 4),
                                                 "roc_auc": round(float(roc_auc_score(y_te, p)), 4)}
        cv = {"model": np.load(common.CACHE / "gemma-maide-up-oof.npz")["generated"]} if width == 1920 else \
            mm.cross_validate(s.m, s.G_m[:, :width], mm.Honest(extra.texts, extra.E[:, :width], extra.groups))
        for lang in ("en", "ko", "zh"):
            sel = s.m.language == lang
            row[f"generated_{lang}"] = {"accuracy": round(float(((cv["model"][sel] >= 0.5) == s.m.y[sel]).mean()), 4),
                                        "roc_auc": round(float(roc_auc_score(s.m.y[sel], cv["model"][sel])), 4)}
        out[name] = row
        print(json.dumps({name: row}), flush=True)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
