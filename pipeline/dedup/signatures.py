"""MinHash signatures, bit-identical to datasketch's, computed a batch at a time with numpy.

datasketch 2.x (scheme ``affine32``, its default) hashes each shingle with ``hashfunc`` (here
``xxhash.xxh32_intdigest``), pre-mixes it with the MurmurHash3 32-bit finalizer, and applies
``num_perm`` affine permutations ``a*h + b mod 2^32`` whose parameters come from
``np.random.RandomState(seed)``; the signature is the element-wise minimum. :class:`Signer` takes
the permutation parameters from a real ``datasketch.MinHash`` and does the same arithmetic for all
shingles of a batch of documents in one numpy pass (one ``np.minimum.reduceat`` per batch instead
of one ``update_batch`` per document). ``tests/test_dedup.py`` proves the signatures equal
``datasketch.MinHash.bulk(..., hashfunc=xxh32_intdigest)`` bit for bit; ``make bench-dedup``
measures which is faster (docs/dedup.md).

LSH banding: ``bands`` × ``rows`` ≤ ``num_perm`` come from datasketch's own optimiser for the
threshold (``datasketch.lsh._optimal_param``), computed once per configuration.
"""
from __future__ import annotations

import functools
from typing import Iterable, List, Sequence, Tuple

import numpy as np
import xxhash
from datasketch import LeanMinHash, MinHash

_FMIX32 = (16, np.uint32(0x85EBCA6B), 13, np.uint32(0xC2B2AE35), 16)
EMPTY = np.uint32(0xFFFFFFFF)


