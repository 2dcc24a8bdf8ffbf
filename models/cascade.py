"""The cascade (issue #23): where the encoder cannot move a review's band, skip it.

Every detector is a linear logit over TF-IDF n-grams (the *n-gram part*, cheap) plus the encoder's
pools (the *encoder part*, ~11 ms a review on one core). A Latin-script review whose hotel gate stays
closed meets two detectors (1.3.0's ``always`` and ``generated``); a review in another script meets
``generated`` alone. A worst-case bound (the encoder part's maximum over training rows, what 2.0.0
first shipped for Korean and Chinese) skips 71% of ordinary Korean reviews and almost no English:
the ``always`` encoder part spans 6.5 logits and its calibration multiplies it by 2.85. But the encoder
part follows the n-gram part (correlation 0.9 for ``always`` on fake-reviews), so it is bounded
*given* the text: a least-squares fit of each encoder part on ``runtime.cascade_inputs`` (the n-gram
logits, log of the length, 1) plus a quantile ``q`` of the fit's residuals over the fitting rows. A
review is skipped when every detector's bounded probability stays under ``lower``; the probability
reported is the largest point estimate (the fit without the bound), under ``lower`` too, so the
band is ``below_lower`` either way.

This bound is empirical: a review whose encoder part exceeds its estimate by more than the ``q``
residual quantile *and* whose exact score would reach ``lower`` changes band. ``q`` is chosen before
any held-out set is scored: the smallest of ``QUANTILES`` with no band change in 5 grouped folds over
the fitting rows. English: fitted on fake-reviews-8k train + dev and MAiDE-up English; the test split,
Ott and MAiDE-up's other Latin-script languages give the figures. Other scripts: fitted on MAiDE-up
Korean and Chinese and the NSMC sample (reviews the length rule lets the classifier speak for),
grouped by hotel and movie; the grouped folds give the figures.

    python -m models.cascade [--version 2.0.1]    (after models.multilingual train, from its cached features;
                                                  make train-multilingual runs both; ~3 min)
"""
from __future__ import annotations

import argparse
import json
from typing import Dict, List, Sequence

import numpy as np

from models import common, heads, multilingual
from pipeline.classifier import integrity, runtime

QUANTILES = (0.99, 0.995, 0.999, 1.0)
FOLDS = 5
FEATURES = {"english": ["always_ngram_logit", "generated_ngram_logit", "log1p_words", "1"],
            "other_scripts": ["generated_ngram_logit", "log1p_letters_and_digits", "1"]}


def encoder_part(detector: runtime.Head, X: np.ndarray) -> np.ndarray:
    return ((X[:, detector.columns] - detector.mean) / detector.scale) @ detector.coef


class Parts:
    """What the cascade needs of some texts of one script group: design rows, n-gram parts, encoder
    parts and whether the exact probability reaches ``lower``."""

    def __init__(self, spec: dict, texts: Sequence[str], X: np.ndarray, latin: bool, lower: float):
        self.head = runtime.make_head(spec)
        self.texts, self.lower = list(texts), lower
        self.gate = self.head.english.gate_open(None, self.texts) if latin else np.zeros(len(self.texts), bool)
        self.F, self.lex = runtime.cascade_inputs(self.head, self.texts, latin)
        self.detectors = {name: self.head.english.always if name == "always" else self.head.generated
                          for name in self.lex}
        self.enc = {name: encoder_part(d, X) for name, d in self.detectors.items()}
        exact = np.max([d.probability(X, self.texts) for d in self.detectors.values()], axis=0)
        self.reaches_lower = exact >= lower   # the exact probability (gate closed) of this path

    def fit(self, rows, q: float) -> dict:
        out = {}
        for name, e in self.enc.items():
            coef = np.linalg.lstsq(self.F[rows], e[rows], rcond=None)[0]
            out[name] = {"coef": [float(c) for c in coef], "bound": float(np.quantile(e[rows] - self.F[rows] @ coef, q))}
        return {"detectors": out}

    def skipped(self, fit: dict, rows=slice(None)) -> np.ndarray:
        lex = {k: v[rows] for k, v in self.lex.items()}
        return runtime.cascade_rule(fit, self.head, self.F[rows], lex, self.lower)[0] & ~self.gate[rows]

    def report(self, fit: dict, sel=None) -> dict:
        sel = np.ones(len(self.texts), dtype=bool) if sel is None else sel
        skip = self.skipped(fit)[sel]
        return {"n": int(sel.sum()), "skipped": round(float(skip.mean()), 4),
                "gate_open": round(float(self.gate[sel].mean()), 4),
                "band_changes": int((skip & self.reaches_lower[sel]).sum())}


