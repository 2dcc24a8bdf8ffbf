"""Message catalogues: the widget's (widget/static/i18n/) and the report's (pipeline/i18n/).

Every locale has every key, with the same placeholders, in a message that parses; the lists of
locales agree everywhere they are written down; the codes the widget and the report show have a
message; the disclosure's defined term is the badge the shopper sees, in every locale.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline import i18n
from pipeline.i18n import LOCALES, format_message, parse, placeholders
from schemas.codes import DECISIONS, REASON_CODES, REASON_DESCRIPTIONS
from tests.conftest import ROOT

WIDGET_DIR = ROOT / "widget" / "static" / "i18n"
REPORT_DIR = ROOT / "pipeline" / "i18n"
CATALOGUE_DIRS = {"widget": WIDGET_DIR, "report": REPORT_DIR}


def load(directory: Path, locale: str) -> dict:
    return json.loads((directory / f"{locale}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("which", sorted(CATALOGUE_DIRS))
def test_one_catalogue_per_supported_locale(which):
    assert sorted(p.stem for p in CATALOGUE_DIRS[which].glob("*.json")) == sorted(LOCALES)


@pytest.mark.parametrize("which", sorted(CATALOGUE_DIRS))
@pytest.mark.parametrize("locale", [loc for loc in LOCALES if loc != "en"])
def test_every_catalogue_has_exactly_the_same_keys_and_placeholders(which, locale):
    directory = CATALOGUE_DIRS[which]
    en, other = load(directory, "en"), load(directory, locale)
    assert sorted(other) == sorted(en), (f"{which}/{locale}: missing {sorted(set(en) - set(other))}, "
                                         f"extra {sorted(set(other) - set(en))}")
    for key, text in en.items():
        assert placeholders(other[key]) == placeholders(text), f"{which}/{locale}.json {key!r}: {other[key]!r}"


@pytest.mark.parametrize("which", sorted(CATALOGUE_DIRS))
@pytest.mark.parametrize("locale", LOCALES)
def test_every_message_parses_and_is_not_empty(which, locale):
    for key, text in load(CATALOGUE_DIRS[which], locale).items():
        assert isinstance(text, str) and text.strip() or key == "list_separator", (key, text)
        parse(text)   # raises on unbalanced braces, bad selectors, plural without "other"
        assert "{" not in format_message(text, {name: 2 for name, _ in placeholders(text)}, locale), key


def test_plurals_follow_cldr_for_each_language():
    en, ja = load(WIDGET_DIR, "en"), load(WIDGET_DIR, "ja")
    assert format_message(en["review_count"], {"count": 1}, "en") == "1 review"
    assert format_message(en["review_count"], {"count": 2}, "en") == "2 reviews"
    assert format_message(en["review_count"], {"count": 1234}, "en") == "1,234 reviews"
    assert format_message(ja["review_count"], {"count": 1}, "ja") == "1件のレビュー"
    assert format_message(en["histogram_bar"], {"count": 1, "stars": 5}, "en") == "1 review with 5 stars"
    assert format_message("{n, plural, =0 {none} one {# item} other {# items}}", {"n": 0}, "en") == "none"
    # Japanese, Korean and Chinese have no plural forms: only "other" is needed there.
    for locale in ("ja", "ko", "zh-Hans", "zh-Hant"):
        for key, text in load(WIDGET_DIR, locale).items():
            assert not re.search(r"\bone\s*\{", text), (locale, key)


def test_the_lists_of_locales_agree():
    from widget import serve
    assert serve.LOCALES == LOCALES
    js = (ROOT / "widget" / "static" / "review-widget.js").read_text(encoding="utf-8")
    assert json.loads(re.search(r"var LOCALES = (\[[^\]]*\]);", js).group(1)) == list(LOCALES)
    from apache_beam.options.pipeline_options import PipelineOptions
    from pipeline.options import ModerationOptions
    for locale in LOCALES:
        assert PipelineOptions(["--report_locale", locale]).view_as(ModerationOptions).report_locale == locale
    assert PipelineOptions([]).view_as(ModerationOptions).report_locale == "en"
    with pytest.raises(SystemExit):
        PipelineOptions(["--report_locale", "fr"]).view_as(ModerationOptions).report_locale


def test_widget_catalogue_covers_every_code_it_can_be_shown():
    from pipeline.display import BADGE_ORDER
    from widget.serve import NOT_VERIFIED
    en = load(WIDGET_DIR, "en")
    for code in REASON_CODES + (NOT_VERIFIED, "unspecified"):
        assert f"reason_{code}" in en, code
    for code in BADGE_ORDER:
        assert f"badge_{code}" in en or code == "syndicated", code
    assert {"badge_syndicated", "badge_syndicated_partner"} <= set(en)
    for detector in ("near_duplicate", "fake_classifier"):
        assert f"detector_{detector}" in en
    for sort in ("recent", "rating_desc", "rating_asc"):
        assert f"sort_{sort}" in en


def test_report_catalogue_covers_every_code_and_english_is_codes_json():
    en = load(REPORT_DIR, "en")
    for code in REASON_CODES:
        assert f"reason_label_{code}" in en
        assert en[f"reason_{code}"] == REASON_DESCRIPTIONS[code], "English meanings are codes.json's"
    for decision in DECISIONS:
        assert f"decision_{decision}" in en


@pytest.mark.parametrize("locale", LOCALES)
def test_disclosure_defines_the_badge_the_shopper_sees(locale):
    """The legally meaningful text: each locale defines its own "Verified purchase" badge text, says
    negative reviews are published, and has the same set of statements as English."""
    cat = load(WIDGET_DIR, locale)
    assert cat["badge_verified_purchase"] in cat["moderation_verified"]
    moderation = sorted(k for k in cat if k.startswith("moderation_"))
    assert moderation == sorted(k for k in load(WIDGET_DIR, "en") if k.startswith("moderation_"))
    assert set(placeholders(cat["moderation_automated_used"])) == {("detectors", "arg")}
    assert set(placeholders(cat["moderation_policy"])) == {("id", "arg"), ("version", "arg")}


def test_report_catalogues_ship_with_the_package():
    setup = (ROOT / "setup.py").read_text()
    assert '"i18n/*.json"' in setup
    assert Path(i18n.__file__).parent == REPORT_DIR
    assert not re.search(r"^\s*(from|import)\s+widget", (ROOT / "pipeline" / "report.py").read_text(), re.M)
