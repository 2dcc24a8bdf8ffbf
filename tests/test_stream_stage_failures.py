"""Principle 2 for the stateful streaming stages: a stage that fails on one record costs that record
its signal (``not_run``, with the failure in ``note``) or one derived update, never its outcome, and
never another record's. The failures are injected into the real stage code (monkeypatched helpers),
and the stages run on the DirectRunner in streaming mode, as ``pipeline.stream`` runs them."""
from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import TimestampedValue

from pipeline.behaviour.config import BehaviourConfig
from pipeline.dedup.config import DedupConfig
from tests.test_behaviour import _item as behaviour_item
from tests.test_dedup_stream import LONG, item as dedup_item, ts
from tests.test_stream import streaming_pipeline

pytestmark = pytest.mark.slow


def statuses(it, detectors):
    return (it.review.review_id,) + tuple(
        (it.signals[d].status, "failed" in (it.signals[d].note or "")) for d in detectors)


def run_dedup():
    from pipeline.transforms.dedup_stream import StreamingNearDuplicates
    stream = (TestStream()
              .add_elements([dedup_item("orig", LONG, "2026-01-01", "a1")])
              .advance_watermark_to(ts("2026-01-02"))
              .add_elements([dedup_item("copy", LONG + " wow", "2026-01-03", "a2"),
                             dedup_item("short", "재밌어요", "2026-01-03", "k1", language="ko")])
              .advance_watermark_to(ts("2026-01-10"))   # past the one-day cleanup of an incomplete review
              .advance_watermark_to_infinity())
    p = streaming_pipeline()
    out = p | stream | StreamingNearDuplicates(DedupConfig()) | beam.Map(statuses, ["near_duplicate"])
    return p, out


@pytest.mark.parametrize("broken", [
    "exact_jaccard",      # a band bucket's comparison: only called when a bucket has members (the copy)
    "describe_cluster",   # collecting the bands: only called for a review with matches (the copy)
])
def test_a_dedup_stage_that_fails_on_a_review_leaves_it_not_run_and_the_others_scored(monkeypatch, broken):
    from pipeline.dedup import clusters as cl

    def fail(*args, **kwargs):
        raise ValueError(f"injected: {broken} failed")

    monkeypatch.setattr(cl, broken, fail)
    p, out = run_dedup()
    assert_that(out, equal_to([("orig", ("scored", False)), ("copy", ("not_run", True)),
                               ("short", ("not_applicable", False))]))
    p.run().wait_until_finish()


def test_behaviour_stages_that_fail_on_a_review_leave_it_not_run_and_the_others_scored(monkeypatch):
    from pipeline.transforms import behaviour_stream
    from pipeline.transforms.behaviour_stream import StreamingBehaviour
    real_ts = behaviour_stream._ts

    def broken_for_bad(item):
        if item.review.review_id == "bad":
            raise ValueError("injected: bad timestamp")
        return real_ts(item)

    monkeypatch.setattr(behaviour_stream, "_ts", broken_for_bad)   # both keyed steps read it
    items = [behaviour_item(f"r{k}", f"acct{k % 3}", "kettle", k) for k in range(5)]
    items.insert(2, behaviour_item("bad", "acct1", "kettle", 1))
    stream = TestStream()
    for it in items:
        stream = stream.add_elements([TimestampedValue(it, real_ts(it))])
    stream = stream.advance_watermark_to_infinity()
    p = streaming_pipeline()
    reviews, _alerts = p | stream | StreamingBehaviour(BehaviourConfig())
    detectors = ["product_burst", "author_velocity", "coordinated_group"]
    scored = (("scored", False),) * 3
    assert_that(reviews | beam.Map(statuses, detectors),
                equal_to([(f"r{k}",) + scored for k in range(5)] + [("bad",) + (("not_run", True),) * 3]))
    p.run().wait_until_finish()


