"""Classifier 2.2.0 (issue #22): one Gemma 3 270M pass feeding a head per kind of fake; no e5.

2.1.0 kept 1.3.0's English detectors (e5 fine-tuned on Ott) beside the Gemma ``generated`` head; on
real English hotel reviews they cost 2.3 points of accuracy and 3.5 of FPR, and Spanish and French
4–5 points (research/classifier-log.md, session 23). Session 24's probe (``research.gemma_per_kind``)
replaced them by heads on the same Gemma pools, each the ``generated`` recipe
(:func:`models.multilingual.fit_generated`: char 1–4 TF-IDF LR, pools LR, inner grouped stacker):

* ``always`` (computer-generated product reviews): fake-reviews-8k dev (CG 1, OR 0), groups row mod 7;
* ``gated`` (deceptive hotel reviews written by people): Ott, grouped by hotel;
* ``generated`` (LLM-written reviews, every served language): 2.1.0's head, the same rows and recipe.

Fitted on its own set only, the product head flagged 9.4% of real English hotel reviews (it had
never seen one); so both older-kind heads also train on **honest reviews of the other domains**:
MAiDE-up's real Latin-script reviews (in cross-validation only the training hotels', so MAiDE-up
stays out of fold) and, for the Ott head, fake-reviews dev ``OR``. That rule was fixed after the
first probe and before any figure below was read. Combination, thresholds (2.0.1's) and the hotel
gate (2.0.1's lexical gate) are 2.0.1's: Latin-script text gets max(always, gated where the gate is
open, generated); other scripts ``generated`` alone.

Figures, all out of fold: MAiDE-up in the 5 hotel-grouped folds (every head refitted per fold), Ott in
its 4 hotel-grouped folds (the Ott head refitted per fold; the other two never saw Ott), fake-reviews
test (never in training), NSMC odd-numbered movies.

    python -m models.multilingual_kinds evaluate [--version 2.3.0]   # the tables (JSON), nothing written (~12 min)
    python -m models.multilingual_kinds train [--version 2.3.0]      # the artifact, then models.cascade --version ...

2.3.0 (``--version 2.3.0``) is the same recipe on the pools of layers 6 and 12 only, served with 8-bit
weights: the Gemma pass stops after layer 12.

2.4.0 (``--version 2.4.0``, the Makefile's) adds an early exit (:class:`EarlyExit`): a second set of the
same heads on layer 6's pools alone scores every review after layer 6, and layers 7–12 and 2.3.0's heads
run only where that probability is within a logit margin of a threshold (the margin chosen on MAiDE-up
out of fold); its 8-bit pass uses blocks of 128 after SmoothQuant factors (:func:`smoothing`). Every
figure is of that served combination, each part out of fold as above.
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

from models import common, heads, metrics, multilingual as mm, multilingual_gemma as mg
from pipeline.classifier import gemma, integrity, runtime

VERSION = "2.2.0"   # --version default; the Makefile builds KINDS_VERSION (2.4.0)
# version -> (pooled Gemma layers, weights of the served pass). 2.3.0 is 2.2.0's recipe on layers 6 and 12
# only (the pass stops after layer 12: two thirds of the cost) served with 8-bit weights; research/
# gemma_layers.py measured the heads on those pools within ±0.1 point of all three layers'
VERSIONS = {"2.2.0": ((6, 12, 18), "float32"), "2.3.0": ((6, 12), "int8"), "2.4.0": ((6, 12), "int8")}
# 2.4.0: 2.3.0's heads and a second set of heads of the same recipe on layer 6's pools alone; the pass
# stops after layer 6 where those heads' probability is further than the margin (in logits) from both
# thresholds. The margin is the smallest of EXIT_MARGINS whose exits change no more than EXIT_BAND_CHANGES
# of their bands against the full heads, out of fold on MAiDE-up (fixed before any figure was read,
# research/gemma_early_exit.py); the other sets are the check. Its 8-bit pass uses blocks of 128 after
# SmoothQuant factors from CALIBRATION texts (pipeline/classifier/gemma.py)
EARLY_EXIT = {"2.4.0": 6}
EXIT_MARGINS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
EXIT_BAND_CHANGES = 0.005
SMOOTHED_INT8 = {"2.4.0": 128}
CALIBRATION = 48   # texts from each of MAiDE-up, fake-reviews dev, NSMC even-numbered movies and Ott
LATIN = ("en", "de", "es", "fr", "it", "ro", "tr")   # MAiDE-up's Latin-script languages


class Kinds:
    """Each older kind's labelled rows as (texts, pools, y, groups), and MAiDE-up's real Latin rows."""

    def __init__(self, s: mg.Sets):
        self.s = s
        dev = np.array([i for i, r in enumerate(s.fr) if r["split"] == "dev"])
        self.product = (np.array([s.fr[i]["text"] for i in dev], dtype=object), s.G_fr[dev],
                        np.array([s.fr[i]["y"] for i in dev]), np.array([f"fr-{j % 7}" for j in range(len(dev))]))
        or_ = self.product[2] == 0
        self.fr_or = tuple(a[or_] for a in self.product)
        self.ott_all = (np.array([r["text"] for r in s.ott], dtype=object), s.G_ott,
                        np.array([r["y"] for r in s.ott]), np.array([f"ott-{r['hotel']}" for r in s.ott]))
        self.ott_fold = np.array(common.ott_hotel_folds(s.ott))
        self.real_latin = (s.m.y == 0) & np.isin(s.m.language, LATIN)

    def real(self, rows) -> tuple:
        m = self.s.m
        return m.texts[rows], self.s.G_m[rows], np.zeros(len(rows), int), np.array([f"maide-{h}" for h in m.hotel[rows]])

    def ott(self, sel) -> tuple:
        return tuple(a[sel] for a in self.ott_all)

    def fit(self, real_rows, ott_sel) -> tuple:
        """(always, gated) head specs: the product head on fake-reviews dev + the real rows; the Ott
        head on Ott's selected rows + the real rows + fake-reviews dev ``OR``."""
        real = self.real(real_rows)
        return fit_parts([self.product, real]), fit_parts([self.ott(ott_sel), real, self.fr_or])


