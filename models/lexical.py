"""TF-IDF word n-gram features, computed without scikit-learn at serving time.

Reproduces scikit-learn's ``TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)`` transform
(lowercase, token pattern ``(?u)\\b\\w\\w+\\b``, n-grams joined by a space, tf → 1 + ln tf,
smooth idf, L2 row norm) from a vocabulary and idf vector stored as JSON in the artifact.
``train.py`` fits with scikit-learn and checks this module gives the same matrix.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from typing import Dict, List, Sequence, Tuple

import numpy as np

TOKEN = re.compile(r"(?u)\b\w\w+\b")


def ngrams(text: str, lo: int, hi: int) -> List[str]:
    words = TOKEN.findall(text.lower())
    out = []
    for n in range(lo, hi + 1):
        out += [" ".join(words[i:i + n]) for i in range(len(words) - n + 1)]
    return out


class Tfidf:
    def __init__(self, vocab: Dict[str, int], idf: Sequence[float], ngram_range=(1, 2), sublinear_tf=True):
        self.vocab = vocab
        self.idf = np.asarray(idf, dtype=np.float64)
        self.lo, self.hi = ngram_range
        self.sublinear = sublinear_tf

    def row(self, text: str) -> Tuple[np.ndarray, np.ndarray]:
        """(column indices, values) of one L2-normalised TF-IDF row."""
        counts = Counter(t for t in ngrams(text, self.lo, self.hi) if t in self.vocab)
        if not counts:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        cols = np.fromiter((self.vocab[t] for t in counts), dtype=np.int64, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        if self.sublinear:
            tf = 1.0 + np.log(tf)
        vals = tf * self.idf[cols]
        norm = math.sqrt(float((vals ** 2).sum()))
        return cols, vals / norm if norm else vals

    def dot(self, texts: Sequence[str], coef: np.ndarray) -> np.ndarray:
        """TF-IDF(texts) @ coef, without building the matrix."""
        out = np.zeros(len(texts))
        for i, t in enumerate(texts):
            cols, vals = self.row(t)
            out[i] = float(vals @ coef[cols]) if len(cols) else 0.0
        return out

    def to_json(self) -> dict:
        terms = sorted(self.vocab, key=self.vocab.get)
        return {"terms": terms, "idf": [round(float(x), 6) for x in self.idf],
                "ngram_range": [self.lo, self.hi], "sublinear_tf": self.sublinear}

    @classmethod
    def from_json(cls, spec: dict) -> "Tfidf":
        return cls({t: i for i, t in enumerate(spec["terms"])}, spec["idf"],
                   tuple(spec["ngram_range"]), spec["sublinear_tf"])

    @classmethod
    def from_sklearn(cls, vec) -> "Tfidf":
        return cls(dict(vec.vocabulary_), vec.idf_, vec.ngram_range, vec.sublinear_tf)
