"""The whole batch job over the embedded demo sample: every line accounted for, contracts kept."""
from __future__ import annotations

import json
import re
from collections import Counter

import pytest

import schemas
from pipeline import signing
from pipeline.classifier import runtime
from tests.conftest import DEMO_INPUT, RunOutput, run_pipeline

pytestmark = pytest.mark.slow


def test_summary_matches_what_the_sample_was_made_with(demo_run, demo_expected):
    s = demo_run.summary
    assert s["conservation"]["ok"]
    assert s["input_lines"] == demo_expected["non_blank_lines"]
    assert s["blank_lines"] == demo_expected["blank"]
    assert s["decisions"] == demo_expected["valid_unique"]
    assert s["dead_letters"] == demo_expected["dead_letters"]
    assert s["dead_letters_by_code"] == dict(sorted({**demo_expected["malformed"],
                                                     "redelivery": demo_expected["redelivery"]}.items()))
    schemas.validator("run_summary.schema.json").validate(s)


def test_every_non_blank_line_is_exactly_one_decision_or_dead_letter(demo_run):
    non_blank = {n for n, line in enumerate(DEMO_INPUT.read_bytes().split(b"\n"), 1) if line.strip()}
    seen = Counter()
    for rec in demo_run.records("decisions"):
        seen[rec["provenance"]["input"]["line"]] += 1
    for rec in demo_run.records("dead_letter"):
        seen[rec["source"]["line"]] += 1
    assert set(seen) == non_blank
    assert max(seen.values()) == 1


@pytest.mark.parametrize("name, schema_file", [
    ("decisions", "decision.schema.json"), ("published", "published.schema.json"),
    ("dead_letter", "dead_letter.schema.json"), ("products", "product.schema.json")])
def test_every_output_record_validates_against_its_schema(demo_run, name, schema_file):
    validator = schemas.validator(schema_file)
    records = demo_run.records(name)
    assert records
    for rec in records:
        validator.validate(rec)


def test_published_text_is_plain_and_redacted(demo_run):
    published = demo_run.records("published")
    for rec in published:
        text = f"{rec['title'] or ''} {rec['body']}"
        assert not re.search(r"<\s*(script|img|b|p|style)\b", text, re.I), text
        assert not re.search(r"[\w.]+@[\w-]+\.[a-z]{2,}", text), text
        assert "4111 1111 1111 1111" not in text and "555-2671" not in text
    assert sum("[email removed]" in r["body"] for r in published) >= 4


def test_originals_of_redacted_reviews_are_only_in_restricted_output(demo_run):
    restricted = demo_run.records("restricted/originals")
    assert len(restricted) == demo_run.summary["redacted_reviews"] > 0
    redacted_ids = {r["review_id"] for r in restricted}
    decisions = {d["review_id"]: d for d in demo_run.records("decisions")}
    for review_id in redacted_ids:
        assert decisions[review_id]["redactions"]
        assert "personal_data_redacted" in decisions[review_id]["reasons"]


CLASSIFIER_LANGUAGES = tuple(runtime.read_config(runtime.default_model_dir())["languages"])


def test_every_published_review_carries_provenance_and_a_valid_signature(demo_run):
    for rec in demo_run.records("published"):
        prov = rec["provenance"]
        assert prov["run_id"] == "test-demo"
        assert prov["input"]["uri"].endswith("demo_reviews.jsonl") and prov["input"]["line"] >= 1
        status = {d["id"]: d["status"] for d in prov["detectors"]}
        assert status["near_duplicate"] in ("scored", "not_applicable")
        assert status["fake_classifier"] in ("scored", "not_applicable")
        if (rec["language"] or "").split("-")[0] not in CLASSIFIER_LANGUAGES:
            assert status["fake_classifier"] == "not_applicable", "speaks only for languages it was evaluated on"
        assert signing.verify_published(rec, signing.SigningKey(signing.DEMO_KEY_ID, signing.DEMO_KEY))
    scored_ko = [r for r in demo_run.records("published") if r["language"] == "ko" and {
        d["id"]: d["status"] for d in r["provenance"]["detectors"]}["fake_classifier"] == "scored"]
    assert len(scored_ko) > 100  # Korean reviews are scored since 2.0.0


def test_honest_negative_reviews_are_published(demo_run):
    decisions = demo_run.records("decisions")
    low = [d for d in decisions if d["rating"] <= 2]
    assert len(low) > 400
    withheld = [d for d in low if d["decision"] in ("hold_for_review", "reject")]
    neutral = {"duplicate_spam", "suspected_duplicate", "suspected_fake", "empty_after_cleaning", "abuse",
               "off_topic", "moderator_override"}
    assert all(d["reasons"][0] in neutral for d in withheld)
    assert len(withheld) / len(low) < 0.01
    parity = demo_run.summary["parity"]
    assert parity["ok"], parity["warnings"]
    assert set(parity["by_rating"]) == {"1", "2", "3", "4", "5"}