def choose_quantile(parts: Parts, groups: np.ndarray) -> Dict[str, dict]:
    """Per quantile: band changes and skipped share over 5 grouped folds (fit on 4, count on 1)."""
    from sklearn.model_selection import GroupKFold
    cv = {}
    for q in QUANTILES:
        moved, skipped = 0, 0
        for tr, te in GroupKFold(FOLDS).split(parts.F, groups=groups):
            skip = parts.skipped(parts.fit(tr, q), te)
            moved += int((skip & parts.reaches_lower[te]).sum())
            skipped += int(skip.sum())
        cv[str(q)] = {"band_changes": moved, "skipped": round(skipped / len(groups), 4)}
    return cv


def fitted(parts: Parts, groups: np.ndarray, applies_to: str, fitted_on: str, latin: bool) -> dict:
    cv = choose_quantile(parts, groups)
    q = min((float(k) for k, v in cv.items() if v["band_changes"] == 0), default=1.0)
    return {"applies_to": applies_to, "features": FEATURES["english" if latin else "other_scripts"], "quantile": q,
            **parts.fit(slice(None), q), "fitted_on": fitted_on,
            "rule": "estimate = n-gram logit + features @ coef per detector; skip the encoder where every "
                    "calibrated (estimate + bound) < lower; report the largest calibrated estimate",
            "figures": {"fit_rows_grouped_cv": cv}}


class Data:
    """The cached encoder-first pools (models.multilingual) of every set the cascade reads."""

    def __init__(self, version: str, cfg: dict = None):
        gemma_head = bool((cfg or {}).get("generated_encoder"))
        if gemma_head and cfg.get("encoder", {}) is None:
            # 2.2.0 on: every head reads Gemma's pools alone (columns from 0)
            from models import multilingual_kinds
            s = multilingual_kinds.sliced_sets(cfg["generated_encoder"]["pooled_layers"])
            self.fr, self.m, self.ott = s.fr, s.m, s.ott
            self.ns_t, self.ns_movie = s.ns_t, s.ns_movie
            self.fr_E, self.M, self.N, self.ott_E = s.G_fr, s.G_m, s.G_ns, s.G_ott
            return
        if gemma_head:
            # 2.1.0: e5 is 2.0.1's (its released artifact computes the pools); Gemma's pools follow
            from models import multilingual_gemma
            clf = runtime.load(multilingual_gemma.base_dir())
        else:
            # the scratch artifact models.multilingual train staged for this version (its encoder; 1.3.0's head)
            stage = common.CACHE / f"stage-{multilingual.release_of(version)}"
            staged = json.loads((stage / "config.json").read_text())
            if staged["version"] != multilingual.stage_version(version):
                raise SystemExit(f"{stage} holds {staged['version']}: run `python -m models.multilingual evaluate "
                                 f"--version {version}` first (it stages the encoder)")
            integrity.seal(stage, pin=False)
            clf = runtime.load(stage)
        self.fr = common.fake_reviews()
        self.fr_E = multilingual.features(clf, "fake-reviews", np.array([r["text"] for r in self.fr], dtype=object))
        self.m = multilingual.maide()
        self.M = multilingual.features(clf, "maide-up", self.m.texts)
        self.ns_t, self.ns_movie, _ = multilingual.nsmc_sample()
        self.N = multilingual.features(clf, "nsmc-sample", self.ns_t)
        self.ott = common.ott()
        self.ott_E = multilingual.features(clf, "ott", np.array([r["text"] for r in self.ott], dtype=object))
        if gemma_head:   # the runtime's columns: e5's (first + rest; the cascade reads first only), then Gemma's
            s = multilingual_gemma.Sets()
            pad = np.zeros((1, clf.e5_width - self.M.shape[1]), dtype=np.float32)
            self.fr_E, self.M, self.N, self.ott_E = (
                np.hstack([E, np.repeat(pad, len(E), 0), G])
                for E, G in ((self.fr_E, s.G_fr), (self.M, s.G_m), (self.N, s.G_ns), (self.ott_E, s.G_ott)))


