"""Issue #20 acceptance: a corpus of hostile lines, each with the outcome it must get.

Every line goes through the pipeline's own functions (parse → normalise → detectors not run →
policy) and must end as exactly the stated dead-letter code or decision; the kinds cover broken
JSON, the input contract, ratings, times, duplicated keys, sizes, markup and encodings, invisible
text, links and badges. tests/adversarial/test_markup.py checks what is published for the markup
kinds; tests/test_hostile_input.py runs a hostile file through the whole Beam job.
"""
from __future__ import annotations

import json
from collections import Counter

import pytest

from pipeline.policy import DEFAULT_POLICY
from pipeline.transforms.common import TextTooLarge
from pipeline.transforms.detect import mark_not_run
from pipeline.transforms.normalize import normalize_item
from pipeline.transforms.parse import parse_line
from schemas.records import DeadLetter, InputRef, RawLine
from tests.adversarial.test_markup import BASE, INVISIBLE, encodings

GOOD = {"review_id": "r1", "product_id": "p1", "author_id": "a1", "rating": 2,
        "body": "Stopped heating after a week and the seller never answered my emails.",
        "created_at": "2026-11-20T12:00:00Z"}


def line(**changes) -> bytes:
    obj = {k: v for k, v in {**GOOD, **changes}.items() if v is not ...}
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def raw_good() -> str:
    return json.dumps(GOOD)[1:-1]


