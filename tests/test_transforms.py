"""Each stage on its own, applied to beam.Create(...) with TestPipeline and assert_that."""
from __future__ import annotations

import json

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipeline import signing
from pipeline.context import RunContext
from pipeline.policy import DEFAULT_POLICY
from pipeline.transforms.common import safe_map
from pipeline.transforms.decide import Decide, Decided
from pipeline.transforms.detect import DetectFakes
from pipeline.transforms.normalize import normalize_item
from pipeline.transforms.products import SummariseProducts
from pipeline.transforms.provenance import AttachProvenance, to_records
from pipeline.transforms.redelivery import DropRedeliveries, as_conflict, conflict_id
from pipeline.transforms.summary import ConservationError, write_and_check, build_summary
from schemas.records import Decision, InputRef, Item, Review, Source

CTX = RunContext(run_id="run-t", commit="abc", checks=(("text_cleaning", "v"),))


def item(review_id="r1", line=1, uri="a.jsonl", rating=3, body="Fine kettle.", product="p1", **kw) -> Item:
    return Item(review=Review(review_id=review_id, product_id=product, author_id="u", rating=rating, body=body,
                              created_at="2025-01-01T00:00:00Z", **kw),
                ref=InputRef(uri, line), ingested_at="2025-01-01T00:00:01Z")


def by(author, *args, **kw) -> Item:
    import dataclasses
    it = item(*args, **kw)
    return it.replace(review=dataclasses.replace(it.review, author_id=author))


def test_redelivery_keeps_the_first_delivery_and_dead_letters_the_rest():
    other = by("someone-else", "r2", 8, body="Five stars!")
    items = [item("r1", 5), item("r1", 2, body="edited"), item("r2", 3), item("r1", 9, uri="b.jsonl"), other,
             by("someone-else", "r2", 9, body="Five stars!"),
             by("Cafe\u0301", "r3", 1), by("Caf\u00e9", "r3", 2)]   # one author in two Unicode forms
    with BeamTestPipeline() as p:
        kept, dead = p | beam.Create(items) | DropRedeliveries("run-t")
        assert_that(kept | "K" >> beam.Map(lambda it: (it.review.review_id, it.ref.line, it.review_id_conflict)),
                    equal_to([("r1", 2, None), ("r2", 3, "r2"), (conflict_id("r2", "someone-else"), 8, "r2"),
                              ("r3", 1, None)]),
                    label="kept")
        assert_that(dead | "D" >> beam.Map(lambda d: (d.error_code, d.review_id, d.source.uri, d.source.line)),
                    equal_to([("redelivery", "r1", "a.jsonl", 5), ("redelivery", "r1", "b.jsonl", 9),
                              ("redelivery", "r2", "a.jsonl", 9), ("redelivery", "r3", "a.jsonl", 2)]), label="dead")


def test_reusing_an_honest_reviews_id_cannot_bury_it():
    """Attack on principles 1 and 2: a record that reuses an honest complaint's review_id, delivered
    before or after it. Before, the first delivery was kept and the other became a ``redelivery``
    dead letter: delivered first, the forged record buried the complaint. Now each author's review
    is decided on its own, whatever the order; the forged one cannot take the complaint's place."""
    honest = item("r1", 5, rating=1, body="Stopped heating after two days. Refund refused.")
    for forged_line in (1, 9):
        forged = by("attacker", "r1", forged_line, rating=5, body="Great kettle, works fine.")
        with BeamTestPipeline() as p:
            kept, dead = p | f"C{forged_line}" >> beam.Create([honest, forged]) | DropRedeliveries("run-t")
            assert_that(kept | beam.Map(lambda it: (it.review.author_id, it.review.body, it.review_id_conflict)),
                        equal_to([("u", honest.review.body, "r1"), ("attacker", forged.review.body, "r1")]),
                        label="kept")
            assert_that(kept | "Ids" >> beam.Map(lambda it: it.review.review_id)
                        | beam.combiners.ToList() | beam.Map(lambda ids: len(set(ids)) == 2 and "r1" in ids),
                        equal_to([True]), label="ids")
            assert_that(dead, equal_to([]), label="dead")
    outcome = DEFAULT_POLICY.decide(normalize_item(as_conflict(honest, "r1", keeps_id=False)))
    assert outcome.decision == "publish" and outcome.reasons == ("review_id_conflict",)