def test_product_and_widget_updates_that_fail_for_one_product_keep_the_others(monkeypatch):
    from pipeline.transforms import products as products_mod, widget_docs as widget_mod
    from pipeline.transforms.products import StreamingProductUpdates
    from pipeline.transforms.widget_docs import StreamingWidgetDocs
    from schemas.records import Decision
    from tests.test_widget_docs import make_published
    real_doc, real_widget = products_mod.product_doc, widget_mod.build_widget_doc_within

    def doc_unless_bad(product_id, acc, run_id):
        if product_id == "bad":
            raise ValueError("injected: product update failed")
        return real_doc(product_id, acc, run_id)

    def widget_unless_bad(product_id, *args):
        if product_id == "bad-widget":
            raise ValueError("injected: widget document failed")
        return real_widget(product_id, *args)

    monkeypatch.setattr(products_mod, "product_doc", doc_unless_bad)
    monkeypatch.setattr(widget_mod, "build_widget_doc_within", widget_unless_bad)
    products = ["good", "bad", "bad-widget"]
    decisions = [Decision(review_id=f"{pid}-r", product_id=pid, author_id="a", rating=1, created_at="t",
                          language="en", decision="publish", reasons=(), labels=(), redactions={}, signals={},
                          provenance={}) for pid in products]
    published = [make_published(f"{pid}-r", pid, 1, "2026-01-01T00:00:00Z") for pid in products]
    stream = (TestStream()
              .add_elements([TimestampedValue(("d", d), 0) for d in decisions]
                            + [TimestampedValue(("p", r), 0) for r in published])
              .advance_watermark_to_infinity())
    p = streaming_pipeline()
    decided, records = p | stream | beam.Partition(lambda kv, n: int(kv[0] == "p"), 2)
    docs = decided | "D" >> beam.Map(lambda kv: kv[1]) | StreamingProductUpdates("run")
    widgets = (records | "P" >> beam.Map(lambda kv: kv[1]), docs) | StreamingWidgetDocs()
    assert_that(docs | beam.Map(lambda d: d.product_id), equal_to(["good", "bad-widget"]), label="products")

    def good_and_bad_only(actual):
        assert set(actual) == {"good", "bad"}, actual   # "bad" has no product record, but has its review

    assert_that(widgets | beam.Map(lambda d: d["product_id"]), good_and_bad_only, label="widgets")
    p.run().wait_until_finish()


def test_a_review_whose_band_results_never_all_arrive_goes_on_at_cleanup(monkeypatch):
    """It used to be dropped from state after a day with no outcome; now it goes on, not_run."""
    from pipeline.transforms import dedup_stream
    real = dedup_stream._BandKeysFn.process

    def one_band_lost_for_the_copy(self, item_fp):
        keys = list(real(self, item_fp))
        return keys[1:] if item_fp[1].review_id == "copy" else keys

    monkeypatch.setattr(dedup_stream._BandKeysFn, "process", one_band_lost_for_the_copy)
    p, out = run_dedup()
    assert_that(out, equal_to([("orig", ("scored", False)), ("copy", ("not_run", False)),
                               ("short", ("not_applicable", False))]))
    p.run().wait_until_finish()


def _decision(review_id, rating, product="p", labels=()):
    from schemas.records import Decision
    return Decision(review_id=review_id, product_id=product, author_id="a", rating=rating, created_at="t",
                    language="en", decision="publish", reasons=(), labels=tuple(labels), redactions={}, signals={},
                    provenance={})


def test_a_decision_that_cannot_be_counted_leaves_the_running_totals_as_they_were():
    """Beam's combining state adds in place (DirectRunner) or clears before adding (portable
    runners): a failure half-way through add_input used to leave half-counted totals for good."""
    from pipeline.transforms.products import ProductAggregateFn, StreamingProductUpdates, product_doc
    fn = ProductAggregateFn()
    acc = fn.add_input(fn.create_accumulator(), _decision("a", 5))
    before = repr(acc)
    for bad in (_decision("b", None), _decision("c", 1, labels=["not a dict"])):
        with pytest.raises(Exception):
            fn.add_input(acc, bad)
        assert repr(acc) == before
    stream = (TestStream()
              .add_elements([TimestampedValue(d, 0) for d in (_decision("a", 5), _decision("b", None))])
              .add_elements([TimestampedValue(_decision("c", 1), 0)])
              .advance_watermark_to_infinity())
    p = streaming_pipeline()
    docs = p | stream | StreamingProductUpdates("run")
    assert_that(docs | beam.Filter(lambda d: d.decisions.get("publish") == 2)
                | beam.Map(lambda d: (d.published_count, d.average_rating, d.site_review_count)),
                equal_to([(2, 3.0, 2)]))
    p.run().wait_until_finish()
    assert product_doc("p", acc, "r").published_count == 1


