"""The widget documents: one per product, display fields and badges, most recent first, JSON-LD rules.

Also holds the helpers the other widget tests use to build signed, demo-like runs by hand.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that
from jsonschema import Draft202012Validator

import schemas
from pipeline import signing
from pipeline.display import build_widget_doc, doc_file_name, instant
from pipeline.transforms.widget_docs import BuildWidgetDocs, WriteWidgetDocs

TEST_KEY = signing.SigningKey("k-widget-test", b"widget-test-secret-not-the-demo-key")


def widget_validator():
    schema = schemas.load("widget.schema.json")
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def assert_valid_doc(doc):
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in widget_validator().iter_errors(doc)]
    assert not errors, errors[:5]


def make_published(review_id, product_id, rating, created_at, body="Works as described.", title=None,
                   labels=(), language="en", key=TEST_KEY, run_id="widget-test"):
    """A published record exactly as the pipeline writes one, signed with ``key``."""
    provenance = {
        "pipeline": {"name": "review-moderation", "version": "0.1.0", "commit": None},
        "run_id": run_id,
        "policy": {"id": "minimal-publish-all", "version": "0.1.0"},
        "detectors": [{"id": "near_duplicate", "version": None, "status": "not_run"}],
        "checks": [],
        "input": {"uri": "test.jsonl", "line": 1},
        "ingested_at": "2026-01-01T00:00:00Z", "decided_at": "2026-01-01T00:00:01Z",
        "source": {"channel": "on_site", "partner": None, "url": None},
        "verified_purchase": any(x["code"] == "verified_purchase" for x in labels),
        "incentivized": any(x["code"] == "incentivized" for x in labels),
        "author_relationship": None, "language_source": "given",
        "content_sha256": "0" * 64,
        "signature_scheme": signing.scheme(key),
    }
    unsigned = {"review_id": review_id, "product_id": product_id, "rating": rating, "title": title,
                "body": body, "language": language, "created_at": created_at,
                "labels": [dict(x) for x in labels], "provenance": provenance}
    return {**unsigned, "signature": signing.sign(unsigned, key)}


def make_product(product_id, published, withheld_by_reason=None, run_id="widget-test"):
    """The products/ record for ``published`` (as SummariseProducts would write it)."""
    withheld_by_reason = withheld_by_reason or {}
    ratings = [p["rating"] for p in published]
    hist = {str(s): 0 for s in range(1, 6)}
    for r in ratings:
        hist[str(min(5, max(1, int(r))))] += 1
    site = [p["rating"] for p in published if not any(x["code"] == "syndicated" for x in p["labels"])]
    return {"product_id": product_id, "published_count": len(ratings),
            "average_rating": round(sum(ratings) / len(ratings), 3) if ratings else None,
            "rating_histogram": hist, "decisions": {"publish": len(ratings)},
            "withheld_count": sum(withheld_by_reason.values()), "withheld_by_reason": withheld_by_reason,
            "run_id": run_id, "site_review_count": len(site),
            "site_average_rating": round(sum(site) / len(site), 3) if site else None}


def write_run(prefix: Path, published, products, key=TEST_KEY):
    """Writes published/ and products/ like the pipeline, then the widget documents with WriteWidgetDocs
    (manifests signed with ``key``)."""
    for name, rows in (("published", published), ("products", products)):
        (prefix / name).mkdir(parents=True, exist_ok=True)
        (prefix / name / "part-00000-of-00001.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows), encoding="utf-8")
    with beam.Pipeline() as p:
        pub = p | "Published" >> beam.Create(published)
        prod = p | "Products" >> beam.Create(products)
        (pub, prod) | WriteWidgetDocs(str(prefix), key=key)
    return prefix


VERIFIED = {"code": "verified_purchase"}
SYNDICATED = {"code": "syndicated", "partner": "PartnerShop"}
INCENTIVIZED = {"code": "incentivized"}
EMPLOYEE = {"code": "employee"}


def sample_records():
    return [
        # +09:00 sorts after "Z" as a string, but is the *earlier* instant: order must use instants.
        make_published("r-old", "p1", 5, "2024-01-01T10:00:00+09:00", labels=[INCENTIVIZED, VERIFIED]),
        make_published("r-mid", "p1", 1, "2024-01-01T02:00:00Z", body="Broke after a day.", labels=[VERIFIED]),
        make_published("r-new", "p1", 4.5, "2024-03-01T00:00:00Z", title="Nice", body="From the partner site.",
                       labels=[SYNDICATED]),
        make_published("r-emp", "p1", 3, "2023-12-31T00:00:00Z", labels=[EMPLOYEE]),
        make_published("q-1", "p3", 2, "2024-01-01T00:00:00Z", labels=[SYNDICATED]),
    ]


def sample_products(records):
    return [make_product("p1", [r for r in records if r["product_id"] == "p1"]),
            make_product("p2", [], {"empty_after_cleaning": 2}),
            make_product("p3", [r for r in records if r["product_id"] == "p3"])]


def test_file_names_are_safe_short_and_distinct_for_any_product_id():
    ids = ["a/b", "a_b", "../etc/passwd", "..", ".", "", "ABC", "abc", "ürün-1", "x" * 5000,
           "con", "a b?c*", "\u202egnp.exe", "p1", "P1"]
    names = [doc_file_name(i) for i in ids]
    assert len(set(names)) == len(ids)
    for name in names:
        assert re.fullmatch(r"[a-z0-9._-]{1,60}--[0-9a-f]{16}\.json", name), name
        assert not name.startswith(".")
    assert doc_file_name("blender-02") == doc_file_name("blender-02")
    assert doc_file_name("blender-02").startswith("blender-02--")


def test_build_widget_docs_transform():
    records = sample_records()
    products = sample_products(records)

    def check(docs):
        by_id = {d["product_id"]: d for d in docs}
        assert set(by_id) == {"p1", "p2", "p3"}
        p1, p2, p3 = by_id["p1"], by_id["p2"], by_id["p3"]
        for doc in docs:
            assert_valid_doc(doc)
        # Most recent first, by instant.
        assert [r["review_id"] for r in p1["reviews"]] == ["r-new", "r-mid", "r-old", "r-emp"]
        # Aggregate over ALL published reviews, syndicated included; negative reviews kept.
        assert p1["aggregate"] == {"review_count": 4, "average_rating": 3.375,
                                   "rating_histogram": {"1": 1, "2": 0, "3": 1, "4": 1, "5": 1}}
        assert p1["aggregate"]["review_count"] == products[0]["published_count"]
        badges = {r["review_id"]: [(b["code"], b["text"]) for b in r["badges"]] for r in p1["reviews"]}
        assert badges["r-old"] == [("verified_purchase", "Verified purchase"), ("incentivized", "Incentivized review")]
        assert badges["r-new"] == [("syndicated", "Originally posted on PartnerShop")]
        assert badges["r-emp"] == [("employee", "Written by an employee")]
        assert all(r["signature"] == next(x["signature"] for x in records if x["review_id"] == r["review_id"])
                   for r in p1["reviews"])
        # JSON-LD: syndicated review neither marked up nor counted.
        ld = p1["json_ld"]
        assert ld["@type"] == "Product" and ld["aggregateRating"]["reviewCount"] == 3
        assert ld["aggregateRating"]["ratingValue"] == 3.0
        assert len(ld["review"]) == 3
        assert "From the partner site." not in [r["reviewBody"] for r in ld["review"]]
        assert [r["datePublished"] for r in ld["review"]] == ["2024-01-01", "2024-01-01", "2023-12-31"]
        assert p3["json_ld"] is None  # only a syndicated review: no markup at all
        # A product with nothing published still gets a document with its withheld counts.
        assert p2["reviews"] == [] and p2["aggregate"]["review_count"] == 0
        assert p2["aggregate"]["average_rating"] is None
        assert p2["withheld"] == {"count": 2, "by_reason": {"empty_after_cleaning": 2}}
        assert p2["json_ld"] is None
        assert p1["moderation"]["policy"] == {"id": "minimal-publish-all", "version": "0.1.0"}

    with test_pipeline.TestPipeline() as p:
        docs = (p | "P" >> beam.Create(records), p | "Q" >> beam.Create(products)) | BuildWidgetDocs()
        assert_that(docs, check)


def test_json_ld_marks_up_at_most_one_page_of_reviews():
    records = [make_published(f"r{i:03d}", "big", 1 + i % 5, f"2024-01-{1 + i % 28:02d}T00:00:{i % 60:02d}Z")
               for i in range(35)]
    doc = build_widget_doc("big", records, make_product("big", records))
    assert len(doc["json_ld"]["review"]) == 10
    assert doc["json_ld"]["aggregateRating"]["reviewCount"] == 35
    assert_valid_doc(doc)


def test_write_widget_docs_writes_one_file_per_product(tmp_path):
    records = sample_records()
    prefix = write_run(tmp_path / "run", records, sample_products(records))
    files = sorted(p.name for p in (prefix / "widget").iterdir())
    assert files == sorted(doc_file_name(pid) for pid in ("p1", "p2", "p3"))
    for name in files:
        doc = json.loads((prefix / "widget" / name).read_text(encoding="utf-8"))
        assert doc_file_name(doc["product_id"]) == name
        assert_valid_doc(doc)
    # (no temporary file is left: the listing above holds exactly the documents)


def test_widget_doc_writes_are_idempotent_and_need_no_listing(tmp_path):
    """A retried bundle rewrites the same file; writing never lists the directory (linear in products)."""
    from pipeline.transforms.widget_docs import _WriteDocFn
    fn = _WriteDocFn(str(tmp_path / "widget"))
    doc = build_widget_doc("p/1", [], None)
    for _ in range(3):
        (written,) = list(fn.process(doc))
    assert written == ("p/1", None, None)   # (product, manifest signature, run) for the run index
    assert [p.name for p in (tmp_path / "widget").iterdir()] == [doc_file_name("p/1")]
    assert json.loads((tmp_path / "widget" / doc_file_name("p/1")).read_text()) == json.loads(json.dumps(doc))


@pytest.mark.slow
def test_demo_run_widget_docs_validate_and_agree_with_products(demo_run):
    prefix = Path(demo_run.prefix)
    products = {p["product_id"]: p for p in demo_run.records("products")}
    published = demo_run.records("published")
    docs = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((prefix / "widget").glob("*.json"))]
    assert len(docs) == len(products) and {d["product_id"] for d in docs} == set(products)
    index = json.loads((prefix / signing.RUN_INDEX_FILE).read_text(encoding="utf-8"))
    assert signing.verify_run_index(index, signing.load_signing_key())   # the key the run signed with
    assert index["products"] == {d["product_id"]: d["manifest"]["signature"] for d in docs}
    assert {d["run_id"] for d in docs} == {index["run_id"]} and index["product_count"] == len(docs)
    validator = widget_validator()
    seen = []
    syndicated_ids = {p["review_id"] for p in published if any(x["code"] == "syndicated" for x in p["labels"])}
    for doc in docs:
        errors = list(validator.iter_errors(doc))
        assert not errors, (doc["product_id"], errors[0].message)
        product = products[doc["product_id"]]
        assert doc["aggregate"]["review_count"] == product["published_count"]
        assert doc["aggregate"]["rating_histogram"] == product["rating_histogram"]
        if product["average_rating"] is not None:
            assert doc["aggregate"]["average_rating"] == pytest.approx(product["average_rating"], abs=1e-3)
        assert doc["withheld"] == {"count": product["withheld_count"], "by_reason": product["withheld_by_reason"]}
        times = [r["created_at"] for r in doc["reviews"]]
        assert [instant(t) for t in times] == sorted((instant(t) for t in times), reverse=True)
        seen += [r["review_id"] for r in doc["reviews"]]
        own = [r for r in doc["reviews"] if r["review_id"] not in syndicated_ids]
        if doc["json_ld"]:
            assert doc["json_ld"]["aggregateRating"]["reviewCount"] == len(own)
            assert [r["reviewBody"] for r in doc["json_ld"]["review"]] == [r["body"] for r in own[:10]]
        else:
            assert not own
    assert sorted(seen) == sorted(p["review_id"] for p in published)
    assert syndicated_ids, "the demo sample should contain syndicated reviews"
    assert sum(d["withheld"]["count"] for d in docs) == demo_run.summary["decisions_by_type"].get("reject", 0) \
        + demo_run.summary["decisions_by_type"].get("hold_for_review", 0)