def fit_parts(parts) -> dict:
    T, E, y, g = (np.concatenate([p[i] for p in parts]) for i in range(4))
    return runtime.rounded(mm.fit_generated(T, np.asarray(E, dtype=np.float32), y, g), mm.HEAD_DIGITS)


def english_spec(always: dict, gated: dict) -> dict:
    """The Latin-script detectors as 2.0.1's gated max, with 2.0.1's lexical hotel gate."""
    base = runtime.read_head_spec(mg.base_dir() / "head.json.xz")["english"]
    return {"kind": "gated_max", "always": always, "gated": gated, "gate": base["gate"], "gate_at": base["gate_at"]}


def sliced_sets(layers) -> mg.Sets:
    """The cached pools (layers 6, 12, 18) cut to ``layers``, which must be their prefix."""
    s = mg.Sets()
    if tuple(layers) != gemma.POOLED_LAYERS[:len(layers)]:
        raise SystemExit(f"the cached pools hold layers {gemma.POOLED_LAYERS}; {layers} is not their prefix")
    width = gemma.WIDTH * len(layers)
    s.G_m, s.G_fr, s.G_ns, s.G_ott = (G[:, :width] for G in (s.G_m, s.G_fr, s.G_ns, s.G_ott))
    return s


def served(english: dict, generated: dict, texts, G) -> np.ndarray:
    """What 2.2.0 serves for ``texts`` with pools ``G`` (mixed-script English readings aside)."""
    head = runtime.make_head({"kind": "multilingual", "english": english, "generated": generated})
    texts = [str(t) for t in texts]
    latin = np.fromiter((runtime.latin_script(t) for t in texts), dtype=bool, count=len(texts))
    return head.probability(G, texts, latin, head.gate_open(None, texts, latin))


