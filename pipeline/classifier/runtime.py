"""Loads a classifier artifact directory and scores texts offline with ONNX Runtime.

An artifact (``pipeline/classifier/artifacts/<name>/<version>/``, written by ``models.train``) holds ``config.json`` (base package and
version, file names, languages, thresholds), ``tokenizer.json``, the int8 ONNX encoder, the head
and calibration in ``head.json``, ``metrics.json`` and ``MODEL_CARD.md``. The tokenizer and head
may be compressed (``*.json.xz`` or ``*.json.gz``, read transparently) to keep the committed artifact small. ``load(path)`` accepts a
local directory or a ``gs://`` prefix (copied to a local temp directory through Beam's
FileSystems, so the same GCS client and credentials as the pipeline are used).

Scoring runs one text per ONNX call by default (``batch_size=1``): no padding at all, and a
review's score does not depend on its batch-mates. Dynamic int8 quantisation scales activations
per input tensor, so with padded batches of 32 a score moved by up to 0.33 in probability (mean
0.008; 4 of 300 test reviews changed band) depending on what it was batched with; per-text calls
were also faster on this 2-core CPU (55–60 vs 41–47 reviews/s, one thread, measured side by side
with 1.0.0's unfused graph; not re-measured for the fused 1.1.0 graph).
With ``batch_size > 1`` texts are sorted by token count and each batch is padded only to its own
longest text.
"""
from __future__ import annotations

import gzip
import json
import lzma
import re
import tempfile
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

ARTIFACT_FILES_KEY = "files"