def test_a_stored_reviews_id_stays_its_authors_across_runs():
    """Session 21: with the signature store, a review_id an earlier run decided for one author stays
    that author's. Another author's record under it is decided under its conflict id (even alone);
    the stored author's resend keeps the id (one author in two Unicode forms is one author); a stored
    conflict id owns nothing; a stored id no record of this run uses yields nothing."""
    from pipeline.dedup.clusters import Fingerprint

    def stored(review_id, author):
        return Fingerprint(review_id, 1.7e9, author, "p1", None, None, "words", 10, b"", b"", True)

    store = [stored("r1", "Caf\u00e9"), stored("r2", "owner"), stored(conflict_id("r3", "x"), "x"),
             stored("r9", "nobody")]
    items = [by("Cafe\u0301", "r1", 1), by("attacker", "r2", 2), by("attacker", "r1", 3), by("owner", "r2", 4),
             by("y", "r3", 5), by("attacker", "r4", 6)]
    with BeamTestPipeline() as p:
        kept, dead = p | beam.Create(items) | DropRedeliveries("run-t", p | "Store" >> beam.Create(store))
        assert_that(kept | beam.Map(lambda it: (it.review.review_id, it.ref.line, it.review_id_conflict)),
                    equal_to([("r1", 1, "r1"), (conflict_id("r1", "attacker"), 3, "r1"),
                              ("r2", 4, "r2"), (conflict_id("r2", "attacker"), 2, "r2"),
                              ("r3", 5, None), ("r4", 6, None)]), label="kept")
        assert_that(dead, equal_to([]), label="dead")
    with BeamTestPipeline() as p:   # alone under a stored id
        kept, _ = p | beam.Create([by("attacker", "r2", 1)]) | DropRedeliveries("run-t", p | "S" >> beam.Create(store))
        assert_that(kept | beam.Map(lambda it: (it.review.review_id, it.review_id_conflict)),
                    equal_to([(conflict_id("r2", "attacker"), "r2")]))


def test_a_conflict_id_is_refused_as_input():
    """No input record can take the id given to a conflicting delivery (two decisions, one id)."""
    from pipeline.transforms.parse import parse_line
    from schemas.records import RawLine
    line = json.dumps({"review_id": conflict_id("r1", "u"), "product_id": "p", "author_id": "a", "rating": 3,
                       "body": "ok", "created_at": "2025-01-01T00:00:00Z"})
    out = parse_line(RawLine(InputRef("a.jsonl", 1), line.encode()), run_id="r", ingested_at="2025-01-01T00:00:01Z")
    assert out.error_code == "invalid_value" and "reserved" in out.error
    ok = json.loads(line) | {"review_id": "r1#conflict-xyz"}
    assert parse_line(RawLine(InputRef("a.jsonl", 1), json.dumps(ok).encode()), run_id="r",
                      ingested_at="2025-01-01T00:00:01Z").review.review_id == "r1#conflict-xyz"


def test_normalize_cleans_detects_language_and_redacts():
    out = normalize_item(item(body="<b>Broke</b> in a week. Email me: a.b@example.com", title="<i>Bad</i>"))
    assert out.clean_body == "Broke in a week. Email me: [email removed]"
    assert out.clean_title == "Bad"
    assert out.language == "en" and out.language_source == "detected"
    assert out.redactions == {"email": 1}
    assert len(out.content_sha256) == 64
    given = normalize_item(item(body="Great", language="EN-gb"))
    assert (given.language, given.language_source) == ("en-GB", "given")


def test_a_stage_failure_costs_one_record_not_the_job():
    def explode_on_r2(it):
        if it.review.review_id == "r2":
            raise ValueError("boom")
        return it

    with BeamTestPipeline() as p:
        good, dead = safe_map(p | beam.Create([item("r1"), item("r2", 2)]), "Explode", explode_on_r2, "normalize", "run-t")
        assert_that(good | "G" >> beam.Map(lambda it: it.review.review_id), equal_to(["r1"]), label="good")
        assert_that(dead | "D" >> beam.Map(lambda d: (d.error_code, d.stage, d.review_id, d.source.line,
                                                      "boom" in d.error)),
                    equal_to([("internal_error", "normalize", "r2", 2, True)]), label="dead")


def test_detectors_that_did_not_run_say_so():
    with BeamTestPipeline() as p:
        out, _, alerts = p | beam.Create([item()]) | DetectFakes()
        assert alerts is None
        assert_that(out | beam.Map(lambda it: sorted((k, s.status) for k, s in it.signals.items())),
                    equal_to([[("author_velocity", "not_run"), ("coordinated_group", "not_run"),
                               ("fake_classifier", "not_run"), ("near_duplicate", "not_run"),
                               ("product_burst", "not_run")]]))


