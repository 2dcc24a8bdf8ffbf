"""Classifier 2.1.0 (issue #22): 2.0.1 with its ``generated`` head on Gemma 3 270M's pools.

Session 22's probes (research/classifier-log.md) found Gemma 3 270M's mean-pooled hidden states
(layers 6, 12, 18; :mod:`pipeline.classifier.gemma`) separate MAiDE-up's LLM-written reviews from real
ones better than multilingual-e5-small's first layers in English, Korean and Chinese, with 2.0.1's
recipe otherwise unchanged (``research.gemma_head``). This builds that recipe as a served artifact:

* **English detectors**: 2.0.1's (1.3.0's gated max on the Ott-fine-tuned e5), files copied unchanged.
* **generated head**: :func:`models.multilingual.fit_generated` (char 1–4-gram TF-IDF LR, C 10; the
  pools' LR, C 0.05; a stacker on inner hotel-grouped out-of-fold logits), same training rows (all
  10 MAiDE-up languages, fake-reviews dev ``OR``, 2,000 NSMC reviews of even-numbered movies), same
  5 hotel-grouped folds and per-language char TF-IDF baseline, 2.0.1's thresholds. It reads Gemma's
  pools, which the runtime puts in the columns after e5's.
* **combination**: as 2.0.1: Latin-script texts get the larger of the English detectors' probability
  and ``generated``'s; others ``generated``'s alone (and no e5 pass at all).

Training reads Gemma's pools from transformers' ``Gemma3ForCausalLM`` on the same GGUF (torch,
batched: ~75 ms a review on 2 cores; cached by text digest in ``.cache/classifier/gemma-pools-*.npy``,
the files ``research.lm_pools`` wrote); the served runtime computes them in numpy
(:mod:`pipeline.classifier.gemma`), equal to a few thousandths (tests/test_classifier_gemma.py).

    python -m models.multilingual_gemma features        # the pools of every set (slow the first time)
    python -m models.multilingual_gemma evaluate        # the CV table (JSON), nothing written
    python -m models.multilingual_gemma train [--out DIR]   # the artifact (default: the served folder)
then ``python -m models.cascade --version 2.1.0`` fits its cascade.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from models import common, heads, metrics, multilingual as mm
from pipeline.classifier import gemma, integrity, runtime

VERSION, BASE = "2.1.0", "2.0.1"
TOKENIZER = "gemma-tokenizer.json.xz"


def base_dir() -> Path:
    return common.ARTIFACTS / heads.NAME / BASE


# -- training-time pools: transformers' Gemma3ForCausalLM from the same GGUF (torch, batched) ------
MAX_TOKENS = gemma.MAX_TOKENS
TOKENS_PER_BATCH = 2048


def load_lm():
    """transformers' tokenizer and float32 ``Gemma3ForCausalLM`` from the pinned GGUF (offline)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    path = gemma.gguf_path()
    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    lm = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32).eval()
    return tok, lm


def cache_path(kind: str, texts, suffix: str) -> Path:
    """Where ``kind`` ("features", "pools") of these texts, in this order, are cached."""
    return common.CACHE / f"gemma-{kind}-{hashlib.sha256(chr(0x1e).join(texts).encode()).hexdigest()[:16]}{suffix}"