def test_totals_kept_by_an_older_version_claim_no_site_count():
    """A 5-element accumulator from before site reviews were counted: its site totals are unknown
    (None), not a count restarted at the upgrade that would leave every earlier review out of the
    JSON-LD rating; the JSON-LD then counts the reviews the document carries."""
    from collections import Counter

    from pipeline.display import build_widget_doc
    from pipeline.transforms.products import ProductAggregateFn, product_doc
    from tests.test_widget_docs import make_published
    old = [300, 300.0, Counter({"1": 300}), Counter({"publish": 300}), Counter()]
    fn = ProductAggregateFn()
    acc = fn.add_input(list(old), _decision("new", 5))
    merged = fn.merge_accumulators([list(old), fn.add_input(fn.create_accumulator(), _decision("x", 5))])
    for a in (acc, merged):
        doc = product_doc("p", a, "r")
        assert (doc.published_count, doc.site_review_count, doc.site_average_rating) == (301, None, None)
    shown = [make_published(f"r{i}", "p", 5, f"2026-01-01T00:00:{i:02d}Z") for i in range(3)]
    ld = build_widget_doc("p", shown, product_doc("p", acc, "r").to_dict())["json_ld"]["aggregateRating"]
    assert ld["reviewCount"] == 3


def test_the_json_ld_rating_survives_when_the_kept_reviews_are_all_syndicated():
    from pipeline.display import build_widget_doc_within
    from tests.test_widget_docs import make_product, make_published
    syndicated = ({"code": "syndicated", "partner": "brand.example"},)
    site = [make_published(f"s{i}", "p", 1, f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z") for i in range(100)]
    partner = [make_published(f"y{i}", "p", 5, f"2026-01-02T00:{i // 60:02d}:{i % 60:02d}Z", body="\U0001F600" * 20_000,
                              labels=syndicated) for i in range(100)]
    for product in (make_product("p", site + partner), None):
        doc = build_widget_doc_within("p", site + partner, product, 1 << 20)
        assert len(doc["reviews"]) < 100 and all(r["review_id"].startswith("y") for r in doc["reviews"])
        assert doc["aggregate"]["review_count"] == 200 and doc["aggregate"]["rating_histogram"]["1"] == 100
        assert doc["json_ld"]["aggregateRating"]["reviewCount"] == 100
        assert doc["json_ld"]["aggregateRating"]["ratingValue"] == 1.0


def test_a_failure_before_a_burst_alert_is_sent_does_not_mark_it_sent():
    """ProductWindowFn used to record the alert before the rest of its state: a failure after that
    discarded the alert but kept it recorded, so the burst never alerted. Now the next review does."""
    import logging
    import pickle

    from pipeline.transforms import behaviour_stream as bs

    class Bag:
        def __init__(self):
            self.v = []

        def read(self):
            return pickle.loads(pickle.dumps(self.v))

        def add(self, x):
            self.v.append(x)

        def clear(self):
            self.v = []

    class Value:
        v = None

        def read(self):
            return pickle.loads(pickle.dumps(self.v))

        def write(self, x):
            self.v = x

        def clear(self):
            self.v = None

    class Timer:
        fail = False

        def set(self, t):
            if self.fail:
                raise OSError("injected: timer")

    fn = bs.ProductWindowFn(BehaviourConfig())
    recent, days, alerted, gc = Bag(), Value(), Value(), Timer()
    items = ([behaviour_item(f"b{d}", f"u{d}", "kettle", d) for d in range(5)]
             + [behaviour_item(f"x{k}", f"v{k}", "kettle", 60) for k in range(20)])
    alerts, not_run = [], []
    logging.disable(logging.CRITICAL)
    try:
        for it in items:
            gc.fail = it.review.review_id == "x7"   # the review that starts the burst
            for out in fn.process(("kettle", it), recent, days, alerted, gc):
                if hasattr(out, "tag"):
                    alerts.append(out.value["review_id"])
                elif out[1][0] == "review" and out[1][1].signals["product_burst"].status != "scored":
                    not_run.append(out[1][1].review.review_id)
    finally:
        logging.disable(logging.NOTSET)
    assert not_run == ["x7"] and alerts == ["x8"]