def cross_validated(k: Kinds) -> dict:
    s, m = k.s, k.s.m
    extra = s.honest_training()
    cv = mm.cross_validate(m, s.G_m, extra)   # the generated head and the baseline, out of fold
    from sklearn.model_selection import GroupKFold
    p = np.zeros(len(m.y))
    t0 = time.perf_counter()
    for f, (tr, te) in enumerate(GroupKFold(mm.FOLDS).split(m.texts, m.y, m.hotel)):
        always, gated = k.fit(tr[k.real_latin[tr]], np.ones(len(k.ott_all[2]), bool))
        p[te] = served_oof(english_spec(always, gated), cv["model"][te], m.texts[te], s.G_m[te])
        heads.log(f"kinds fold {f} ({time.perf_counter() - t0:.0f} s)")
    table = mm.cv_table(m, p, cv["model"], cv["baseline"], mg_thresholds())
    return {"table": table, "served": p, "extra": extra, "generated_oof": cv["model"], "baseline": cv["baseline"],
            "languages": list(mm.SERVED) + mm.also_served(table)}


def with_early_exit(cv: dict, early: "EarlyExit", m) -> dict:
    """The MAiDE-up figures of the served combination: the layer-6 heads' probability where it exits."""
    p = early.combine(early.cv["served"], cv["served"])
    table = mm.cv_table(m, p, cv["generated_oof"], cv["baseline"], mg_thresholds())
    return {**cv, "table": table, "served": p, "full_pass_served": cv["served"],
            "languages": list(mm.SERVED) + mm.also_served(table)}


def served_oof(english: dict, p_generated, texts, G) -> np.ndarray:
    """The served combination where the generated head's probability is given (its out-of-fold score)."""
    head = runtime.make_head({"kind": "gated_max", **{k: v for k, v in english.items() if k != "kind"}})
    texts = [str(t) for t in texts]
    out = np.asarray(p_generated, dtype=np.float64).copy()
    latin = np.fromiter((runtime.latin_script(t) for t in texts), dtype=bool, count=len(texts))
    if latin.any():
        sub = [t for t, is_latin in zip(texts, latin) if is_latin]
        out[latin] = np.maximum(out[latin], head.probability(G[latin], sub))
    return out


class EarlyExit:
    """2.4.0: the layer-6 heads (their own Kinds on the layer-6 pools, cross-validated the same way),
    the margin chosen on MAiDE-up out of fold, and the served combination of the two probabilities."""

    def __init__(self, s: mg.Sets, after_layer: int, cv: dict):
        width = gemma.WIDTH * gemma.POOLED_LAYERS.index(after_layer) + gemma.WIDTH
        s6 = mg.Sets.__new__(mg.Sets)
        s6.__dict__.update(s.__dict__)
        s6.G_m, s6.G_fr, s6.G_ns, s6.G_ott = (G[:, :width] for G in (s.G_m, s.G_fr, s.G_ns, s.G_ott))
        self.after_layer, self.width, self.k = after_layer, width, Kinds(s6)
        heads.log(f"early exit: the heads on the pools up to layer {after_layer}, cross-validated")
        self.cv = cross_validated(self.k)
        t = list(mg_thresholds().values())
        p6, p12 = self.cv["served"], cv["served"]
        self.choice = {}
        for margin in EXIT_MARGINS:
            exits = ~runtime.near_a_threshold(p6, t, margin)
            changes = int((bands(p6[exits]) != bands(p12[exits])).sum())
            self.choice[str(margin)] = {"exit_share": round(float(exits.mean()), 4), "band_changes": changes,
                                        "band_change_share_of_exits": round(changes / max(1, int(exits.sum())), 5)}
        self.margin = next(float(m) for m in EXIT_MARGINS
                           if self.choice[str(m)]["band_change_share_of_exits"] <= EXIT_BAND_CHANGES)
        heads.log(f"early exit: logit margin {self.margin} ({json.dumps(self.choice[str(self.margin)])})")

    def fit(self):
        self.english, self.generated = fit_on_every_row(self.k, self.cv["extra"])
        return self

    def combine(self, p6, p12) -> np.ndarray:
        return np.where(runtime.near_a_threshold(p6, mg_thresholds().values(), self.margin), p12, p6)

    def served(self, p12, texts, G, english=None) -> np.ndarray:
        return self.combine(served(english or self.english, self.generated, texts, G[:, :self.width]), p12)


def fit_on_every_row(k: Kinds, extra) -> tuple:
    """The served heads, (english spec, generated spec), each fitted on every row of its sets."""
    s, m = k.s, k.s.m
    generated = runtime.rounded(mm.fit_generated(
        np.r_[m.texts, extra.texts], np.vstack([s.G_m, extra.E]), np.r_[m.y, np.zeros(len(extra.texts), int)],
        np.r_[m.hotel, extra.groups]), mm.HEAD_DIGITS)
    return english_spec(*k.fit(np.where(k.real_latin)[0], np.ones(len(k.ott_all[2]), bool))), generated