def _localise(path: str) -> Path:
    if not str(path).startswith("gs://"):
        return Path(path)
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems
    prefix = str(path).rstrip("/")
    local = Path(tempfile.mkdtemp(prefix="fake-classifier-"))
    with FileSystems.open(f"{prefix}/config.json") as f:
        config = json.loads(f.read().decode("utf-8"))
    from pipeline.classifier.integrity import SUMS
    for name in ["config.json", SUMS, *config[ARTIFACT_FILES_KEY]]:
        # byte for byte: FileSystems would otherwise decompress *.gz / *.xz files on the way
        with FileSystems.open(f"{prefix}/{name}", compression_type=CompressionTypes.UNCOMPRESSED) as src, \
                open(local / name, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
    return local


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


class Head:
    """A linear score over [standardised embedding, optional TF-IDF n-gram blocks], then Platt
    calibration; every number is plain JSON (``head.json``). ``"columns": [start, stop]`` reads only
    that slice of the embedding (e.g. the pools of some layers of an all-layer encoder)."""

    def __init__(self, spec: dict):
        self.columns = slice(*spec["columns"]) if spec.get("columns") else slice(None)
        emb = spec["embedding"]
        self.mean = np.asarray(emb["mean"], dtype=np.float32)
        self.scale = np.asarray(emb["scale"], dtype=np.float32)
        self.coef = np.asarray(emb["coef"], dtype=np.float32)
        self.intercept = float(spec["intercept"])
        # lexical: one TF-IDF block (1.0.0) or {"blocks": [...]}, each with its own coefficients
        from pipeline.classifier.lexical import Tfidf
        lex = spec.get("lexical")
        blocks = lex["blocks"] if lex and "blocks" in lex else ([lex] if lex else [])
        self.lexical = [(Tfidf.from_json(b), np.asarray(b["coef"], dtype=np.float64)) for b in blocks]
        cal = spec["calibration"]
        self.cal_a, self.cal_b = float(cal["a"]), float(cal["b"])

    def decision(self, x: np.ndarray, texts: Sequence[str], embedding: bool = True) -> np.ndarray:
        """The logit; ``embedding=False`` leaves the encoder's part out (the cascade's cheap stage)."""
        z = ((x[:, self.columns] - self.mean) / self.scale) @ self.coef + self.intercept if embedding \
            else np.full(len(texts), self.intercept)
        for tfidf, coef in self.lexical:
            z = z + tfidf.dot(texts, coef)
        return z.astype(np.float64)

    def calibrate(self, z: np.ndarray) -> np.ndarray:
        return sigmoid(self.cal_a * z + self.cal_b)

    def probability(self, x: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        return self.calibrate(self.decision(x, texts))


class GatedMaxHead:
    """Two detectors on one encoder (``head.json`` ``{"kind": "gated_max", ...}``): the probability
    is the larger of the ``always`` head's and the ``gated`` head's, the gated head counting only
    where the ``gate`` head says the text is like its training data (probability ≥ ``gate_at``);
    elsewhere it is the ``always`` head's alone. Each part is a :class:`Head`. A gate without
    embedding columns (``"columns": [0, 0]``, lexical only) can be read before the encoder runs,
    which is what lets an early-exit encoder stop where the gated head is not needed."""

    def __init__(self, spec: dict):
        self.always, self.gated, self.gate = (Head(spec[k]) for k in ("always", "gated", "gate"))
        self.gate_at = float(spec["gate_at"])

    def gate_open(self, x: Optional[np.ndarray], texts: Sequence[str]) -> np.ndarray:
        """Where the gated head counts; ``x=None`` for a lexical-only gate, before any embedding."""
        return self.gate.probability(np.zeros((len(texts), 0), dtype=np.float32) if x is None else x, texts) \
            >= self.gate_at

    def probability(self, x: np.ndarray, texts: Sequence[str], gate: Optional[np.ndarray] = None) -> np.ndarray:
        always = self.always.probability(x, texts)
        if gate is None:
            gate = self.gate_open(x, texts)
        out = always.copy()
        if gate.any():
            out[gate] = np.maximum(always[gate], self.gated.probability(x[gate], [t for t, g in zip(texts, gate) if g]))
        return out


def read_head_spec(path) -> dict:
    """A head file as a dict: plain JSON, or xz/gzip-compressed JSON when its name ends in ``.xz``/``.gz``."""
    return json.loads(read_text_file(path))


def rounded(obj, digits: int):
    """``obj`` (JSON-like) with every float cut to ``digits`` significant digits."""
    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}")
    if isinstance(obj, list):
        return [rounded(x, digits) for x in obj]
    if isinstance(obj, dict):
        return {k: rounded(v, digits) for k, v in obj.items()}
    return obj


def write_json_file(path, obj, digits: Optional[int] = None) -> Path:
    """Writes JSON compactly, every float to ``digits`` significant digits if given, compressed
    deterministically (xz holds no timestamp; gzip's is zeroed) when ``path`` ends in ``.xz`` or ``.gz``.
    xz (stdlib ``lzma``, preset 9e) is what the artifact uses: 31% smaller than gzip -9 on the head
    (1.09 vs 1.58 MB for 1.3.0's), the margin that keeps the committed artifact under 30 MB."""
    path = Path(path)
    data = json.dumps(obj if digits is None else rounded(obj, digits), separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")
    path.write_bytes(_compress(data, path.suffix))
    return path


# suffix -> (compress, decompress): deterministic (xz holds no timestamp; gzip's is zeroed)
_CODECS = {
    ".xz": (lambda b: lzma.compress(b, format=lzma.FORMAT_XZ, preset=9 | lzma.PRESET_EXTREME), lzma.decompress),
    ".gz": (lambda b: gzip.compress(b, compresslevel=9, mtime=0), gzip.decompress),
}
_PLAIN = (lambda b: b, lambda b: b)


def _compress(data: bytes, suffix: str) -> bytes:
    return _CODECS.get(suffix, _PLAIN)[0](data)


def read_text_file(path) -> str:
    """A text file, transparently decompressed when its name ends in ``.xz`` or ``.gz``."""
    path = Path(path)
    return _CODECS.get(path.suffix, _PLAIN)[1](path.read_bytes()).decode("utf-8")


class MultilingualHead:
    """2.0.0 (``{"kind": "multilingual", ...}``): the ``english`` detector (1.3.0's gated max:
    computer-generated product reviews, crowd-written hotel reviews) and the ``generated`` detector
    (LLM-written reviews in every served language: char n-grams + the encoder's first layers).
    Latin-script texts get the larger of the two probabilities; others the ``generated`` one alone
    (the English detector's word n-grams and heads were fitted on English only)."""

    def __init__(self, spec: dict):
        self.english = make_head(spec["english"])
        self.generated = Head(spec["generated"])

    def gate_open(self, x, texts: Sequence[str], latin: np.ndarray) -> np.ndarray:
        gate = np.zeros(len(texts), dtype=bool)
        if isinstance(self.english, GatedMaxHead) and latin.any():
            gate[latin] = self.english.gate_open(None, [t for t, is_latin in zip(texts, latin) if is_latin])
        return gate

    def probability(self, x: np.ndarray, texts: Sequence[str], latin: np.ndarray, gate: np.ndarray) -> np.ndarray:
        out = self.generated.probability(x, texts)
        if latin.any():
            sub = [t for t, is_latin in zip(texts, latin) if is_latin]
            eng = self.english.probability(x[latin], sub, gate=gate[latin]) if isinstance(self.english, GatedMaxHead) \
                else self.english.probability(x[latin], sub)
            out[latin] = np.maximum(out[latin], eng)
        return out


def make_head(spec: dict):
    kind = spec.get("kind")
    return GatedMaxHead(spec) if kind == "gated_max" else MultilingualHead(spec) if kind == "multilingual" else Head(spec)


# letters of other scripts (Hangul, CJK, kana, Cyrillic ...) and CJK / full-width punctuation
_OTHER_SCRIPT = re.compile(r"[^\W\d_\u0000-\u024f]+|[\u3000-\u303f\uff00-\uffef]+")


def latin_part(text: str) -> str:
    """The text with every other script's letters (and CJK punctuation) taken out: what the English
    detector reads of a mixed-script review."""
    return " ".join(_OTHER_SCRIPT.sub(" ", text).split())


def english_readings(text: str, least: int) -> List[str]:
    """What the English detector reads of a mixed-script review: its whole Latin part and its longest
    unbroken Latin run (padding in another script may hold Latin words of its own: an app name, a
    brand), each only if it has ``least`` Latin words."""
    runs = [" ".join(s.split()) for s in _OTHER_SCRIPT.split(text)]
    readings = dict.fromkeys([latin_part(text), max(runs, key=latin_words)])
    return [r for r in readings if latin_words(r) >= least]


def latin_words(text: str) -> int:
    """Whitespace-separated words of :func:`latin_part` that hold a Latin letter."""
    return sum(1 for w in latin_part(text).split() if any(c.isalpha() and c < "\u0250" for c in w))


def latin_script(text: str) -> bool:
    """Whether most of a text's letters are Latin (ASCII or Latin-1/Extended), the English
    detector's domain; Hangul, CJK, Cyrillic ... texts are not."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return True
    return sum(1 for c in letters if c < "\u0250") * 2 > len(letters)


EXIT_CHUNK = 256   # texts per early-exit chunk (FakeReviewClassifier._early_exit); 64 measured ~5% slower


def near_a_threshold(p: np.ndarray, thresholds, margin: float) -> np.ndarray:
    """Whether each probability's logit lies within ``margin`` of some threshold's logit (2.4.0's
    early exit runs the rest of the pass for those only)."""
    def logit(x):
        x = np.clip(np.asarray(x, dtype=np.float64), 1e-12, 1 - 1e-12)
        return np.log(x) - np.log1p(-x)
    return np.min([np.abs(logit(p) - logit(t)) for t in thresholds], axis=0) <= margin


class FakeReviewClassifier:
    def __init__(self, model_dir, threads: int = 1, batch_size: int = 1, use_cascade: bool = True,
                 gemma_weights: Optional[str] = None):
        from pipeline.classifier import integrity
        self.dir = _localise(str(model_dir))
        self.config = json.loads((self.dir / "config.json").read_text())
        self.version = f'{self.config["name"]}/{self.config["version"]}'
        # the files must be the ones sealed (and pinned in this code) under that version
        self.artifact_sha256 = integrity.verify(self.dir, self.config)
        # 2.2.0 has no e5 encoder ("encoder": null): every head reads Gemma's pools alone
        enc = self.config.get("encoder")
        self.max_len = int(enc["max_len"]) if enc else int(self.config["generated_encoder"]["max_tokens"])
        self.languages = tuple(self.config["languages"])
        self.min_words = int(self.config.get("min_words", 0))
        self.min_length = min_length_rule(self.config)
        self.thresholds = dict(self.config["thresholds"])
        self.batch_size = batch_size
        self.cascade_spec = dict(self.config.get("cascade") or {}) if use_cascade else {}
        self.cascade = bool(self.cascade_spec)
        self.cascade_skipped = 0
        self.session = self.rest = self.tokenizer = self.windows = None
        self.e5_width = 0
        if enc:
            self._load_e5(enc, threads)
        self.head = make_head(read_head_spec(self.dir / self.config["head"]))
        # 2.1.0: the ``generated`` detector reads Gemma 3 270M's pools (pipeline/classifier/gemma.py)
        # in columns after the e5 encoder's; Latin-script texts still run e5 for the English detector.
        # 2.2.0: every detector reads Gemma's pools (columns from 0), and there is no e5 pass at all
        self.gemma = self.gemma_tokenizer = None
        ge = self.config.get("generated_encoder")
        if ge:
            from pipeline.classifier import gemma
            # 2.4.0: "smoothing" names the artifact's per-channel SmoothQuant factors (folded into the
            # weights at load) and "int8_block" the 8-bit blocks' width (2.3.0: 32)
            smoothing = None
            if ge.get("smoothing"):
                with np.load(self.dir / ge["smoothing"], allow_pickle=False) as z:
                    smoothing = {k: z[k] for k in z.files}
            self.gemma = gemma.GemmaBody(expected_sha256=ge["sha256"], threads=threads,
                                         weights=gemma_weights or ge.get("weights", "float32"),
                                         layers=ge.get("pooled_layers", gemma.POOLED_LAYERS),
                                         int8_block=int(ge.get("int8_block", gemma.INT8_BLOCK)), smoothing=smoothing,
                                         split_after=(self.config.get("early_exit") or {}).get("after_layer"))
            self.gemma_tokenizer = gemma.GemmaTokenizer(self.dir / ge["tokenizer"])
            self.gemma_passes = 0
        # 2.4.0's early exit (models/multilingual_kinds.py): heads of the same recipe on the pools of
        # the layers up to ``after_layer`` score every review the cascade passes on; the rest of the pass
        # and the full heads run only where that probability's logit is within ``logit_margin`` of a
        # threshold's (where the rest could move the band)
        self.early_exit = dict(self.config.get("early_exit") or {})
        self.exit_head = make_head(read_head_spec(self.dir / self.early_exit["head"])) if self.early_exit else None
        self.gemma_exits = 0

    def _load_e5(self, enc: dict, threads: int) -> None:
        from tokenizers import Tokenizer
        self.tokenizer = Tokenizer.from_str(read_text_file(self.dir / self.config["tokenizer"]))
        # "windows": {"tokens": N, "overlap": K}: every text is cut into N-token windows (special
        # tokens included) sharing K tokens, covering it whole, and embedded as their mean (what
        # models.finetune --chunk trained on); without it, one window truncated at max_len
        self.windows = enc.get("windows")
        if self.windows:
            self.tokenizer.enable_truncation(max_length=int(self.windows["tokens"]),
                                             stride=int(self.windows["overlap"]))
        else:
            self.tokenizer.enable_truncation(max_length=self.max_len)
        self.tokenizer.no_padding()
        self._initializers = self._word_embeddings(enc.get("word_embeddings"))
        self.session = self._session(enc["file"], threads, self._initializers)
        # "rest": an early-exit encoder (onnx_export.split_at_layer): ``file`` stops after some layer;
        # ``rest`` continues from its carry.* outputs to the last layer, run only for the texts whose
        # head needs the deep layers (a gated head's gate open). "rest_threads" caps its intra-op
        # threads: 1.2.0's rest (8-bit weight-only FFN outputs) ran 1.6x slower on 2 threads than on 1
        rest = enc.get("rest")
        self.rest = self._session(rest, min(threads, int(enc.get("rest_threads", threads)))) if rest else None
        self.e5_width = self._width(self.session) + (self._width(self.rest) if self.rest is not None else 0)

    def _word_embeddings(self, spec: Optional[dict]) -> dict:
        """2.0.0: the word-embedding table rebuilt from the pinned base package + the committed
        delta (:mod:`pipeline.classifier.e5_base`), given to ONNX Runtime in place of the graph's
        placeholder. The OrtValue must outlive the session, so it is kept on ``self``."""
        if not spec:
            return {}
        import io
        import onnxruntime as ort
        from pipeline.classifier import e5_base
        ids, delta = (np.load(io.BytesIO(_CODECS[".xz"][1]((self.dir / spec[k]).read_bytes())))
                      for k in ("base_ids", "delta"))
        table = e5_base.rebuild_table(ids, delta, spec["scale"], spec["zero_point"], spec["sha256"])
        return {spec["initializer"]: ort.OrtValue.ortvalue_from_numpy(table)}

    def _session(self, name: str, threads: int, initializers: Optional[dict] = None):
        import onnxruntime as ort
        so = ort.SessionOptions()
        for key, value in (initializers or {}).items():
            so.add_initializer(key, value)
        so.intra_op_num_threads = threads  # set deliberately: 1 per worker process by default
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(str(self.dir / name), so, providers=["CPUExecutionProvider"])

    # -- scoring -----------------------------------------------------------------------------
    def tokenize_windows(self, texts: Sequence[str]) -> List[List[List[int]]]:
        """Every text's windows (one, truncated, for an artifact without ``windows``)."""
        return [[e.ids] + [o.ids for o in e.overflowing] if self.windows else [e.ids]
                for e in self.tokenizer.encode_batch(list(texts))]

    def embed_ids(self, ids: Sequence[Sequence[int]], deep: bool = True) -> np.ndarray:
        """Pooled embeddings for already-tokenised texts of one batch (padded to its longest); with
        an early-exit encoder, the rest's pools follow only if ``deep`` (else zeros)."""
        n, width = len(ids), max(len(x) for x in ids)
        input_ids = np.zeros((n, width), dtype=np.int64)
        mask = np.zeros((n, width), dtype=np.int64)
        for i, x in enumerate(ids):
            input_ids[i, :len(x)] = x
            mask[i, :len(x)] = 1
        outs = self.session.run(None, {"input_ids": input_ids, "attention_mask": mask})
        if self.rest is None:
            return outs[0]
        if not deep:
            return np.hstack([outs[0], np.zeros((n, self._width(self.rest)), dtype=outs[0].dtype)])
        feed = {o.name: v for o, v in zip(self.session.get_outputs(), outs)}
        feed["attention_mask"] = mask
        return np.hstack([outs[0], self.rest.run(None, {i.name: feed[i.name] for i in self.rest.get_inputs()})[0]])

    @staticmethod
    def _width(session) -> int:
        width = session.get_outputs()[0].shape[-1]
        if not isinstance(width, int):
            raise ValueError(f"the encoder's output width must be static, got {width!r}")
        return width

    def embed(self, texts: Sequence[str], deep: Optional[Sequence[bool]] = None) -> np.ndarray:
        """One vector per text: its windows' embeddings averaged (one window without ``windows``).
        ``deep`` (early-exit encoders): which texts go through every layer (default all); the
        others' deep columns are zeros."""
        per_text = self.tokenize_windows(texts)
        ids = [w for windows in per_text for w in windows]
        owner = np.repeat(np.arange(len(texts)), [len(windows) for windows in per_text])
        deep = np.ones(len(texts), dtype=bool) if deep is None else np.asarray(deep, dtype=bool)
        width = self._width(self.session) + (self._width(self.rest) if self.rest is not None else 0)
        sums = np.zeros((len(texts), width), dtype=np.float64)
        # deep windows batch apart from shallow ones, each sorted by length (padding stays minimal)
        order = sorted(range(len(ids)), key=lambda i: (bool(deep[owner[i]]), len(ids[i])))
        for c in range(0, len(order), self.batch_size):
            b = order[c:c + self.batch_size]
            for is_deep in (False, True):
                part = [i for i in b if bool(deep[owner[i]]) == is_deep]
                if part:
                    np.add.at(sums, owner[part], self.embed_ids([ids[i] for i in part], deep=is_deep))
        return (sums / np.bincount(owner, minlength=len(texts))[:, None]).astype(np.float32)

    def features(self, texts: Sequence[str], deep: Sequence[bool], latin: np.ndarray) -> np.ndarray:
        """What the heads read: e5's pools (``deep`` as :meth:`embed`), then, for a 2.1 artifact,
        Gemma's pools in the columns after them. With Gemma, e5 runs only for Latin-script texts
        (the English detector's; the ``generated`` detector reads Gemma's columns alone)."""
        if self.gemma is None:
            return self.embed(texts, deep=deep)
        if self.session is None:   # 2.2.0: Gemma alone
            self.gemma_passes += len(texts)
            return self.gemma.pools(self.gemma_tokenizer(texts))
        x = np.zeros((len(texts), self.e5_width + self.gemma.pooled_width), dtype=np.float32)
        latin = np.asarray(latin, dtype=bool)
        if latin.any():
            x[latin, :self.e5_width] = self.embed([t for t, is_latin in zip(texts, latin) if is_latin],
                                                  deep=np.asarray(deep, dtype=bool)[latin])
        x[:, self.e5_width:] = self.gemma.pools(self.gemma_tokenizer(texts))
        self.gemma_passes += len(texts)
        return x

    def predict_proba(self, texts: Sequence[str], english_parts: Optional[Sequence[Optional[str]]] = None
                      ) -> np.ndarray:
        """``english_parts``: per text, None or its English sentences (language id, which this
        Beam-free runtime does not run: ``pipeline.transforms.classify``) for the English detector
        to read as well; the largest probability wins (2.0.0 artifacts)."""
        if not len(texts):
            return np.zeros((0,), dtype=np.float64)
        if isinstance(self.head, MultilingualHead):
            return self._predict_multilingual(texts, english_parts)
        if self.rest is None or not isinstance(self.head, GatedMaxHead):
            return self.head.probability(self.embed(texts), texts)
        gate = self.head.gate_open(None, texts)   # lexical: decided before the encoder runs
        return self.head.probability(self.embed(texts, deep=gate), texts, gate=gate)

    def _predict_multilingual(self, texts: Sequence[str], english_parts=None) -> np.ndarray:
        latin = np.fromiter((latin_script(t) for t in texts), dtype=bool, count=len(texts))
        out = np.zeros(len(texts), dtype=np.float64)
        run = np.ones(len(texts), dtype=bool)
        gate = self.head.gate_open(None, texts, latin)
        # The cascade (config "cascade", models/cascade.py): each detector's encoder part is estimated
        # from the text's n-gram parts and bounded by a residual quantile over the fitting rows; where
        # every detector stays under ``lower`` even with the bound, the encoder is skipped and the
        # estimate reported. Latin-script texts with the hotel gate open always run it.
        for group, rows in (("english", latin & ~gate), ("other_scripts", ~latin)):
            spec = self.cascade_spec.get(group)
            idx = np.where(rows)[0]
            if spec and len(idx):
                skip, estimate = cascade(spec, self.head, [texts[i] for i in idx], group == "english",
                                         self.thresholds["lower"])
                out[idx[skip]] = estimate[skip]
                run[idx[skip]] = False
                self.cascade_skipped += int(skip.sum())
        if run.any():
            rt = [t for t, r in zip(texts, run) if r]
            out[run] = self._early_exit(rt, latin[run], gate[run]) if self.early_exit else \
                self.head.probability(self.features(rt, gate[run], latin[run]), rt, latin[run], gate[run])
        # A review with other scripts in it that still holds an English review's worth of Latin words
        # (an English fake padded with Chinese to route it away from the English detector, or with a
        # character between its words to blur what it reads) also meets the English detector on its
        # Latin part and its longest Latin run (english_readings); the largest probability wins.
        need = self.english_min_words()
        readings = [(i, r) for i, t in enumerate(texts) if _OTHER_SCRIPT.search(t)
                    for r in english_readings(t, need) if not (latin[i] and r == t)]
        readings += [(i, part) for i, part in enumerate(english_parts or ()) if part]   # English sentences
        if readings:
            idx = np.array([i for i, _ in readings])
            np.maximum.at(out, idx, self.predict_proba_english([r for _, r in readings]))
        return out

    def _early_exit(self, texts: Sequence[str], latin: np.ndarray, gate: np.ndarray) -> np.ndarray:
        """Layers 1..after_layer for every text, the rest only near a threshold; in chunks of
        ``EXIT_CHUNK`` texts, so the layer states kept between the two stages stay bounded (a chunk of
        512-token reviews: ~335 MB; of ~100-token reviews ~65 MB) whatever the batch RunInference hands over."""
        p = np.zeros(len(texts), dtype=np.float64)
        for start in range(0, len(texts), EXIT_CHUNK):
            part = slice(start, start + EXIT_CHUNK)
            chunk = list(texts[part])
            first, states = self.gemma.pools_first(self.gemma_tokenizer(chunk))
            self.gemma_passes += len(chunk)
            q = self.exit_head.probability(first, chunk, latin[part], gate[part])
            near = np.where(near_a_threshold(q, self.thresholds.values(), float(self.early_exit["logit_margin"])))[0]
            self.gemma_exits += len(chunk) - len(near)
            if len(near):
                x = np.hstack([first[near], self.gemma.pools_rest([states[i] for i in near])])
                q[near] = self.head.probability(x, [chunk[i] for i in near], latin[part][near], gate[part][near])
            p[part] = q
        return p

    def english_min_words(self) -> int:
        return english_min_words(self.min_length)

    def predict_proba_english(self, texts: Sequence[str]) -> np.ndarray:
        """The ``english`` detector (1.3.0's gated max) alone; 2.0.0 artifacts only."""
        if not isinstance(self.head, MultilingualHead):
            raise TypeError(f"{self.version} has no separate English detector")
        if not len(texts):
            return np.zeros((0,), dtype=np.float64)
        english = self.head.english
        gate = english.gate_open(None, texts) if isinstance(english, GatedMaxHead) else np.ones(len(texts), bool)
        x = self.features(texts, gate, np.ones(len(texts), dtype=bool)) if self.session is None \
            else self.embed(texts, deep=gate)
        return english.probability(x, texts, gate=gate) if isinstance(english, GatedMaxHead) \
            else english.probability(x, texts)

    def predict_proba_generated(self, texts: Sequence[str]) -> np.ndarray:
        """The ``generated`` (LLM-written) detector alone, for every text whatever its script
        (evaluation: what it adds to the English detector); 2.0.0 artifacts only."""
        if not isinstance(self.head, MultilingualHead):
            raise TypeError(f"{self.version} has no generated-review head")
        if not len(texts):
            return np.zeros((0,), dtype=np.float64)
        return self.head.generated.probability(
            self.features(texts, [False] * len(texts), np.zeros(len(texts), dtype=bool)), texts)

    def band(self, p: float) -> str:
        if p >= self.thresholds["upper"]:
            return "above_upper"
        if p >= self.thresholds["lower"]:
            return "between"
        return "below_lower"

    def applies_to(self, language: Optional[str], text: Optional[str] = None) -> bool:
        """Whether the classifier speaks for a text (:func:`not_applicable_reason` is None)."""
        return not_applicable_reason(text, language, self.languages, self.min_length) is None


def cascade_inputs(head: MultilingualHead, texts: Sequence[str], latin: bool):
    """The cheap part of a text's detectors, before any encoder: (design rows, {detector: n-gram logit}).
    Latin script meets ``always`` and ``generated``: rows ``[always, generated, log1p(words), 1]``;
    other scripts meet ``generated`` alone: ``[generated, log1p(letters and digits), 1]``."""
    empty = np.zeros((len(texts), 0), dtype=np.float32)
    lex = {"generated": head.generated.decision(empty, texts, embedding=False)}
    if latin:
        lex["always"] = head.english.always.decision(empty, texts, embedding=False)
    size = np.fromiter((text_length(t, "words" if latin else "chars") for t in texts), dtype=np.float64,
                       count=len(texts))
    cols = ([lex["always"]] if latin else []) + [lex["generated"], np.log1p(size), np.ones(len(texts))]
    return np.column_stack(cols), lex


def cascade_rule(spec: dict, head: MultilingualHead, F: np.ndarray, lex: dict, lower: float):
    """(skip, estimate) (``models/cascade.py`` fits ``spec``): each detector's encoder part is
    estimated as ``F @ coef``; skip where every detector's probability with the estimate + its residual
    bound stays under ``lower``; the estimate reported is the largest probability without the bound."""
    bound = estimate = np.zeros(len(F))
    for name, fit in spec["detectors"].items():
        detector = head.english.always if name == "always" else head.generated
        z = lex[name] + F @ np.asarray(fit["coef"])
        bound = np.maximum(bound, detector.calibrate(z + fit["bound"]))
        estimate = np.maximum(estimate, detector.calibrate(z))
    return bound < lower, estimate


def cascade(spec: dict, head: MultilingualHead, texts: Sequence[str], latin: bool, lower: float):
    """(skip, estimate) for texts of one script group (Latin ones with the hotel gate closed)."""
    F, lex = cascade_inputs(head, texts, latin)
    return cascade_rule(spec, head, F, lex, lower)


def english_min_words(min_length) -> int:
    """The English length rule in words (what makes a text's Latin part worth the English detector)."""
    rule = min_length.get("en", {}) if isinstance(min_length, dict) else {"words": min_length}
    return max(1, int(rule.get("words", 0) or 0))


def min_length_rule(config: dict):
    """The artifact's length rule for :func:`not_applicable_reason`: per language ``{"words": n}`` or
    ``{"chars": n}`` (2.0.0 ``min_length``), or 1.x's ``min_words`` for every language."""
    return config.get("min_length") or int(config.get("min_words", 0))


def text_length(text: str, unit: str) -> int:
    """Words (whitespace-separated) or characters (letters and digits: what a Chinese or Japanese
    review is made of; spaces and punctuation do not count)."""
    if unit == "words":
        return len(text.split())
    return sum(1 for c in text if c.isalnum())


def not_applicable_reason(text: Optional[str], language: Optional[str], languages: Sequence[str],
                          min_length=0) -> Optional[str]:
    """The one rule for whether the classifier speaks: None when it does, else the reason it does not.

    It speaks only for non-empty text in a language it was evaluated on (``config.json``
    ``languages``) at least as long as that language's minimum (``min_length``: per language
    ``{"words": n}`` or ``{"chars": n}``, since word counts mean nothing for Chinese; a plain
    number is a word minimum for every language, as 1.x artifacts have it). Shorter texts were too
    rare in the evaluation data for the error there to be known. ``text=None`` checks the language alone.
    """
    langs = tuple(x.lower() for x in languages)
    if text is not None and not text:
        return "empty text"
    lang = (language or "").split("-")[0].lower()
    if not lang:
        return "language undetermined; classifier evaluated only on: " + ", ".join(langs)
    if lang not in langs:
        return f"language '{language}' not evaluated; classifier evaluated only on: " + ", ".join(langs)
    if text is None:
        return None
    if isinstance(min_length, dict):
        # the rule follows the script: Latin-script text meets the English detectors, so it needs the
        # English minimum whatever language it is labelled ("PROFIT!! PROFIT!! PROFIT!!" declared "ko")
        by_script = lang != "en" and "en" in min_length and latin_script(text)
        rule = min_length.get("en" if by_script else lang, {})
    else:
        by_script, rule = False, {"words": int(min_length or 0)}
    for unit, least in rule.items():
        n = text_length(text, unit)
        if n < least:
            one = unit[:-1]
            return (f"text too short ({n} {one if n == 1 else unit}); classifier evaluated only on "
                    f"{'Latin-script' if by_script else repr(lang)} reviews of at least {least} {unit}")
    return None


def read_config(model_dir) -> dict:
    """The artifact's config.json (local path or gs://) without loading the model."""
    if str(model_dir).startswith("gs://"):
        from apache_beam.io.filesystems import FileSystems
        with FileSystems.open(str(model_dir).rstrip("/") + "/config.json") as f:
            return json.loads(f.read().decode("utf-8"))
    return json.loads((Path(model_dir) / "config.json").read_text())


# Which committed version the pipeline serves when --classifier_model is not given: a deliberate
# choice, not the newest folder. 2.1.0, 2.2.0, 2.3.0 and 2.4.0 (Gemma 3 270M; 2.4.0 the fastest of them,
# with its early exit after layer 6) are committed beside it and served with --classifier_model
# pipeline/classifier/artifacts/fake-review-classifier/2.4.0: a Gemma pass costs ~25-120 ms a review on
# this CPU where the cascade cannot skip it (most English product reviews): 2.4.0 serves English product
# reviews at 33-39/s against 2.0.1's 80-127/s in the same runs, so none is the default yet (issue #22/#23).
DEFAULT_VERSION = "2.0.1"


def default_model_dir() -> Path:
    """The committed artifact the pipeline serves by default (:data:`DEFAULT_VERSION`)."""
    path = Path(__file__).resolve().parent / "artifacts" / "fake-review-classifier" / DEFAULT_VERSION
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"no classifier artifact at {path}")
    return path


def load(model_dir=None, threads: int = 1, batch_size: int = 1, use_cascade: bool = True,
         gemma_weights: Optional[str] = None) -> FakeReviewClassifier:
    """``gemma_weights`` ("float32" or "int8") overrides the artifact's ``generated_encoder.weights``
    (measurement: the same artifact both ways)."""
    return FakeReviewClassifier(model_dir or default_model_dir(), threads=threads, batch_size=batch_size,
                                use_cascade=use_cascade, gemma_weights=gemma_weights)
