"""report.html and run_summary.json's ``localized`` block in each --report_locale."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline import report
from pipeline.context import RunContext
from pipeline.i18n import LOCALES, Messages
from pipeline.transforms.summary import write_and_check, build_summary
from tests.conftest import DEMO_INPUT, run_pipeline

# A run whose 1-star reviews were withheld far more often than 4-5 star ones, so the parity warning fires.
COUNTS = [
    (("input", "lines"), 40), (("decision", "publish"), 20), (("decision", "publish_with_label"), 5),
    (("decision", "hold_for_review"), 6), (("decision", "reject"), 4), (("dead_letter", "malformed_json"), 5),
    (("reason", "duplicate_spam"), 4), (("reason", "suspected_duplicate"), 6), (("reason", "disclosure_label"), 5),
    (("language", "ja"), 10), (("language", "ko"), 15), (("language", "en"), 10),
    (("detector", "near_duplicate:scored"), 35), (("detector", "fake_classifier:not_run"), 35),
    (("duplicate_pattern", "campaign"), 4), (("dup_similarity", "0.90"), 5), (("dup_cluster_size", "5-9"), 1),
    (("clf_probability", "0.1"), 3),
    (("rating_outcome", "1:withheld"), 6), (("rating_outcome", "1:shown"), 4), (("rating_outcome", "5:shown"), 20),
    (("rating_outcome", "5:withheld"), 4), (("rating_outcome", "3:shown"), 1),
    (("product_withheld", "grinder-04"), 10), (("published", "all"), 25),
]
ENGLISH_ONLY = ["Review moderation report", "Withheld rate by star rating", "Negative reviews treated like",
                "Why reviews were withheld", "Products with the most withheld", "Input that could not be read",
                "Every input line is accounted for", "held for review", "Near-duplicate clusters by size"]


def summary_in(locale, tmp_path=None):
    return build_summary(COUNTS, RunContext(run_id="r-i18n", output=str(tmp_path or "/nonexistent")), 0.02, locale)


def svg_texts(page):
    """Text drawn in the charts (matplotlib writes <text> elements with svg.fonttype none)."""
    return " ".join(re.sub(r"<[^>]+>", "", t) for t in re.findall(r"<text\b.*?</text>", page, flags=re.S))


@pytest.mark.parametrize("locale", LOCALES)
def test_report_speaks_the_locale_with_chart_labels(locale):
    m = Messages(locale)
    page = report.render(summary_in(locale))
    assert page.startswith(f"<!DOCTYPE html><html lang={locale}>")
    for key in ("title", "h_parity", "h_decisions", "h_reasons", "h_detectors", "h_languages", "h_top_products",
                "h_dead_letters", "col_rating", "col_interval", "col_meaning", "col_error_code"):
        assert m.t(key) in page, key
    charts = svg_texts(page)
    for key in ("chart_parity", "axis_withheld_pct", "chart_decisions", "chart_reasons", "chart_dup_similarity",
                "axis_dup_similarity", "chart_cluster_sizes", "axis_clusters", "chart_dup_patterns",
                "chart_classifier", "chart_languages", "decision_publish", "decision_hold_for_review",
                "reason_label_duplicate_spam", "pattern_campaign"):
        assert m.t(key) in charts, key
    assert m.t("reason_suspected_duplicate") in page
    assert "duplicate_spam" in page and "malformed_json" in page, "codes stay next to their names"
    if locale != "en":
        for text in ENGLISH_ONLY:
            assert text not in page, (locale, text)
    assert "<script" not in page and not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)


@pytest.mark.parametrize("locale", LOCALES)
def test_run_summary_localized_block_and_unchanged_machine_fields(locale, tmp_path):
    english, summary = summary_in("en"), write_and_check(COUNTS, RunContext(run_id="r-i18n", output=str(tmp_path)),
                                                          0.02, locale)
    written = json.loads((tmp_path / "run_summary.json").read_text(encoding="utf-8"))
    assert written["localized"] == summary["localized"]
    human = summary["localized"]
    m = Messages(locale)
    assert human["locale"] == locale
    assert human["conservation"] == m.t("conservation_ok", input_lines=40, decisions=35, dead_letters=5)
    assert human["outcome"] == m.t("outcome", published=25, withheld=10)
    assert len(human["parity_warnings"]) == 1 and human["parity_warnings"][0] in human["parity_verdict"]
    assert "60.00%" in human["parity_warnings"][0] and "16.67%" in human["parity_warnings"][0]
    # What programs read does not depend on the locale.
    for key in ("conservation", "parity", "reasons", "decisions_by_type", "languages", "detectors"):
        assert summary[key] == english[key], key
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert page.startswith(f"<!DOCTYPE html><html lang={locale}>") and m.t("title") in page


def test_the_verdict_says_ok_when_parity_holds():
    counts = [c for c in COUNTS if c[0][0] != "rating_outcome"] + [(("rating_outcome", "1:shown"), 5),
                                                                    (("rating_outcome", "5:shown"), 5)]
    for locale in LOCALES:
        summary = build_summary(counts, RunContext(run_id="r", output="/x"), 0.02, locale)
        assert summary["parity"]["ok"] and summary["localized"]["parity_verdict"] == Messages(locale).t("verdict_ok")
        assert summary["localized"]["parity_warnings"] == []


def test_cjk_chart_labels_use_noto_cjk_when_installed():
    family = report.cjk_font("ja")
    if family is None:
        pytest.fail("no Noto Sans CJK font for matplotlib: apt-get install fonts-noto-cjk")
    page = report.render(summary_in("ja"))
    assert f"'{family}'" in page and "<p class=note>" not in page
    assert report.cjk_font("en") is None


def test_without_a_cjk_font_the_report_is_still_written_and_says_so(monkeypatch, tmp_path, caplog):
    monkeypatch.setattr(report, "cjk_font", lambda locale: None)
    summary = summary_in("ko")
    with caplog.at_level("WARNING", logger="pipeline.report"):
        report.write_report(summary, str(tmp_path / "report.html"), "ko")
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert f"<p class=note>{Messages('ko').t('font_missing')}</p>" in page
    assert Messages("ko").t("chart_parity") in svg_texts(page)
    assert "fonts-noto-cjk" in caplog.text
    # English needs no CJK font: no note.
    assert "<p class=note>" not in report.render(summary_in("en"))


def test_report_locale_reaches_the_job_config_from_the_flags():
    from apache_beam.options.pipeline_options import PipelineOptions
    from pipeline.options import ModerationOptions, configs_from_options

    def locale(*flags):
        return configs_from_options(PipelineOptions(list(flags)).view_as(ModerationOptions)).job.report_locale
    assert locale("--input", "x", "--output", "y", "--report_locale", "zh-Hant") == "zh-Hant"
    assert locale("--input", "x", "--output", "y") == "en"


@pytest.mark.slow
def test_cli_run_with_report_locale(tmp_path):
    """A small real run (the first 60 demo lines) with --report_locale ja."""
    sample = tmp_path / "in.jsonl"
    sample.write_bytes(b"".join(DEMO_INPUT.read_bytes().splitlines(keepends=True)[:60]))
    out = tmp_path / "out"
    summary = run_pipeline(str(sample), str(out), "--report_locale", "ja", "--run_id", "ja-run")
    assert summary["localized"]["locale"] == "ja"
    assert summary["localized"]["conservation"].startswith("すべての入力行が処理されています")
    page = Path(out, "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html><html lang=ja>") and "レビューモデレーション報告書" in page
    assert "星の数ごとの非表示率" in svg_texts(page)


def test_localized_block_validates_against_the_run_summary_schema():
    import schemas
    validator = schemas.validator("run_summary.schema.json")
    for locale in LOCALES:
        summary = summary_in(locale)
        validator.validate(summary)
        assert validator.schema["properties"]["localized"]["properties"]["locale"]["enum"] == list(LOCALES)