def bands(p) -> np.ndarray:
    return np.searchsorted(sorted(mg_thresholds().values()), p, side="right")


def calibration_texts(s: mg.Sets) -> list:
    """Seeded texts of every set the heads read, for the SmoothQuant activation maxima (no label is read;
    only the 8-bit pass's rounding depends on them, and ``check`` measures it)."""
    rng = np.random.default_rng(common.SEED)
    groups = [s.m.texts, [r["text"] for r in s.fr if r["split"] == "dev"], s.ns_t[s.ns_movie % 2 == 0],
              [r["text"] for r in s.ott]]
    return [str(g[i]) for g in groups for i in rng.choice(len(g), CALIBRATION, replace=False)]


def smoothing(s: mg.Sets, layers) -> dict:
    body = gemma.GemmaBody(backend="numpy", layers=layers)
    tok = gemma.GemmaTokenizer(common.CACHE / mg.TOKENIZER)
    record = {}
    for ids in tok(calibration_texts(s)):
        body.hidden(np.array([ids]), record=record)
    return gemma.smoothing_factors(body.W, record)


def mg_thresholds() -> dict:
    return json.loads((mg.base_dir() / "config.json").read_text())["thresholds"]


def ott_cv(k: Kinds, always: dict, generated: dict, early: "EarlyExit" = None) -> dict:
    """Ott in its 4 hotel-grouped folds: the Ott head refitted per fold (with every real MAiDE-up
    Latin review and fake-reviews dev ``OR``); the product and generated heads never saw Ott. With an
    early exit, its layer-6 Ott head is refitted per fold too."""
    all_real = np.where(k.real_latin)[0]
    T, G, y, _ = k.ott_all
    p = np.zeros(len(y))
    for f in range(4):
        te = k.ott_fold == f
        gated = fit_parts([k.ott(~te), k.real(all_real), k.fr_or])
        p[te] = served(english_spec(always, gated), generated, T[te], G[te])
        if early is not None:
            e = early.k
            gated6 = fit_parts([e.ott(~te), e.real(all_real), e.fr_or])
            p[te] = early.served(p[te], T[te], G[te], english_spec(early.english["always"], gated6))
    return {"p": p, "y": y, "polarity": np.array([r["polarity"] for r in k.s.ott])}