def test_campaign_copies_are_withheld_and_honest_reviews_are_not(demo_run):
    decisions = {d["review_id"]: d for d in demo_run.records("decisions")}
    camp = [d for rid, d in decisions.items() if rid.startswith("camp-")]
    first = lambda d: d["signals"]["near_duplicate"]["values"]["is_canonical"]  # noqa: E731
    copies = [d for d in camp if not first(d)]
    assert copies and all(d["decision"] in ("hold_for_review", "reject") for d in copies)
    assert sum(d["decision"] == "reject" and d["reasons"][0] == "duplicate_spam" for d in camp) >= 80
    # the first posting of each campaign (first received) is published and queued for a look, since
    # similarity is evidence against the copiers, never against the first poster
    for d in camp:
        if first(d):
            assert d["decision"] == "publish" and "copied_by_others" in d["reasons"], d
    repeats = [d for rid, d in decisions.items() if rid.startswith("repeat-")]
    assert sum(first(d) for d in repeats) == len({d["signals"]["near_duplicate"]["values"]["cluster_id"] for d in repeats})
    assert all(d["decision"] == ("publish" if first(d) else "reject") for d in repeats)
    assert all(d["decision"] == "publish_with_label" for rid, d in decisions.items() if rid.startswith("syn-"))
    assert all(d["decision"] == "publish" for rid, d in decisions.items() if rid.startswith("short-"))


def test_review_queue_has_what_a_moderator_needs(demo_run):
    queue = demo_run.records("review_queue")
    held = [d for d in demo_run.records("decisions")
            if d["decision"] == "hold_for_review" or "copied_by_others" in d["reasons"]]  # post-moderation
    assert {q["review_id"] for q in queue} == {d["review_id"] for d in held} and queue
    for entry in queue:
        assert entry["body"] and entry["reasons"] and entry["signals"] and entry["source"]["line"] >= 1
        if entry["signals"]["near_duplicate"]["values"].get("cluster_id"):
            assert entry["neighbours"] and all(n["review_id"] != entry["review_id"] for n in entry["neighbours"])


def test_report_html_is_self_contained(demo_run):
    from pathlib import Path
    page = (Path(demo_run.prefix) / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") >= 6
    assert "Withheld rate by star rating" in page and "duplicate_spam" in page
    assert "<script" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "loads nothing from anywhere"


def test_labels_come_from_input_metadata(demo_run):
    published = demo_run.records("published")
    syndicated = [r for r in published if r["review_id"].startswith("syn-")]
    assert len(syndicated) == 60
    assert all({"code": "syndicated", "partner": "PartnerMart"} in r["labels"] for r in syndicated)
    assert any({"code": "incentivized"} in r["labels"] for r in published)


def test_products_account_for_every_decision(demo_run):
    products = demo_run.records("products")
    decisions = demo_run.records("decisions")
    assert sum(sum(p["decisions"].values()) for p in products) == len(decisions)
    published_by_product = Counter(r["product_id"] for r in demo_run.records("published"))
    for p in products:
        assert p["published_count"] == published_by_product.get(p["product_id"], 0)
        assert sum(p["rating_histogram"].values()) == p["published_count"]
        assert sum(p["withheld_by_reason"].values()) == p["withheld_count"]


def test_rerun_over_the_same_input_gives_the_same_decisions(demo_run, tmp_path):
    again = RunOutput(str(tmp_path / "again"))
    run_pipeline(str(DEMO_INPUT), again.prefix, "--run_id", "test-demo-retry", classifier=True)

    def key(records):
        return {r["review_id"]: (r["decision"], r["reasons"], r["labels"], r["redactions"], r["signals"],
                                 r["provenance"]["input"], r["provenance"]["content_sha256"]) for r in records}

    assert key(again.records("decisions")) == key(demo_run.records("decisions"))
    assert Counter((d["error_code"], d["source"]["line"]) for d in again.records("dead_letter")) == \
        Counter((d["error_code"], d["source"]["line"]) for d in demo_run.records("dead_letter"))


def test_redelivered_reviews_are_decided_once(demo_run):
    decided = Counter(d["review_id"] for d in demo_run.records("decisions"))
    assert max(decided.values()) == 1
    redelivered = [d for d in demo_run.records("dead_letter") if d["error_code"] == "redelivery"]
    assert redelivered and all(decided[d["review_id"]] == 1 for d in redelivered)
    assert all("already delivered at" in d["error"] for d in redelivered)


def test_outputs_are_json_lines_in_utf8(demo_run):
    from pathlib import Path
    for path in Path(demo_run.prefix).glob("*/*.jsonl"):
        for line in path.read_bytes().splitlines():
            json.loads(line.decode("utf-8"))


def test_decision_records_carry_near_duplicate_signals(demo_run):
    signals = {d["review_id"]: d["signals"]["near_duplicate"] for d in demo_run.records("decisions")}
    by_prefix = {}
    for review_id, signal in signals.items():
        by_prefix.setdefault(review_id.split("-")[0], []).append(signal)
    # the injected campaigns (many accounts, lightly edited copies) are found, as campaigns
    assert all(s["status"] == "scored" and s["values"]["pattern"] == "campaign" and s["values"]["evidence"]
               for s in by_prefix["camp"])
    # one author pasting the same text across products
    assert {s["values"]["pattern"] for s in by_prefix["repeat"]} == {"author_repeat"}
    # declared syndication is provenance, not fraud
    assert all(s["values"]["pattern"] == "syndicated_copy" and not s["values"]["evidence"] for s in by_prefix["syn"])
    # honest short reviews repeated by many people are never evidence
    assert all(s["status"] == "not_applicable" for s in by_prefix["short"])
    assert all(not s["values"].get("evidence") for s in by_prefix["nsmc"] if s["status"] == "scored")
    honest = [s for p in ("en", "ja", "nsmc") for s in by_prefix[p]]
    flagged = sum(1 for s in honest if s["values"].get("evidence"))
    assert flagged / len(honest) < 0.01, flagged