def english_spec(spec: dict, lower: float, d: Data) -> dict:
    fit_rows = [i for i, r in enumerate(d.fr) if r["split"] != "test"]
    en = np.where(d.m.language == "en")[0]
    parts = Parts(spec, [d.fr[i]["text"] for i in fit_rows] + list(d.m.texts[en]),
                  np.vstack([d.fr_E[fit_rows], d.M[en]]), True, lower)
    out = fitted(parts, np.r_[[f"fake-reviews-{i % 7}" for i in fit_rows], d.m.hotel[en]],
                 "Latin-script texts whose hotel gate is closed (they meet `always` and `generated`)",
                 "fake-reviews-8k train+dev, MAiDE-up en (cached encoder-first pools)", True)
    test = [i for i, r in enumerate(d.fr) if r["split"] == "test"]
    te = Parts(spec, [d.fr[i]["text"] for i in test], d.fr_E[test], True, lower)
    y_te = np.array([d.fr[i]["y"] for i in test])
    out["figures"]["fake_reviews_test"] = {**te.report(out), "honest_OR": te.report(out, y_te == 0)}
    out["figures"]["maide_up_other_languages"] = other_languages(spec, d, out, lower, latin=True)
    out["figures"]["ott"] = Parts(spec, [r["text"] for r in d.ott], d.ott_E, True, lower).report(out)
    return out


def other_scripts_spec(spec: dict, cfg: dict, d: Data) -> dict:
    """Korean and Chinese: MAiDE-up ko/zh and the NSMC sample, where the length rule lets the classifier speak."""
    lower = float(cfg["thresholds"]["lower"])
    sel = np.isin(d.m.language, ["ko", "zh"])
    texts = list(d.m.texts[sel]) + list(d.ns_t)
    langs = list(d.m.language[sel]) + ["ko"] * len(d.ns_t)
    groups = np.r_[d.m.hotel[sel], [f"nsmc-{x}" for x in d.ns_movie]]
    source = np.r_[["maide-up"] * int(sel.sum()), ["nsmc"] * len(d.ns_t)]
    ok = np.array([runtime.not_applicable_reason(t, lang, cfg["languages"], cfg["min_length"]) is None
                   for t, lang in zip(texts, langs)])
    parts = Parts(spec, [t for t, o in zip(texts, ok) if o], np.vstack([d.M[sel], d.N])[ok], False, lower)
    out = fitted(parts, groups[ok], "texts not in Latin script (they meet `generated` alone)",
                 "MAiDE-up ko+zh, NSMC sample (cached encoder-first pools)", False)
    cv_skip = np.zeros(int(ok.sum()), dtype=bool)   # out-of-fold skips at the chosen quantile, per source
    from sklearn.model_selection import GroupKFold
    for tr, te in GroupKFold(FOLDS).split(parts.F, groups=groups[ok]):
        cv_skip[te] = parts.skipped(parts.fit(tr, out["quantile"]), te)
    out["figures"]["skipped_by_source_grouped_cv"] = {
        s: round(float(cv_skip[source[ok] == s].mean()), 4) for s in ("maide-up", "nsmc")}
    out["figures"]["maide_up_other_languages"] = other_languages(spec, d, out, lower, latin=False)
    return out


def other_languages(spec: dict, d: Data, fit: dict, lower: float, latin: bool) -> dict:
    """Per MAiDE-up language outside the fitting rows, the texts of this script group: what the rule does there."""
    out = {}
    for lang in ("de", "es", "fr", "it", "ro", "ru", "tr"):
        rows = [i for i in np.where(d.m.language == lang)[0] if runtime.latin_script(d.m.texts[i]) == latin]
        if len(rows) >= 100:
            out[lang] = Parts(spec, list(d.m.texts[rows]), d.M[rows], latin, lower).report(fit)
    return out


def main(argv: List[str] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--version", default="2.0.1")
    args = ap.parse_args(argv)
    write(common.ARTIFACTS / heads.NAME / args.version)
    return 0


def write(art) -> dict:
    """(Re)computes the artifact's ``cascade`` in its config.json from the cached features."""
    spec = runtime.read_head_spec(art / "head.json.xz")
    cfg = json.loads((art / "config.json").read_text())
    d = Data(cfg["version"], cfg)
    cfg["cascade"] = runtime.rounded({"english": english_spec(spec, float(cfg["thresholds"]["lower"]), d),
                                      "other_scripts": other_scripts_spec(spec, cfg, d)}, 7)
    (art / "config.json").write_text(json.dumps(cfg, indent=1))
    integrity.seal(art)
    from models import card
    card.write(art)
    print(json.dumps({k: v["figures"] | {"quantile": v["quantile"]} for k, v in cfg["cascade"].items()}, indent=1))
    return cfg["cascade"]


if __name__ == "__main__":
    raise SystemExit(main())
