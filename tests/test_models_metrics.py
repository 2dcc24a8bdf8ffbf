"""models.metrics and models.lexical: plain-numpy metrics and the serving TF-IDF."""
from __future__ import annotations

import numpy as np
import pytest

from models import metrics
from pipeline.classifier.lexical import Tfidf, ngrams


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


@pytest.mark.parametrize("kwargs", [
    {"analyzer": "char", "ngram_range": (1, 4)},
    {"analyzer": "word", "ngram_range": (1, 2), "token_pattern": r"(?u)\b\w+\b|[^\w\s]"},
])
def test_char_and_punctuation_tfidf_match_sklearn(kwargs):
    sklearn = pytest.importorskip("sklearn.feature_extraction.text")
    docs = ["Great product!! I loved it.", "  Terrible:\tbroke\n\nafter a day ", "A+ value, A+ price",
            "ÉTÉ à Paris — très bien", "I", "works as described"]
    vec = sklearn.TfidfVectorizer(sublinear_tf=True, **kwargs).fit(docs)
    ours = Tfidf.from_json(Tfidf.from_sklearn(vec).to_json())
    coef = np.random.default_rng(1).normal(size=len(vec.vocabulary_))
    new = ["I  loved\t\tthe price!!", "", "x", "ÉTÉ — A+"]
    assert np.allclose(ours.dot(new, coef), vec.transform(new) @ coef, atol=1e-5)


def test_head_sums_embedding_and_every_lexical_block_then_calibrates():
    """head.json of 1.1.0: a linear embedding part (the fine-tuned encoder's logit × a) plus several
    TF-IDF blocks, each with its own coefficients; 1.0.0's single ``lexical`` block still loads."""
    from pipeline.classifier.runtime import Head, sigmoid
    sklearn = pytest.importorskip("sklearn.feature_extraction.text")
    docs = ["Great product!! I loved it.", "terrible, broke after a day", "works as described"]
    word = sklearn.TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"(?u)\b\w+\b|[^\w\s]").fit(docs)
    char = sklearn.TfidfVectorizer(analyzer="char", ngram_range=(1, 4), sublinear_tf=True).fit(docs)
    rng = np.random.default_rng(2)
    blocks = []
    for vec in (word, char):
        b = Tfidf.from_sklearn(vec).to_json()
        b["coef"] = rng.normal(size=len(vec.vocabulary_)).tolist()
        blocks.append(b)
    w = rng.normal(size=4)
    spec = {"embedding": {"mean": [0.0] * 4, "scale": [1.0] * 4, "coef": w.tolist()}, "intercept": -0.25,
            "lexical": {"blocks": blocks}, "calibration": {"a": 2.0, "b": 0.5}}
    E = rng.normal(size=(2, 4)).astype(np.float32)
    texts = ["I loved it!!", "broke after a day"]
    expected = (E @ w - 0.25 + word.transform(texts) @ np.array(blocks[0]["coef"])
                + char.transform(texts) @ np.array(blocks[1]["coef"]))
    head = Head(spec)
    assert np.allclose(head.decision(E, texts), expected, atol=1e-5)
    assert np.allclose(head.probability(E, texts), sigmoid(2.0 * expected + 0.5), atol=1e-6)
    # the 1.0.0 layout: one block directly under "lexical"
    old = dict(spec, lexical=blocks[0])
    assert np.allclose(Head(old).decision(E, texts), expected - char.transform(texts) @ np.array(blocks[1]["coef"]),
                       atol=1e-5)
    # "columns": the head reads only its slice of a wider embedding (one layer group of an all-layer encoder)
    wide = np.hstack([rng.normal(size=(2, 3)).astype(np.float32), E, rng.normal(size=(2, 2)).astype(np.float32)])
    assert np.allclose(Head(dict(spec, columns=[3, 7])).decision(wide, texts), expected, atol=1e-5)


def test_another_language_is_served_only_if_no_figure_is_worse_than_the_worst_served_ones():
    from models.multilingual import also_served

    def row(acc, auc, recall, fpr_lo, fpr_up, gap_lo, gap_up):
        return {"model": {"accuracy": acc, "roc_auc": auc, "recall": {"lower": recall},
                          "fpr": {"lower": fpr_lo, "upper": fpr_up},
                          "fpr_gap_neg_minus_pos_points": {"lower": gap_lo, "upper": gap_up}}}
    table = {"en": row(0.93, 0.984, 0.94, 0.062, 0.0012, -3.8, -0.2), "ko": row(0.954, 0.991, 0.94, 0.03, 0.0, 1.5, 0.0),
             "zh": row(0.954, 0.99, 0.936, 0.036, 0.0, 0.2, 0.0),
             "de": row(0.96, 0.993, 0.95, 0.02, 0.0, 1.0, 0.0),        # better everywhere: served
             "fr": row(0.96, 0.993, 0.95, 0.02, 0.0, -4.0, 0.0),       # a wider sentiment gap than any served one
             "ru": row(0.96, 0.993, 0.95, 0.02, 0.003, 1.0, 0.0),      # more honest reviews over upper
             "tr": row(0.92, 0.993, 0.95, 0.02, 0.0, 1.0, 0.0)}        # less accurate
    assert also_served(table) == ["de"]


def test_joined_text_leaves_out_missing_parts_pandas_wrote_as_nan():
    """MAiDE-up's shared file holds a literal "nan" for 454 missing parts, all of generated reviews:
    read as text, it would be a label leak (a store's real review never says "nan")."""
    from models import common
    assert common.joined_text(["Great stay.", "nan"]) == "Great stay."
    assert common.joined_text(["NaN ", "Noisy room."]) == "Noisy room."
    assert common.joined_text(["", "Noisy room."]) == "Noisy room."
    assert common.joined_text(["Great stay.", "Noisy room."]) == "Great stay.\nNoisy room."
    # a word that merely contains it is text
    assert common.joined_text(["Nan Lian garden next door", "nano-sized room"]) == \
        "Nan Lian garden next door\nnano-sized room"


def test_maide_up_as_read_for_training_holds_no_nan_part():
    from models import common, multilingual
    if not multilingual.MAIDE.exists():
        pytest.skip("the shared datasets are not beside this checkout")
    m = multilingual.maide()
    assert len(m.texts) == 16174
    assert not any(part.strip().lower() == "nan" for t in m.texts for part in t.split("\n"))
    assert common.joined_text(["x", "nan"]) == "x"