def fmix32(hv: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, element-wise (wrapping uint32 arithmetic)."""
    s1, m1, s2, m2, s3 = _FMIX32
    hv = hv ^ (hv >> np.uint32(s1))
    hv = hv * m1
    hv = hv ^ (hv >> np.uint32(s2))
    hv = hv * m2
    return hv ^ (hv >> np.uint32(s3))


@functools.lru_cache(maxsize=None)
def lsh_params(threshold: float, num_perm: int, fp_weight: float = 0.05, fn_weight: float = 0.95) -> Tuple[int, int]:
    """(bands, rows) minimising the weighted false-positive + false-negative probability at
    ``threshold`` (datasketch's optimiser). Missing a copy costs more than an extra candidate,
    which the exact Jaccard check drops, hence the default weights 0.05/0.95: 16 bands × 8 rows
    at 0.8, which makes a pair at Jaccard 0.8 a candidate with probability 0.95 (0.40 with 0.5/0.5)."""
    from datasketch.lsh import _optimal_param
    return _optimal_param(threshold, num_perm, fp_weight, fn_weight)


class Signer:
    """Computes MinHash signatures (uint32[num_perm]) and LSH band keys.

    >>> s = Signer(num_perm=128, seed=1)
    >>> sig = s.signatures([frozenset({"great", "kettle"})])[0]
    >>> sig.dtype, sig.shape
    (dtype('uint32'), (128,))
    """

    def __init__(self, num_perm: int = 128, seed: int = 1, threshold: float = 0.8,
                 weights: Tuple[float, float] = (0.05, 0.95)):
        if num_perm < 16:
            raise ValueError("num_perm must be at least 16")
        if not 0.0 < threshold < 1.0:
            raise ValueError("threshold must be between 0 and 1")
        self.num_perm, self.seed, self.threshold = num_perm, seed, threshold
        template = MinHash(num_perm=num_perm, seed=seed, hashfunc=xxhash.xxh32_intdigest)
        if template.scheme != "affine32":
            raise ValueError(f"unexpected datasketch scheme {template.scheme!r}")
        a, b = template.permutations
        self._a = a.astype(np.uint32)
        self._b = b.astype(np.uint32)
        self.bands, self.rows = lsh_params(threshold, num_perm, *weights)

    def signatures(self, docs: Sequence[Iterable[str]], chunk_tokens: int = 1024) -> List[np.ndarray]:
        """One signature per document (an iterable of shingles, as str)."""
        return self.sign(docs, chunk_tokens)[0]

    def sign(self, docs: Sequence[Iterable[str]], chunk_tokens: int = 1024) -> Tuple[List[np.ndarray], List[np.ndarray]]:
        """(signatures, shingle hashes): per document its signature and the sorted unique xxh32
        hashes of its shingles, which make an exact Jaccard check of candidate pairs cheap.

        Shingles are multiplied by the permutations ``chunk_tokens`` at a time: small chunks keep
        the (tokens × num_perm) product in cache; 1024 was fastest here (docs/dedup.md)."""
        hashes: List[int] = []
        starts: List[int] = []
        empty: List[int] = []
        h32 = xxhash.xxh32_intdigest
        for i, doc in enumerate(docs):
            starts.append(len(hashes))
            before = len(hashes)
            hashes.extend(h32(s.encode("utf-8")) for s in doc)
            if len(hashes) == before:
                empty.append(i)
        out = np.full((len(starts), self.num_perm), EMPTY, dtype=np.uint32)
        if hashes:
            hv = fmix32(np.asarray(hashes, dtype=np.uint32))
            nonempty = [i for i in range(len(starts)) if i not in set(empty)] if empty else range(len(starts))
            offsets = np.asarray([starts[i] for i in nonempty], dtype=np.int64)
            # Process shingles in chunks so a large batch does not hold a (tokens × num_perm) matrix.
            mins = np.full((len(offsets), self.num_perm), EMPTY, dtype=np.uint32)
            bounds = list(offsets) + [len(hv)]
            doc = 0
            while doc < len(offsets):
                last = doc
                while last + 1 < len(offsets) and bounds[last + 2] - bounds[doc] <= chunk_tokens:
                    last += 1
                lo, hi = bounds[doc], bounds[last + 1]
                phv = hv[lo:hi, None] * self._a[None, :] + self._b[None, :]
                mins[doc:last + 1] = np.minimum.reduceat(phv, offsets[doc:last + 1] - lo, axis=0)
                doc = last + 1
            out[np.asarray(list(nonempty), dtype=np.int64)] = mins
        # Sorted unique hashes per document in one sort: key = document index << 32 | hash.
        counts = np.diff(np.asarray(starts + [len(hashes)], dtype=np.int64))
        keys = (np.repeat(np.arange(len(starts), dtype=np.uint64), counts) << np.uint64(32)) | \
            np.asarray(hashes, dtype=np.uint64)
        keys.sort()
        if len(keys):
            keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
        bounds = np.searchsorted(keys >> np.uint64(32), np.arange(len(starts) + 1, dtype=np.uint64))
        flat = (keys & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        shingle_hashes = [flat[bounds[i]:bounds[i + 1]] for i in range(len(starts))]
        return list(out), shingle_hashes

    def datasketch_signatures(self, docs: Sequence[Iterable[str]]) -> List[np.ndarray]:
        """The same signatures through datasketch's own fast path (``MinHash.bulk``), for comparison."""
        encoded = [[s.encode("utf-8") for s in doc] for doc in docs]
        return [m.hashvalues for m in MinHash.bulk(encoded, num_perm=self.num_perm, seed=self.seed,
                                                   hashfunc=xxhash.xxh32_intdigest)]

    def band_keys(self, signature: np.ndarray) -> List[str]:
        """``bands`` keys "b<index>:<xxh64 of the band's bytes>"; equal keys make candidate pairs."""
        r = self.rows
        return [f"{i}:{xxhash.xxh64_hexdigest(signature[i * r:(i + 1) * r].tobytes())}" for i in range(self.bands)]

    def lean(self, signature: np.ndarray) -> LeanMinHash:
        """A datasketch LeanMinHash of a signature (compact serialisation, ``jaccard``)."""
        return LeanMinHash(seed=self.seed, hashvalues=signature, scheme="affine32")


def exact_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard similarity of two sorted unique shingle-hash arrays."""
    if not len(a) and not len(b):
        return 1.0
    inter = np.intersect1d(a, b, assume_unique=True).size
    return inter / (len(a) + len(b) - inter)


def estimated_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """MinHash estimate of Jaccard similarity: the share of equal signature positions."""
    return float(np.count_nonzero(a == b)) / len(a)
