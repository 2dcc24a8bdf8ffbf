"""TF-IDF n-gram features, computed without scikit-learn at serving time.

Reproduces scikit-learn's ``TfidfVectorizer`` transform for the two analyzers the head uses, from a
vocabulary and idf vector stored as JSON in the artifact:

* ``word``: lowercase, a token pattern (scikit-learn's default ``(?u)\\b\\w\\w+\\b``, or
  ``(?u)\\b\\w+\\b|[^\\w\\s]`` that also keeps one-letter words and punctuation such as "I" and "!"),
  n-grams joined by a space;
* ``char``: lowercase, runs of 2+ whitespace characters collapsed to one space, character n-grams
  over the whole text (scikit-learn's ``analyzer="char"``);

then tf → 1 + ln tf (``sublinear_tf``), smooth idf, L2 row norm. ``train.py`` fits with
scikit-learn and checks this module gives the same scores.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from typing import Dict, List, Sequence, Tuple

import numpy as np

DEFAULT_TOKEN_PATTERN = r"(?u)\b\w\w+\b"
WHITE_SPACES = re.compile(r"\s\s+")


def ngrams(text: str, lo: int, hi: int, token=re.compile(DEFAULT_TOKEN_PATTERN)) -> List[str]:
    words = token.findall(text.lower())
    out = []
    for n in range(lo, hi + 1):
        out += [" ".join(words[i:i + n]) for i in range(len(words) - n + 1)]
    return out


def char_ngrams(text: str, lo: int, hi: int) -> List[str]:
    doc = WHITE_SPACES.sub(" ", text.lower())
    out = []
    for n in range(lo, min(hi, len(doc)) + 1):
        out += [doc[i:i + n] for i in range(len(doc) - n + 1)]
    return out


class Tfidf:
    def __init__(self, vocab: Dict[str, int], idf: Sequence[float], ngram_range=(1, 2), sublinear_tf=True,
                 analyzer: str = "word", token_pattern: str = DEFAULT_TOKEN_PATTERN):
        if analyzer not in ("word", "char"):
            raise ValueError(f"unsupported analyzer {analyzer!r}")
        self.vocab = vocab
        self.idf = np.asarray(idf, dtype=np.float64)
        self.lo, self.hi = ngram_range
        self.sublinear = sublinear_tf
        self.analyzer = analyzer
        self.token_pattern = token_pattern
        self._token = re.compile(token_pattern)

    def terms(self, text: str) -> List[str]:
        if self.analyzer == "char":
            return char_ngrams(text, self.lo, self.hi)
        return ngrams(text, self.lo, self.hi, self._token)

    def row(self, text: str) -> Tuple[np.ndarray, np.ndarray]:
        """(column indices, values) of one L2-normalised TF-IDF row."""
        vocab = self.vocab
        counts = Counter(t for t in self.terms(text) if t in vocab)
        if not counts:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        cols = np.fromiter((vocab[t] for t in counts), dtype=np.int64, count=len(counts))
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
                "ngram_range": [self.lo, self.hi], "sublinear_tf": self.sublinear,
                "analyzer": self.analyzer, "token_pattern": self.token_pattern}

    @classmethod
    def from_json(cls, spec: dict) -> "Tfidf":
        return cls({t: i for i, t in enumerate(spec["terms"])}, spec["idf"],
                   tuple(spec["ngram_range"]), spec["sublinear_tf"], spec.get("analyzer", "word"),
                   spec.get("token_pattern", DEFAULT_TOKEN_PATTERN))

    @classmethod
    def from_sklearn(cls, vec) -> "Tfidf":
        pattern = vec.token_pattern if vec.analyzer == "word" else DEFAULT_TOKEN_PATTERN
        return cls(dict(vec.vocabulary_), vec.idf_, vec.ngram_range, vec.sublinear_tf, vec.analyzer, pattern)