def figures(k: Kinds, cv: dict, english: dict, generated: dict, early: "EarlyExit" = None) -> dict:
    s, t = k.s, mg_thresholds()

    def score(T, G):   # what the artifact serves: with 2.4.0's early exit where it has one
        p = served(english, generated, T, G)
        return p if early is None else early.served(p, T, G)

    def fpr(p, sel):
        return {"n": int(sel.sum()), **{name: float((p[sel] >= v).mean()) for name, v in t.items()}}
    fr_T = np.array([r["text"] for r in s.fr], dtype=object)
    test = np.array([r["split"] == "test" for r in s.fr])
    y_fr = np.array([r["y"] for r in s.fr])
    p_fr = score(fr_T[test], s.G_fr[test])
    o = ott_cv(k, english["always"], generated, early)
    truthful = o["y"] == 0
    ev = s.ns_movie % 2 == 1
    p_ns = score(s.ns_t[ev], s.G_ns[ev])
    lengths = mm.min_lengths(s.m, cv["languages"])
    applies = np.array([runtime.not_applicable_reason(x, "ko", cv["languages"], lengths) is None for x in s.ns_t[ev]])
    stars = np.ceil(s.ns_rating[ev] / 2)
    ott_fig = metrics.summary(o["y"], o["p"], t, groups=o["polarity"])
    ott_fig["fold_accuracy"] = heads.fold_accuracy(o["y"], o["p"], k.ott_fold)
    dev = ~test
    y_te, T_te = y_fr[test], fr_T[test]
    ott_T = k.ott_all[0]
    ott_base = np.zeros(len(o["y"]))
    for f in range(4):
        te = k.ott_fold == f
        ott_base[te] = mm.baseline(ott_T[~te], o["y"][~te], ott_T[te])
    pol = o["polarity"]
    return {
        "fake_reviews_test": metrics.summary(y_te, p_fr, t),
        "fake_reviews_test_tfidf_lr_baseline": metrics.summary(y_te, mm.baseline(fr_T[dev], y_fr[dev], T_te), t),
        "ott_hotel_grouped_cv": ott_fig,
        "ott_hotel_grouped_cv_tfidf_lr_baseline": metrics.summary(o["y"], ott_base, t),
        "fairness_truthful_fpr_by_polarity": heads.truthful_fpr_by_polarity(o["y"], o["p"], pol, t),
        "plots": {"fake_reviews_test_roc": heads.roc_points(y_te, p_fr), "ott_cv_roc": heads.roc_points(o["y"], o["p"]),
                  "fake_reviews_test_hist": {"honest": heads.histogram(p_fr[y_te == 0]),
                                             "fake": heads.histogram(p_fr[y_te == 1])},
                  "ott_cv_hist": {"truthful_negative": heads.histogram(o["p"][truthful & (pol == "negative")]),
                                  "truthful_positive": heads.histogram(o["p"][truthful & (pol == "positive")]),
                                  "deceptive": heads.histogram(o["p"][o["y"] == 1])}},
        "honest_fpr": {
            "fake_reviews_test_OR": fpr(p_fr, y_fr[test] == 0),
            "ott_truthful": {**fpr(o["p"], truthful), "by_polarity": {
                pol: fpr(o["p"], truthful & (o["polarity"] == pol)) for pol in ("negative", "positive")}},
            "nsmc_odd_movies": {**fpr(p_ns, applies), "not_applicable": int((~applies).sum()),
                                "by_stars": {"1-2": fpr(p_ns, applies & (stars <= 2)),
                                             "4-5": fpr(p_ns, applies & (stars >= 4))}},
            **mm.maide_real_fpr(s.m, cv["served"], t)}}


