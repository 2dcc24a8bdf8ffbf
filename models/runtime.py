"""Loads a classifier artifact directory and scores texts offline with ONNX Runtime.

An artifact (``models/artifacts/<name>/<version>/``) holds ``config.json`` (base package and
version, file names, languages, thresholds), ``tokenizer.json``, the int8 ONNX encoder, the head
and calibration in ``head.json``, ``metrics.json`` and ``MODEL_CARD.md``. ``load(path)`` accepts a
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

import json
import math
import os
import tempfile
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

ARTIFACT_FILES_KEY = "files"


def _localise(path: str) -> Path:
    if not str(path).startswith("gs://"):
        return Path(path)
    from apache_beam.io.filesystems import FileSystems
    prefix = str(path).rstrip("/")
    local = Path(tempfile.mkdtemp(prefix="fake-classifier-"))
    with FileSystems.open(f"{prefix}/config.json") as f:
        config = json.loads(f.read().decode("utf-8"))
    for name in ["config.json", *config[ARTIFACT_FILES_KEY]]:
        with FileSystems.open(f"{prefix}/{name}") as src, open(local / name, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
    return local


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


class Head:
    """A linear score over [standardised embedding, optional TF-IDF n-gram blocks], then Platt
    calibration; every number is plain JSON (``head.json``)."""

    def __init__(self, spec: dict):
        emb = spec["embedding"]
        self.mean = np.asarray(emb["mean"], dtype=np.float32)
        self.scale = np.asarray(emb["scale"], dtype=np.float32)
        self.coef = np.asarray(emb["coef"], dtype=np.float32)
        self.intercept = float(spec["intercept"])
        # lexical: one TF-IDF block (1.0.0) or {"blocks": [...]}, each with its own coefficients
        from models.lexical import Tfidf
        lex = spec.get("lexical")
        blocks = lex["blocks"] if lex and "blocks" in lex else ([lex] if lex else [])
        self.lexical = [(Tfidf.from_json(b), np.asarray(b["coef"], dtype=np.float64)) for b in blocks]
        cal = spec["calibration"]
        self.cal_a, self.cal_b = float(cal["a"]), float(cal["b"])

    def decision(self, x: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        z = ((x - self.mean) / self.scale) @ self.coef + self.intercept
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
    elsewhere it is the ``always`` head's alone. Each part is a :class:`Head`."""

    def __init__(self, spec: dict):
        self.always, self.gated, self.gate = (Head(spec[k]) for k in ("always", "gated", "gate"))
        self.gate_at = float(spec["gate_at"])

    def probability(self, x: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        always = self.always.probability(x, texts)
        return np.where(self.gate.probability(x, texts) >= self.gate_at,
                        np.maximum(always, self.gated.probability(x, texts)), always)


def make_head(spec: dict):
    return GatedMaxHead(spec) if spec.get("kind") == "gated_max" else Head(spec)


class FakeReviewClassifier:
    def __init__(self, model_dir, threads: int = 1, batch_size: int = 1):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.dir = _localise(str(model_dir))
        self.config = json.loads((self.dir / "config.json").read_text())
        self.version = f'{self.config["name"]}/{self.config["version"]}'
        self.max_len = int(self.config["encoder"]["max_len"])
        self.languages = tuple(self.config["languages"])
        self.thresholds = dict(self.config["thresholds"])
        self.batch_size = batch_size
        self.tokenizer = Tokenizer.from_file(str(self.dir / self.config["tokenizer"]))
        # "windows": {"tokens": N, "overlap": K}: every text is cut into N-token windows (special
        # tokens included) sharing K tokens, covering it whole, and embedded as their mean (what
        # models.finetune --chunk trained on); without it, one window truncated at max_len
        self.windows = self.config["encoder"].get("windows")
        if self.windows:
            self.tokenizer.enable_truncation(max_length=int(self.windows["tokens"]),
                                             stride=int(self.windows["overlap"]))
        else:
            self.tokenizer.enable_truncation(max_length=self.max_len)
        self.tokenizer.no_padding()
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads  # set deliberately: 1 per worker process by default
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(self.dir / self.config["encoder"]["file"]), so,
                                            providers=["CPUExecutionProvider"])
        self.head = make_head(json.loads((self.dir / self.config["head"]).read_text()))

    # -- scoring -----------------------------------------------------------------------------
    def tokenize_windows(self, texts: Sequence[str]) -> List[List[List[int]]]:
        """Every text's windows (one, truncated, for an artifact without ``windows``)."""
        return [[e.ids] + [o.ids for o in e.overflowing] if self.windows else [e.ids]
                for e in self.tokenizer.encode_batch(list(texts))]

    def embed_ids(self, ids: Sequence[Sequence[int]]) -> np.ndarray:
        """Pooled embeddings for already-tokenised texts of one batch (padded to its longest)."""
        n, width = len(ids), max(len(x) for x in ids)
        input_ids = np.zeros((n, width), dtype=np.int64)
        mask = np.zeros((n, width), dtype=np.int64)
        for i, x in enumerate(ids):
            input_ids[i, :len(x)] = x
            mask[i, :len(x)] = 1
        return self.session.run(None, {"input_ids": input_ids, "attention_mask": mask})[0]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One vector per text: its windows' embeddings averaged (one window without ``windows``)."""
        per_text = self.tokenize_windows(texts)
        ids = [w for windows in per_text for w in windows]
        owner = np.repeat(np.arange(len(texts)), [len(windows) for windows in per_text])
        width = self.session.get_outputs()[0].shape[-1]
        sums = np.zeros((len(texts), width if isinstance(width, int) else 384), dtype=np.float64)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for c in range(0, len(order), self.batch_size):
            b = order[c:c + self.batch_size]
            np.add.at(sums, owner[b], self.embed_ids([ids[i] for i in b]))
        return (sums / np.bincount(owner, minlength=len(texts))[:, None]).astype(np.float32)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if not len(texts):
            return np.zeros((0,), dtype=np.float64)
        return self.head.probability(self.embed(texts), texts)

    def band(self, p: float) -> str:
        if p >= self.thresholds["upper"]:
            return "above_upper"
        if p >= self.thresholds["lower"]:
            return "between"
        return "below_lower"

    def applies_to(self, language: Optional[str]) -> bool:
        return bool(language) and language.split("-")[0].lower() in self.languages


def read_config(model_dir) -> dict:
    """The artifact's config.json (local path or gs://) without loading the model."""
    if str(model_dir).startswith("gs://"):
        from apache_beam.io.filesystems import FileSystems
        with FileSystems.open(str(model_dir).rstrip("/") + "/config.json") as f:
            return json.loads(f.read().decode("utf-8"))
    return json.loads((Path(model_dir) / "config.json").read_text())


def default_model_dir() -> Path:
    """The committed artifact: the newest version under models/artifacts/fake-review-classifier/."""
    root = Path(__file__).resolve().parent / "artifacts" / "fake-review-classifier"
    versions = sorted((p for p in root.iterdir() if (p / "config.json").exists()),
                      key=lambda p: [int(x) if x.isdigit() else x for x in p.name.split(".")])
    if not versions:
        raise FileNotFoundError(f"no classifier artifact under {root}")
    return versions[-1]


def load(model_dir=None, threads: int = 1, batch_size: int = 1) -> FakeReviewClassifier:
    return FakeReviewClassifier(model_dir or default_model_dir(), threads=threads, batch_size=batch_size)
