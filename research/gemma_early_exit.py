"""Probe (issue #22/#23, session 25): an early exit on Gemma after layer 6, where it cannot move the band.

2.3.0 runs Gemma's layers 1–12 for every review the lexical cascade does not skip (~60 ms a short
product review with 8-bit weights). Heads of 2.3.0's recipe on layer 6's pools alone lose 0.5–1
point (research/gemma_layers.py). An early exit would run layers 1–6, score the review with the
layer-6 heads, and run layers 7–12 (and the 2.3.0 heads) only where the layer-6 probability is near a
threshold. This measures, per set, both served probabilities out of fold (the same folds and rows as
`models.multilingual_kinds`): MAiDE-up (5 hotel-grouped folds, every head refitted per fold), fake-
reviews test (heads fitted on every training row), Ott (4 hotel-grouped folds, the Ott head refitted),
NSMC odd-numbered movies; then for logit margins ``m`` the share of reviews that would exit (layer-6
logit more than ``m`` from both thresholds' logits) and how many of those change band against the
layer-12 probability.

The margin is to be chosen on MAiDE-up alone (the smallest with no more than 0.5% band changes among
its exits); the other sets are the held-out check.

    python -m research.gemma_early_exit      # ~30 min on 2 cores with cached pools
"""
import json

import numpy as np

from models import common, heads, multilingual as mm, multilingual_kinds as mk

MARGINS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
CACHE = common.CACHE / "gemma-early-exit-probe.npz"


def probabilities(layers) -> dict:
    s = mk.sliced_sets(layers)
    k = mk.Kinds(s)
    cv = mk.cross_validated(k)
    m, extra = s.m, cv["extra"]
    generated = mm.fit_generated(np.r_[m.texts, extra.texts], np.vstack([s.G_m, extra.E]),
                                 np.r_[m.y, np.zeros(len(extra.texts), int)], np.r_[m.hotel, extra.groups])
    english = mk.english_spec(*k.fit(np.where(k.real_latin)[0], np.ones(len(k.ott_all[2]), bool)))
    fr_T = np.array([r["text"] for r in s.fr], dtype=object)
    test = np.array([r["split"] == "test" for r in s.fr])
    ev = s.ns_movie % 2 == 1
    return {"maide": cv["served"], "fake_reviews_test": mk.served(english, generated, fr_T[test], s.G_fr[test]),
            "ott": mk.ott_cv(k, english["always"], generated)["p"],
            "nsmc_odd": mk.served(english, generated, s.ns_t[ev], s.G_ns[ev])}


def logit(p):
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def main() -> int:
    if CACHE.exists():
        z = np.load(CACHE)
        p6 = {k[3:]: z[k] for k in z.files if k.startswith("p6_")}
        p12 = {k[4:]: z[k] for k in z.files if k.startswith("p12_")}
    else:
        p6, p12 = probabilities((6,)), probabilities((6, 12))
        np.savez(CACHE, **{f"p6_{k}": v for k, v in p6.items()}, **{f"p12_{k}": v for k, v in p12.items()})
    t = mk.mg_thresholds()
    cuts = sorted(t.values())
    bands = lambda p: np.searchsorted(cuts, p, side="right")   # noqa: E731
    out = {}
    for name in p6:
        a, b = p6[name], p12[name]
        dist = np.min([np.abs(logit(a) - logit(c)) for c in cuts], axis=0)
        row = {"n": int(len(a)), "band_agreement_all": round(float((bands(a) == bands(b)).mean()), 4)}
        for mg in MARGINS:
            ex = dist > mg
            row[f"m{mg}"] = {"exit_share": round(float(ex.mean()), 4),
                             "band_changes": int((bands(a)[ex] != bands(b)[ex]).sum())}
        out[name] = row
        heads.log(f"{name}: {json.dumps(row)}")
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
