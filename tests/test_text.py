"""Normalisation functions: cleaning, language identification, personal-data redaction."""
from __future__ import annotations

from html.parser import HTMLParser

import pytest
from hypothesis import given, settings, strategies as st

from pipeline.text.clean import clean_text
from pipeline.text.langid import detect_language, normalise_tag
from pipeline.text.pii import redact


@pytest.mark.parametrize("text, expected", [
    ("<p>Great <b>kettle</b></p><p>Second</p>", "Great kettle Second"),
    ("Nice<script>alert(1)</script> one", "Nice one"),
    ("<img src=x onerror=alert(1)>ok", "ok"),
    ("Tom &amp; Jerry &lt;3", "Tom & Jerry <3"),
    ("5 < 6 and 7 > 3", "5 < 6 and 7 > 3"),
    ("&lt;script&gt;alert(1)&lt;/script&gt;fine", "fine"),
    ("＜script＞alert(1)＜/script＞ｆｕｌｌ", "full"),  # full-width markup becomes real markup (NFKC), then goes
    ("a\u0000b\u0007c\u202eevil\u202c", "abcevil"),
    ("  many\t\tspaces\n\nand lines  ", "many spaces and lines"),
    ("ｶﾀｶﾅ ①", "カタカナ 1"),
    ("hi<br>there", "hi there"),
    ("<style>p{color:red}</style>visible", "visible"),
    ("<!-- comment -->text", "text"),
])
def test_clean_text(text, expected):
    assert clean_text(text) == expected


def _tags(text: str) -> list:
    found = []

    class Parser(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append(tag)

        def handle_startendtag(self, tag, attrs):
            found.append(tag)

    parser = Parser()
    parser.feed(text)
    parser.close()
    return found


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("<>/&;=\"' abscriptimgonerrorl()123#x\u0000\u202e\uff1c\uff1e")), max_size=80))
def test_cleaned_text_never_contains_markup(text):
    out = clean_text(text)
    assert _tags(out) == [], out  # nothing an HTML parser would take for an element
    assert "\u0000" not in out and "\u202e" not in out
    assert clean_text(out) == out  # idempotent


@pytest.mark.parametrize("text, lang", [
    ("This blender broke after two days and support never answered.", "en"),
    ("Great value, heats quickly, would buy again.", "en"),
    ("配送が早くて助かりました。また買います。", "ja"),
    ("最高でした", "ja"),
    ("배송이 빨라요 만족합니다", "ko"),
    ("재밌어요", "ko"),
    ("굿", "ko"),
    ("很好用，推荐购买，物流也很快。", "zh"),
    ("质量太差了，用了两天就坏了。", "zh"),
])
def test_language_identification_at_review_length(text, lang):
    assert detect_language(text) == lang


def test_language_undetermined_rather_than_guessed():
    assert detect_language("10/10") is None
    assert detect_language("") is None


def test_bcp47_tags_are_normalised():
    assert normalise_tag("EN-us") == "en-US"
    assert normalise_tag("zh-hant-tw") == "zh-Hant-TW"


@pytest.mark.parametrize("text, lang, kind", [
    ("write to jane.doe@example.com", "en", "email"),
    ("call (415) 555-2671 today", "en", "phone"),
    ("call +44 20 7946 0958", "en", "phone"),
    ("연락주세요 010-1234-5678", "ko", "phone"),
    ("電話は03-1234-5678まで", "ja", "phone"),
    ("card 4111 1111 1111 1111 charged", "en", "payment_card"),
    ("card 4111-1111-1111-1111 charged", "en", "payment_card"),
    ("I live at 42 Wallaby Way, Apt 3", "en", "street_address"),
    ("서울시 강남구 테헤란로 123 으로 보냈어요", "ko", "street_address"),
    ("〒150-0001 に送ってください", "ja", "street_address"),
])
def test_personal_data_is_redacted(text, lang, kind):
    out, found = redact(text, lang)
    assert found.get(kind) == 1, (out, found)
    assert "removed]" in out


@pytest.mark.parametrize("text", [
    "Bought in 2024, model 12345678, 5 stars",
    "Order #1234567890 arrived late",
    "4 out of 5, 10/10 would buy",
    "It holds 1.7 liters and boils in 3 minutes",
    "Card 4111 1111 1111 1112 is not a valid card number",  # fails the Luhn check
])
def test_ordinary_numbers_are_not_personal_data(text):
    assert redact(text, "en") == (text, {})