def padded_batches(texts, tok, log=sys.stderr):
    """Length-sorted batches of about TOKENS_PER_BATCH tokens: (row indices, token ids, padded input
    ids, attention mask), with progress on ``log``."""
    import torch
    ids = [tok(t, truncation=True, max_length=MAX_TOKENS).input_ids for t in texts]
    order = np.argsort([len(i) for i in ids])
    t0, i, shown = time.time(), 0, 0
    while i < len(order):
        n = max(1, TOKENS_PER_BATCH // len(ids[order[min(len(order) - 1, i + 7)]]))
        batch = order[i:i + n]
        i += n
        x = torch.zeros((len(batch), max(len(ids[b]) for b in batch)), dtype=torch.long)
        mask = torch.zeros_like(x)
        for r, b in enumerate(batch):
            x[r, :len(ids[b])] = torch.tensor(ids[b])
            mask[r, :len(ids[b])] = 1
        yield batch, ids, x, mask
        if i - shown >= 256 or i == len(order):
            shown = i
            print(f"{i}/{len(texts)} reviews, {time.time() - t0:.0f} s", file=log, flush=True)


def torch_pools(texts, tok, lm, log=sys.stderr) -> np.ndarray:
    """What :meth:`pipeline.classifier.gemma.GemmaBody.pools` computes, batched in torch."""
    import torch
    layers = gemma.POOLED_LAYERS
    P = np.zeros((len(texts), gemma.WIDTH * len(layers)), dtype=np.float32)
    for batch, _, x, mask in padded_batches(texts, tok, log):
        with torch.no_grad():
            hs = lm.model(input_ids=x, attention_mask=mask, output_hidden_states=True).hidden_states
        m = mask[:, 1:, None].float()  # leave out <bos>
        for j, L in enumerate(layers):
            h = hs[L][:, 1:]
            P[batch, j * gemma.WIDTH:(j + 1) * gemma.WIDTH] = ((h * m).sum(1) / m.sum(1).clamp(min=1)).numpy()
    return P


def pools_of(named_texts: dict) -> dict:
    """Gemma pools for each named list of texts, cached by their digest (the LM is loaded only if needed)."""
    out, todo = {}, {}
    for name, texts in named_texts.items():
        path = cache_path("pools", texts, ".npy")
        if path.exists():
            out[name] = np.load(path)
        else:
            todo[name] = (texts, path)
    if todo:
        import torch
        torch.set_num_threads(int(os.environ.get("PROBE_THREADS", "2")))
        tok, lm = load_lm()
        for name, (texts, path) in todo.items():
            heads.log(f"gemma pools: {name} ({len(texts)} texts)")
            out[name] = torch_pools(texts, tok, lm)
            np.save(path, out[name])
    return out


def build_tokenizer(path: Path = common.CACHE / TOKENIZER) -> Path:
    """Gemma's tokenizer as a ``tokenizers`` file, built by transformers from the GGUF's vocabulary
    (training extras, offline), xz-compressed; checked: its vocabulary is the GGUF's, id for id."""
    import lzma
    import tempfile

    import gguf
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer
    body = gemma.gguf_path()
    tok = AutoTokenizer.from_pretrained(str(body.parent), gguf_file=body.name)
    with tempfile.TemporaryDirectory() as tmp:
        tok.backend_tokenizer.save(f"{tmp}/tokenizer.json")
        raw = Path(f"{tmp}/tokenizer.json").read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(lzma.compress(raw, preset=9 | lzma.PRESET_EXTREME))
    check_tokenizer(path, gguf.GGUFReader(str(body)))
    return path


def check_tokenizer(path: Path, reader) -> None:
    """The tokenizer file's vocabulary is the GGUF's ``tokenizer.ggml.tokens``, id for id (a token of
    spaces is spelled with ▁ in the file)."""
    from tokenizers import Tokenizer
    field = reader.fields["tokenizer.ggml.tokens"]
    tokens = [bytes(field.parts[i]).decode("utf-8") for i in field.data]
    spelled = ["\u2581" * len(t) if " " in t and not t.strip() else t for t in tokens]
    vocab = Tokenizer.from_str(runtime.read_text_file(path)).get_vocab(with_added_tokens=True)
    by_id = {i: t for t, i in vocab.items()}
    wrong = [i for i, t in enumerate(spelled) if by_id.get(i) != t]
    if wrong or len(vocab) != len(tokens):
        raise SystemExit(f"{path}: vocabulary differs from the GGUF's at {len(wrong)} ids (first {wrong[:5]})")


class Sets:
    """Every set the build reads, with its Gemma pools (named lists as ``research.gemma_head`` named
    them, so its cached pools are the same files; the rest of each set in lists of their own)."""

    def __init__(self):
        self.m = mm.maide()
        self.fr = common.fake_reviews()
        self.ns_t, self.ns_movie, self.ns_rating = mm.nsmc_sample()
        self.ott = common.ott()
        served = np.isin(self.m.language, mm.SERVED)
        fr_rows = {k: [i for i, r in enumerate(self.fr) if (r["split"], r["y"]) in v] for k, v in
                   {"fake_reviews_dev_or": {("dev", 0)}, "fake_reviews_test_or": {("test", 0)},
                    "fake_reviews_cg": {("dev", 1), ("test", 1)}}.items()}
        even = np.where(self.ns_movie % 2 == 0)[0]
        ns_rows = {"nsmc_train": even[:mm.NSMC_TRAIN], "nsmc_even_rest": even[mm.NSMC_TRAIN:],
                   "nsmc_eval": np.where(self.ns_movie % 2 == 1)[0]}
        ott_rows = {"ott_truthful": [i for i, r in enumerate(self.ott) if r["y"] == 0],
                    "ott_deceptive": [i for i, r in enumerate(self.ott) if r["y"] == 1]}
        m_rows = {"maide_served": np.where(served)[0], "maide_other": np.where(~served)[0]}
        P = pools_of({**{k: [str(self.m.texts[i]) for i in v] for k, v in m_rows.items()},
                      **{k: [self.fr[i]["text"] for i in v] for k, v in fr_rows.items()},
                      **{k: [str(self.ns_t[i]) for i in v] for k, v in ns_rows.items()},
                      **{k: [self.ott[i]["text"] for i in v] for k, v in ott_rows.items()}})

        def assemble(n, rows):
            X = np.zeros((n, gemma.GemmaBody.pooled_width), dtype=np.float32)
            for name, idx in rows.items():
                X[np.asarray(idx, dtype=int)] = P[name]
            return X
        self.G_m = assemble(len(self.m.texts), m_rows)
        self.G_fr = assemble(len(self.fr), fr_rows)
        self.G_ns = assemble(len(self.ns_t), ns_rows)
        self.G_ott = assemble(len(self.ott), ott_rows)

    def honest_training(self) -> mm.Honest:
        """2.0.1's extra honest rows: fake-reviews dev ``OR``, 2,000 NSMC reviews of even-numbered movies."""
        keep = [i for i, r in enumerate(self.fr) if r["split"] == "dev" and r["y"] == 0]
        ns = np.where(self.ns_movie % 2 == 0)[0][:mm.NSMC_TRAIN]
        return mm.Honest(np.r_[np.array([self.fr[i]["text"] for i in keep], dtype=object), self.ns_t[ns]],
                         np.vstack([self.G_fr[keep], self.G_ns[ns]]),
                         np.r_[np.array([f"fake-reviews-{i % 7}" for i in keep]),
                               np.array([f"nsmc-{x}" for x in self.ns_movie[ns]])])


def english_probability(base: runtime.FakeReviewClassifier, texts) -> np.ndarray:
    """2.0.1's English detectors (1.3.0's gated max) on Latin-script texts, cached by digest."""
    texts = [str(t) for t in texts]
    path = common.CACHE / f"english-{BASE}-{mm.texts_digest(texts)[:16]}.npy"
    if path.exists():
        return np.load(path)
    p = base.predict_proba_english(texts)
    np.save(path, p)
    return p


def cross_validated(s: Sets, base: runtime.FakeReviewClassifier) -> dict:
    extra = s.honest_training()
    cv = mm.cross_validate(s.m, s.G_m, extra)
    latin = np.fromiter((runtime.latin_script(t) for t in s.m.texts), dtype=bool, count=len(s.m.texts))
    combined = cv["model"].copy()
    combined[latin] = np.maximum(combined[latin], english_probability(base, s.m.texts[latin]))
    thresholds = dict(base.thresholds)
    table = mm.cv_table(s.m, combined, cv["model"], cv["baseline"], thresholds)
    np.savez(common.CACHE / "gemma-maide-up-oof.npz", generated=cv["model"], baseline=cv["baseline"], served=combined)
    return {"table": table, "served": combined, "extra": extra, "languages": list(mm.SERVED) + mm.also_served(table)}


def build(out: Path, s: Sets, base: runtime.FakeReviewClassifier, cv: dict, threads: int) -> Path:
    """The 2.1.0 artifact in ``out``: 2.0.1's files, the new head, Gemma's tokenizer, config, metrics."""
    m, extra = s.m, cv["extra"]
    generated = runtime.rounded(mm.fit_generated(np.r_[m.texts, extra.texts], np.vstack([s.G_m, extra.E]),
                                                 np.r_[m.y, np.zeros(len(extra.texts), int)],
                                                 np.r_[m.hotel, extra.groups]), mm.HEAD_DIGITS)
    generated["columns"] = [base.e5_width, base.e5_width + gemma.GemmaBody.pooled_width]
    english = runtime.read_head_spec(base_dir() / "head.json.xz")["english"]
    src_cfg = json.loads((base_dir() / "config.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    e5_files = ["encoder-first.onnx", "encoder-rest.onnx", "tokenizer.json.xz", "vocab-base-ids.npy.xz",
                "embedding-delta.npy.xz"]
    for name in e5_files:
        shutil.copy(base_dir() / name, out / name)
    shutil.copy(common.CACHE / TOKENIZER, out / TOKENIZER)
    body_path = gemma.gguf_path()
    lengths = mm.min_lengths(m, cv["languages"])
    cfg = {**src_cfg, "version": VERSION, "languages": cv["languages"], "min_length": lengths,
           "files": e5_files + [TOKENIZER, "head.json.xz", "metrics.json", "MODEL_CARD.md"],
           "generated_encoder": {
               "model": "Gemma 3 270M (google/gemma-3-270m), Q4_K_M GGUF",
               "package": f"{gemma.PACKAGE}=={gemma.PACKAGE_VERSION}", "file": gemma.FILE,
               "sha256": gemma.file_sha256(body_path), "tokenizer": TOKENIZER,
               "pooled_layers": list(gemma.POOLED_LAYERS), "max_tokens": gemma.MAX_TOKENS,
               "pooling": "mean over the tokens after <bos> of the hidden states after each pooled layer "
                          "(the last after the final norm)",
               "runtime": "de-quantised to float32 at load and run by ONNX Runtime from a graph built in memory "
                          "(pipeline/classifier/gemma.py)",
               "license": "Gemma Terms of Use (https://ai.google.dev/gemma/terms): a deployment must accept them"}}
    cfg.pop("cascade", None)   # models.cascade fits 2.1.0's
    (out / "config.json").write_text(json.dumps(cfg, indent=1))
    runtime.write_json_file(out / "head.json.xz", {"kind": "multilingual", "english": english, "generated": generated})
    src_metrics = json.loads((base_dir() / "metrics.json").read_text())
    met = {**src_metrics, "model": f"{heads.NAME}/{VERSION}",
           "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "recipe": "2.0.1's English detectors + the generated head on Gemma 3 270M pools (models/multilingual_gemma.py)",
           "maide_up_hotel_grouped_cv": cv["table"], "min_length": lengths,
           "generated_head": {**src_metrics.get("generated_head", {}), "stacker": generated["stacker"],
                              "embedding": "Gemma 3 270M pools, layers 6, 12, 18 (1,920 numbers)"},
           "plots": {**src_metrics.get("plots", {}), **mm.maide_plots(m, cv["served"])}}
    met.pop("speed", None)
    met.update(honest_and_older_sets(s, base, generated, cv))
    (out / "metrics.json").write_text(json.dumps(met, indent=1))
    integrity.seal(out, pin=out.parent.name == heads.NAME)
    return out


def combined(base: runtime.FakeReviewClassifier, generated: dict, texts, G) -> np.ndarray:
    """What 2.1.0 serves for ``texts`` (with cached pools ``G``): the generated head, and for
    Latin-script texts the larger of it and 2.0.1's English detectors (mixed-script English readings
    aside: none of these sets has them)."""
    spec = dict(generated, columns=[0, G.shape[1]])
    p = runtime.Head(spec).probability(G, list(texts))
    latin = np.fromiter((runtime.latin_script(str(t)) for t in texts), dtype=bool, count=len(texts))
    if latin.any():
        p[latin] = np.maximum(p[latin], english_probability(base, np.asarray(texts, dtype=object)[latin]))
    return p


def honest_and_older_sets(s: Sets, base: runtime.FakeReviewClassifier, generated: dict, cv: dict) -> dict:
    """2.0.1's figures for 2.1.0: honest-set FPR (fake-reviews test ``OR``, Ott truthful, NSMC
    odd-numbered movies where the length rule lets the classifier speak, MAiDE-up real out of fold),
    fake-reviews test, and Ott's combined bound (1.3.0's out-of-fold Ott scores are not kept)."""
    t = dict(base.thresholds)

    def fpr(p, sel=None):
        p = np.asarray(p) if sel is None else np.asarray(p)[sel]
        return {"n": int(len(p)), **{k: float((p >= v).mean()) for k, v in t.items()}}
    spec = dict(generated, columns=[0, gemma.GemmaBody.pooled_width])
    fr_texts = np.array([r["text"] for r in s.fr], dtype=object)
    p_fr = combined(base, generated, fr_texts, s.G_fr)
    test = np.array([r["split"] == "test" for r in s.fr])
    y_fr = np.array([r["y"] for r in s.fr])
    ott_texts = [r["text"] for r in s.ott]
    p_ott_gen = runtime.Head(spec).probability(s.G_ott, ott_texts)
    y_ott = np.array([r["y"] for r in s.ott])
    pol = np.array([r["polarity"] for r in s.ott])
    ev = s.ns_movie % 2 == 1
    p_ns = runtime.Head(spec).probability(s.G_ns[ev], list(s.ns_t[ev]))
    lengths = mm.min_lengths(s.m, cv["languages"])
    applies = np.array([runtime.not_applicable_reason(x, "ko", cv["languages"], lengths) is None for x in s.ns_t[ev]])
    stars = np.ceil(s.ns_rating[ev] / 2)
    truthful = y_ott == 0
    src = json.loads((base_dir() / "metrics.json").read_text())
    ott_cv = src["ott_hotel_grouped_cv"]
    honest = {"fake_reviews_test_OR": fpr(p_fr, test & (y_fr == 0)),
              "ott_truthful_generated_head": {**fpr(p_ott_gen, truthful), "by_polarity": {
                  k: fpr(p_ott_gen, truthful & (pol == k)) for k in ("negative", "positive")}},
              "nsmc_odd_movies": {**fpr(p_ns, applies), "not_applicable": int((~applies).sum()),
                                  "by_stars": {"1-2": fpr(p_ns, applies & (stars <= 2)),
                                               "4-5": fpr(p_ns, applies & (stars >= 4))}},
              **mm.maide_real_fpr(s.m, cv["served"], t)}
    return {"honest_fpr": honest,
            "fake_reviews_test": {**metrics.summary(y_fr[test], p_fr[test], t),
                                  "gate_open_share": src["fake_reviews_test"].get("gate_open_share")},
            "ott_hotel_grouped_cv_combined_bound": {
                "accuracy_1_3_0": ott_cv["accuracy"],
                "accuracy_lower_bound": ott_cv["accuracy"] - float(((p_ott_gen >= 0.5) & truthful).sum()) / ott_cv["n"],
                "truthful_flagged_by_generated_head": {k: int(((p_ott_gen >= v) & truthful).sum())
                                                       for k, v in {"p>=0.5": 0.5, **t}.items()}}}


def spot_sample(s: Sets, n: int):
    """``n`` seeded texts from every set with their cached (training-time) pools: what ``check`` compares."""
    texts = np.r_[s.m.texts, [r["text"] for r in s.fr], s.ns_t, [r["text"] for r in s.ott]].astype(object)
    G = np.vstack([s.G_m, s.G_fr, s.G_ns, s.G_ott])
    rows = np.random.default_rng(common.SEED).choice(len(texts), n, replace=False)
    return texts[rows], G[rows]


def served_against_built(clf: runtime.FakeReviewClassifier, texts, built: np.ndarray) -> dict:
    """The served probabilities of ``texts`` against the build's (``built``): the largest difference,
    how many texts change band, and the served throughput."""
    t0 = time.perf_counter()
    got = clf.predict_proba([str(t) for t in texts])
    bands = lambda p: np.searchsorted(sorted(clf.thresholds.values()), p, side="right")   # noqa: E731
    return {"n": len(texts), "max_abs_difference": float(np.abs(got - built).max()),
            "band_changes": int((bands(got) != bands(built)).sum()),
            "served_reviews_per_s_no_cascade": round(len(texts) / (time.perf_counter() - t0), 2)}


def spot_check(art: Path, s: Sets, n: int, threads: int) -> dict:
    """The served 2.1.0 (ONNX Runtime Gemma pass, e5, cascade off) against the build's figures
    (torch pools, cached English probabilities) on ``n`` seeded texts from every set."""
    served = runtime.load(art, threads=threads, use_cascade=False)
    base = runtime.load(base_dir(), threads=threads)
    generated = runtime.read_head_spec(art / "head.json.xz")["generated"]
    texts, G = spot_sample(s, n)
    return served_against_built(served, texts, combined(base, generated, texts, G))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=["tokenizer", "features", "evaluate", "train", "check"],
                    help="check: the served artifact against the build's figures on --n texts")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--out", default=str(common.ARTIFACTS / heads.NAME / VERSION))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    common.seed_everything()
    if args.command == "tokenizer" or not (common.CACHE / TOKENIZER).exists():
        heads.log(f"wrote {build_tokenizer()}")
    s = Sets()
    if args.command == "features":
        return 0
    base = runtime.load(base_dir(), threads=args.threads)
    if args.command == "check":
        print(json.dumps(spot_check(Path(args.out), s, args.n, args.threads), indent=1))
        return 0
    cv = cross_validated(s, base)
    print(json.dumps({"maide_up_hotel_grouped_cv": cv["table"], "served_languages": cv["languages"]}, indent=1))
    if args.command == "train":
        art = build(Path(args.out), s, base, cv, args.threads)
        heads.log(f"wrote {art}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