def test_provenance_and_signature_on_published_reviews():
    it = normalize_item(item(rating=1, verified_purchase=True, incentivized=True,
                             source=Source(channel="syndicated", partner="Acme", url="https://acme/r")))
    from pipeline.transforms.detect import mark_not_run
    decided = Decided(mark_not_run(it), DEFAULT_POLICY.decide(it), "2025-01-01T00:00:02Z")
    key = signing.SigningKey("k-t", b"s")
    decision, published = to_records(decided, CTX, key)
    prov = decision.provenance
    assert prov["pipeline"]["commit"] == "abc" and prov["run_id"] == "run-t"
    assert prov["policy"] == {"id": DEFAULT_POLICY.id, "version": DEFAULT_POLICY.version}
    assert prov["input"] == {"uri": "a.jsonl", "line": 1}
    assert prov["source"] == {"channel": "syndicated", "partner": "Acme", "url": "https://acme/r"}
    assert prov["verified_purchase"] is True and prov["incentivized"] is True
    assert {d["id"]: d["status"] for d in prov["detectors"]} == {
        "near_duplicate": "not_run", "fake_classifier": "not_run", "coordinated_group": "not_run",
        "author_velocity": "not_run", "product_burst": "not_run"}
    assert decision.decision == "publish_with_label"
    assert published.to_dict()["provenance"] == prov
    assert signing.verify_published(published.to_dict(), key)


def test_attach_provenance_routes_only_publishable_reviews_to_published():
    items = [normalize_item(item("ok")), normalize_item(item("empty", 2, body="<script>x</script>")),
             normalize_item(item("pii", 3, body="call (415) 555-2671"))]
    with BeamTestPipeline() as p:
        detected, _, _ = p | beam.Create(items) | DetectFakes()
        decided, _ = detected | Decide("run-t")
        decisions, published, restricted, dead, queue = decided | AttachProvenance(CTX)
        assert_that(decisions | "D" >> beam.Map(lambda d: (d.review_id, d.decision)),
                    equal_to([("ok", "publish"), ("empty", "reject"), ("pii", "publish")]), label="decisions")
        assert_that(published | "P" >> beam.Map(lambda r: r.review_id), equal_to(["ok", "pii"]), label="published")
        assert_that(restricted | "R" >> beam.Map(lambda r: (r["review_id"], r["body"])),
                    equal_to([("pii", "call (415) 555-2671")]), label="restricted")
        assert_that(dead, equal_to([]), label="dead")


def decision(product, rating, kind="publish", reasons=(), labels=()):
    return Decision(review_id=f"{product}-{rating}-{kind}", product_id=product, author_id="a", rating=rating,
                    created_at="t", language="en", decision=kind, reasons=tuple(reasons), labels=tuple(labels),
                    redactions={}, signals={}, provenance={})


def test_products_aggregate_published_reviews_and_withheld_reasons():
    syndicated = [{"code": "syndicated", "partner": "brand.example"}]
    rows = [decision("p1", 5), decision("p1", 1), decision("p1", 4.5, "publish_with_label", labels=syndicated),
            decision("p1", 2, "reject", ["duplicate_spam"]), decision("p1", 5, "hold_for_review", ["personal_data", "x"]),
            decision("p2", 3)]
    with BeamTestPipeline() as p:
        docs = p | beam.Create(rows) | SummariseProducts("run-t")
        assert_that(docs | beam.Map(lambda d: d.to_dict()), equal_to([
            {"product_id": "p1", "published_count": 3, "average_rating": 3.5,
             "rating_histogram": {"1": 1, "2": 0, "3": 0, "4": 1, "5": 1},
             "decisions": {"hold_for_review": 1, "publish": 2, "publish_with_label": 1, "reject": 1},
             "withheld_count": 2, "withheld_by_reason": {"duplicate_spam": 1, "personal_data": 1}, "run_id": "run-t",
             "site_review_count": 2, "site_average_rating": 3.0},   # the syndicated 4.5 is not a site review
            {"product_id": "p2", "published_count": 1, "average_rating": 3.0,
             "rating_histogram": {"1": 0, "2": 0, "3": 1, "4": 0, "5": 0}, "decisions": {"publish": 1},
             "withheld_count": 0, "withheld_by_reason": {}, "run_id": "run-t",
             "site_review_count": 1, "site_average_rating": 3.0}]))


def test_summary_conservation_rule(tmp_path):
    ctx = RunContext(run_id="r", output=str(tmp_path))
    counts = [(("input", "lines"), 10), (("decision", "publish"), 7), (("dead_letter", "malformed_json"), 3)]
    assert build_summary(counts, ctx)["conservation"]["ok"]
    summary = write_and_check(counts, ctx)
    assert (tmp_path / "run_summary.json").exists() and summary["input_lines"] == 10
    lost = [(("input", "lines"), 10), (("decision", "publish"), 6), (("dead_letter", "malformed_json"), 3)]
    with pytest.raises(ConservationError, match="difference 1"):
        write_and_check(lost, ctx)
    assert '"ok": false' in (tmp_path / "run_summary.json").read_text()