def build(out: Path, k: Kinds, cv: dict, version: str = VERSION, early: "EarlyExit" = None) -> Path:
    s, m, extra = k.s, k.s.m, cv["extra"]
    heads.log("fitting the heads on every row")
    english, generated = fit_on_every_row(k, extra)
    heads.log("figures on the older and honest sets")
    figs = figures(k, cv, english, generated, early)
    src = json.loads((common.ARTIFACTS / heads.NAME / mg.VERSION / "config.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(common.CACHE / mg.TOKENIZER, out / mg.TOKENIZER)
    lengths = mm.min_lengths(m, cv["languages"])
    layers, weights = VERSIONS[version]
    ge = dict(src["generated_encoder"], sha256=gemma.file_sha256(gemma.gguf_path()), pooled_layers=list(layers))
    files = [mg.TOKENIZER, "head.json.xz", "metrics.json", "MODEL_CARD.md"]
    block = SMOOTHED_INT8.get(version)
    if weights != "float32":
        ge["weights"] = weights
        ge["runtime"] += (f"; every projection re-quantised to 8 bits in blocks of {block or gemma.INT8_BLOCK} at load "
                          "(MatMulNBits)" + (", after SmoothQuant factors (alpha 0.5, from "
                                            f"{4 * CALIBRATION} calibration texts) are folded into the weights" if block else "")
                          + "; the figures were measured on float32 pools, `check` gives the served difference")
    if block:
        heads.log("SmoothQuant factors from the calibration texts")
        out.mkdir(parents=True, exist_ok=True)
        np.savez(out / "gemma-smoothing.npz", **smoothing(s, layers))
        ge.update(int8_block=block, smoothing="gemma-smoothing.npz")
        files.append("gemma-smoothing.npz")
    exit_cfg = None
    if early is not None:
        runtime.write_json_file(out / "exit-head.json.xz", {"kind": "multilingual", "english": early.english,
                                                            "generated": early.generated})
        files.append("exit-head.json.xz")
        exit_cfg = {"after_layer": early.after_layer, "head": "exit-head.json.xz", "logit_margin": early.margin,
                    "rule": f"the smallest margin of {list(EXIT_MARGINS)} whose exits change at most "
                            f"{EXIT_BAND_CHANGES:.1%} of their bands against the full pass, MAiDE-up out of fold",
                    "margins_measured": early.choice}
    cfg = {"name": heads.NAME, "version": version,
           "base": {"package": ge["package"].split("==")[0], "package_version": ge["package"].split("==")[1],
                    "model": ge["model"]},
           "encoder": None, "tokenizer": mg.TOKENIZER, "head": "head.json.xz",
           "languages": cv["languages"], "thresholds": mg_thresholds(), "min_length": lengths,
           "files": files,
           "generated_encoder": {**ge, "read_by": "every head (there is no other encoder)"}}
    if exit_cfg:
        cfg["early_exit"] = exit_cfg
    (out / "config.json").write_text(json.dumps(cfg, indent=1))
    runtime.write_json_file(out / "head.json.xz", {"kind": "multilingual", "english": english, "generated": generated})
    met = {"model": f"{heads.NAME}/{version}", "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "recipe": __doc__.split("\n\n")[0],
           "maide_up_hotel_grouped_cv": cv["table"], "min_length": lengths, "languages": cv["languages"],
           "heads": {name: {"stacker": spec["stacker"]} for name, spec in
                     (("always", english["always"]), ("gated", english["gated"]), ("generated", generated))},
           "thresholds": cfg["thresholds"], "seed": common.SEED, **figs}
    met["plots"] = {**figs["plots"], **mm.maide_plots(m, cv["served"])}
    (out / "metrics.json").write_text(json.dumps(met, indent=1))
    integrity.seal(out, pin=out.parent.name == heads.NAME)
    return out


def spot_check(art: Path, s: mg.Sets, n: int, threads: int) -> dict:
    """The served artifact (ONNX Runtime Gemma pass, cascade off) against the build's figures (torch
    pools) on ``n`` seeded texts from every set (``multilingual_gemma.spot_sample``)."""
    clf = runtime.load(art, threads=threads, use_cascade=False)
    texts, G = mg.spot_sample(s, n)
    return {**mg.served_against_built(clf, texts, built_probability(art, texts, G)), "early_exits": clf.gemma_exits}


def built_probability(art: Path, texts, G) -> np.ndarray:
    """What the artifact in ``art`` serves for ``texts`` by the build's own arithmetic on float32 pools
    ``G``: its heads, and with an early exit (2.4.0) the exit heads' probability where it exits."""
    cfg = json.loads((Path(art) / "config.json").read_text())
    spec = runtime.read_head_spec(Path(art) / cfg["head"])
    p = served(spec["english"], spec["generated"], texts, G)
    ee = cfg.get("early_exit")
    if ee:
        ex = runtime.read_head_spec(Path(art) / ee["head"])
        width = gemma.WIDTH * (gemma.POOLED_LAYERS.index(ee["after_layer"]) + 1)
        p6 = served(ex["english"], ex["generated"], texts, G[:, :width])
        p = np.where(runtime.near_a_threshold(p6, cfg["thresholds"].values(), ee["logit_margin"]), p, p6)
    return p


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=["evaluate", "train", "check"],
                    help="check: the served artifact against the build's figures on --n texts")
    ap.add_argument("--version", default=VERSION, choices=sorted(VERSIONS))
    ap.add_argument("--out", default=None, help="default: the served folder of --version")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    common.seed_everything()
    out = Path(args.out or common.ARTIFACTS / heads.NAME / args.version)
    s = sliced_sets(VERSIONS[args.version][0])
    if args.command == "check":
        print(json.dumps(spot_check(out, s, args.n, args.threads), indent=1))
        return 0
    k = Kinds(s)
    cv = cross_validated(k)
    print(json.dumps({"maide_up_hotel_grouped_cv": cv["table"], "served_languages": cv["languages"]}, indent=1))
    early = None
    if args.version in EARLY_EXIT:
        early = EarlyExit(s, EARLY_EXIT[args.version], cv).fit()
        cv = with_early_exit(cv, early, s.m)
        print(json.dumps({"early_exit": {"logit_margin": early.margin, "margins": early.choice},
                          "maide_up_hotel_grouped_cv": cv["table"], "served_languages": cv["languages"]}, indent=1))
    if args.command == "train":
        heads.log(f"wrote {build(out, k, cv, args.version, early)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
