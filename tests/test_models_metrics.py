"""models.metrics and models.lexical: plain-numpy metrics and the serving TF-IDF."""
from __future__ import annotations

import numpy as np
import pytest

from models import metrics
from models.lexical import Tfidf, ngrams


def test_roc_auc_known_values():
    assert metrics.roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert metrics.roc_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)  # ties count half
    assert metrics.roc_auc([1, 1], [0.2, 0.3]) is None


def test_macro_f1_and_fpr():
    y, p = [0, 0, 0, 1, 1], [0.1, 0.6, 0.95, 0.7, 0.2]
    assert metrics.macro_f1(y, [int(x >= 0.5) for x in p]) == pytest.approx(0.4)
    assert metrics.fpr_at(y, p, {"lower": 0.5, "upper": 0.9}) == {"lower": 2 / 3, "upper": 1 / 3}


def test_summary_keys_and_groups():
    out = metrics.summary([0, 1, 0, 1], [0.2, 0.9, 0.7, 0.4], {"lower": 0.5, "upper": 0.8},
                          groups=["a", "a", "b", "b"])
    assert set(out) == {"n", "accuracy", "macro_f1", "roc_auc", "fpr", "fpr_by_group", "tpr"}
    assert out["tpr"] == {"lower": 0.5, "upper": 0.5}
    assert out["n"] == 4 and out["accuracy"] == 0.5
    assert out["fpr_by_group"]["a"] == {"n": 2, "n_negative": 1, "lower": 0.0, "upper": 0.0}
    assert out["fpr_by_group"]["b"]["lower"] == 1.0


def test_ngrams_follow_sklearn_token_pattern():
    assert ngrams("I love it, A+ product!", 1, 2) == ["love", "it", "product", "love it", "it product"]


def test_tfidf_matches_sklearn():
    sklearn = pytest.importorskip("sklearn.feature_extraction.text")
    docs = ["great product, works great", "terrible, broke after a day", "great value and great price",
            "works as described", "broke quickly; terrible value"]
    vec = sklearn.TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(docs)
    ours = Tfidf.from_json(Tfidf.from_sklearn(vec).to_json())
    coef = np.random.default_rng(0).normal(size=len(vec.vocabulary_))
    new = ["great price, terrible product", "nothing in the vocabulary here"]
    assert np.allclose(ours.dot(new, coef), vec.transform(new) @ coef, atol=1e-5)