CORPUS = [  # (kind, line, expected: a dead-letter code or a decision)
    # broken JSON and non-objects
    ("malformed_json/unterminated", b"{", "malformed_json"),
    ("malformed_json/garbage", b"not json at all", "malformed_json"),
    ("malformed_json/trailing_comma", ("{" + raw_good() + ",}").encode(), "malformed_json"),
    ("malformed_json/single_quotes", b"{'review_id': 'r1'}", "malformed_json"),
    ("malformed_json/nan", line().replace(b'"rating": 2', b'"rating": NaN'), "malformed_json"),
    ("malformed_json/infinity", line().replace(b'"rating": 2', b'"rating": Infinity'), "malformed_json"),
    ("malformed_json/deep_nesting", b"[" * 5000 + b"]" * 5000, "malformed_json"),
    ("malformed_json/two_objects", line() + b" " + line(), "malformed_json"),
    ("malformed_json/nul_bytes", b"\x00" * 40, "malformed_json"),
    ("not_an_object/list", b"[1, 2]", "not_an_object"),
    ("not_an_object/string", b'"a review"', "not_an_object"),
    ("not_an_object/number", b"42", "not_an_object"),
    ("not_an_object/null", b"null", "not_an_object"),
    ("not_an_object/true", b"true", "not_an_object"),
    ("invalid_utf8/bom_utf16", b"\xff\xfe{}", "invalid_utf8"),
    ("invalid_utf8/overlong", b'{"review_id": "\xc0\xaf"}', "invalid_utf8"),
    ("invalid_utf8/lone_surrogate", b'{"review_id": "a\\ud800"}', "invalid_utf8"),
    ("invalid_utf8/latin1_body", line(body="caf\u00e9 broke").replace("\u00e9".encode(), b"\xe9"), "invalid_utf8"),
    # the input contract
    *[(f"missing_field/{f}", line(**{f: ...}), "missing_field")
      for f in ("review_id", "product_id", "author_id", "rating", "body", "created_at")],
    ("wrong_type/rating_string", line(rating="5"), "wrong_type"),
    ("wrong_type/rating_bool", line(rating=True), "wrong_type"),
    ("wrong_type/body_number", line(body=5), "wrong_type"),
    ("wrong_type/review_id_number", line(review_id=123), "wrong_type"),
    ("wrong_type/product_id_list", line(product_id=["p"]), "wrong_type"),
    ("wrong_type/source_string", line(source="acme"), "wrong_type"),
    ("wrong_type/verified_string", line(verified_purchase="yes"), "wrong_type"),
    ("invalid_value/empty_review_id", line(review_id=""), "invalid_value"),
    ("invalid_value/language_sentence", line(language="english please"), "invalid_value"),
    ("invalid_value/relationship", line(author_relationship="cousin"), "invalid_value"),
    ("invalid_value/channel", line(source={"channel": "carrier pigeon"}), "invalid_value"),
    ("invalid_value/long_review_id", line(review_id="r" * 257), "invalid_value"),
    ("invalid_value/long_product_id", line(product_id="p" * 257), "invalid_value"),
    ("invalid_value/long_author_id", line(author_id="a" * 257), "invalid_value"),
    ("invalid_value/long_language", line(language="en-" + "x" * 40), "invalid_value"),
    # ratings
    ("rating_out_of_range/zero", line(rating=0), "rating_out_of_range"),
    ("rating_out_of_range/six", line(rating=6), "rating_out_of_range"),
    ("rating_out_of_range/negative", line(rating=-1), "rating_out_of_range"),
    ("rating_out_of_range/third_star", line(rating=3.3), "rating_out_of_range"),
    ("rating_out_of_range/five_and_half", line(rating=5.5), "rating_out_of_range"),
    ("rating_out_of_range/overflow", line().replace(b'"rating": 2', b'"rating": 1e400'), "rating_out_of_range"),
    ("rating_out_of_range/400_digits", line().replace(b'"rating": 2', b'"rating": ' + b"9" * 400), "rating_out_of_range"),
    ("rating_out_of_range/negative_overflow", line().replace(b'"rating": 2', b'"rating": -1e400'), "rating_out_of_range"),
    # times
    ("bad_timestamp/words", line(created_at="last tuesday"), "bad_timestamp"),
    ("bad_timestamp/feb_30", line(created_at="2025-02-30T10:00:00Z"), "bad_timestamp"),
    ("bad_timestamp/month_13", line(created_at="2025-13-01T10:00:00Z"), "bad_timestamp"),
    ("bad_timestamp/no_offset", line(created_at="2025-01-01T10:00:00"), "bad_timestamp"),
    ("bad_timestamp/empty", line(created_at=""), "bad_timestamp"),
    ("bad_timestamp/received_at_words", line(received_at="now"), "bad_timestamp"),
    ("decided/created_at_1990_clamped", line(created_at="1990-01-01T00:00:00Z"), "publish"),
    ("decided/created_at_2099_clamped", line(created_at="2099-01-01T00:00:00Z"), "publish"),
    ("decided/lowercase_rfc3339", line(created_at="2026-11-20t12:00:00z"), "publish"),
    # repeated keys: the validator and a consumer must never see different values
    ("duplicate_key/rating", line().replace(b'"rating": 2', b'"rating": 1, "rating": 5'), "duplicate_key"),
    ("duplicate_key/body", line()[:-1] + b', "body": "Wonderful!"}', "duplicate_key"),
    ("duplicate_key/review_id", line()[:-1] + b', "review_id": "r2"}', "duplicate_key"),
    ("duplicate_key/nested_source", line(source={"channel": "on_site"}).replace(
        b'"channel": "on_site"', b'"channel": "on_site", "channel": "syndicated"'), "duplicate_key"),
    # sizes
    ("too_large/body", line(body="x" * 20_001), "too_large"),
    ("too_large/title", line(title="t" * 20_001), "too_large"),
    ("too_large/after_nfkc", line(body="\ufdfa" * 19_000), "too_large"),
    ("decided/nfkc_within_limit", line(body="Broke quickly. " + "\ufdfa" * 1_000), "publish"),
    # markup, every base payload and encoding (the words around it published, the markup inert)
    *[(f"decided/markup/{i}/{enc}", line(body=f"Broke in a week. {payload} Avoid."), "publish")
      for i, base in enumerate(BASE) for enc, payload in encodings(base)],
    ("reject/only_markup", line(body="<script>alert(1)</script>"), "reject"),
    ("reject/only_invisible", line(body="\u200b\u200c\u2060\ufeff"), "reject"),
    ("decided/unclosed_svg_keeps_words", line(body="<svg onload=alert(1)> broke after two days"), "publish"),
    # invisible text
    *[(f"decided/invisible/U+{ord(ch):04X}", line(body=f"Bro{ch}ke af{ch}ter two days, sel{ch}ler ignored me."),
       "publish") for ch in INVISIBLE],
    # links and badges
    ("decided/url_javascript", line(source={"channel": "syndicated", "partner": "Shop", "url": "javascript:alert(1)"}),
     "publish_with_label"),
    ("decided/url_data", line(source={"channel": "syndicated", "partner": "Shop", "url": "data:text/html,x"}),
     "publish_with_label"),
    ("decided/partner_markup", line(source={"channel": "syndicated", "partner": "<img src=x onerror=alert(1)>Shop"}),
     "publish_with_label"),
    ("decided/bom_prefix", b"\xef\xbb\xbf" + line(), "publish"),
    ("decided/declared_french_on_english", line(language="fr"), "publish"),
    ("decided/unknown_fields_ignored", line(extra_field={"x": 1}), "publish"),
    ("decided/half_star", line(rating=4.5), "publish"),
    ("decided/emoji_and_cjk", line(body="壊れた 😡 두 번 다시 안 사요 broke after two days"), "publish"),
]


def outcome(data: bytes) -> str:
    item = parse_line(RawLine(ref=InputRef("hostile.jsonl", 1), data=data), run_id="t",
                      ingested_at="2026-11-20T12:00:01Z")
    if isinstance(item, DeadLetter):
        return item.error_code
    try:
        item = normalize_item(item)
    except TextTooLarge:
        return "too_large"
    return DEFAULT_POLICY.decide(mark_not_run(item)).decision


def test_the_corpus_is_large_and_varied():
    kinds = {kind for kind, _, _ in CORPUS}
    assert len(CORPUS) >= 150 and len(kinds) >= 60, (len(CORPUS), len(kinds))
    assert len(kinds) == len(CORPUS), [k for k, n in Counter(k for k, _, _ in CORPUS).items() if n > 1]


@pytest.mark.parametrize("kind, data, expected", CORPUS, ids=[k for k, _, _ in CORPUS])
def test_each_hostile_line_gets_its_stated_outcome(kind, data, expected):
    assert outcome(data) == expected
