"""ClassifyReviews: RunInference with the committed artifact, on TestPipeline/assert_that."""
from __future__ import annotations

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipeline.transforms.classify import ClassifyReviews, OnnxFakeReviewHandler, text_key
from schemas.records import InputRef, Item, Review

EN_GENERATED = "Great product, works as described. Would recommend to anyone looking for a good quality product."
EN_HUMAN = ("Bought this for my dad's workshop. The clamp slipped twice on the first day, so I "
            "filed the jaw a bit and since then it has held fine. Instructions were useless.")


def item(review_id, body, language="en"):
    return Item(review=Review(review_id=review_id, product_id="p", author_id="a", rating=3, body=body,
                              created_at="2025-01-01T00:00:00Z", language=language),
                ref=InputRef("f.jsonl", 1), ingested_at="2025-01-01T00:00:01Z",
                clean_body=body, language=language)


KO_LONG = ("호텔 위치가 정말 좋았고 직원들도 친절했습니다. 방은 조금 작았지만 깨끗했고 조식도 다양해서 "
           "만족스러웠어요. 다음에 서울에 오면 다시 묵고 싶습니다.")
ITEMS = [item("r1", EN_GENERATED), item("r2", EN_GENERATED), item("r3", EN_HUMAN),
         item("r4", EN_HUMAN, "en-GB"), item("j1", "このホテルはとても良かったです。スタッフも親切でした。", "ja"),
         item("u1", "ok ok", None), item("e1", "   ", "en"), item("s1", "Works.", "en"),
         item("k1", KO_LONG, "ko"), item("k2", "굿", "ko")]


def summary(it):
    s = it.signals["fake_classifier"]
    return (it.review.review_id, s.status, s.values.get("band"), s.values.get("probability"))


def test_every_item_gets_one_signal_and_copies_share_one_score():
    with TestPipeline() as p:
        out = p | beam.Create(ITEMS) | ClassifyReviews(max_batch_size=8)
        statuses = out | "S" >> beam.Map(lambda it: (it.review.review_id, it.signals["fake_classifier"].status))
        assert_that(statuses, equal_to([("r1", "scored"), ("r2", "scored"), ("r3", "scored"), ("r4", "scored"),
                                        ("j1", "not_applicable"), ("u1", "not_applicable"),
                                        ("e1", "not_applicable"), ("s1", "not_applicable"),
                                        ("k1", "scored"), ("k2", "not_applicable")]), label="statuses")

        def check(results):
            by_id = {r[0]: r for r in results}
            assert by_id["r1"][3] == by_id["r2"][3]          # exact copies: the same score
            assert by_id["r3"][3] == by_id["r4"][3]
            for rid in ("r1", "r3", "k1"):
                assert 0.0 <= by_id[rid][3] <= 1.0
                assert by_id[rid][2] in ("above_upper", "between", "below_lower")
        assert_that(out | "Sum" >> beam.Map(summary), check, label="scores")


def test_copies_are_scored_once():
    p = TestPipeline()
    _ = p | beam.Create(ITEMS) | ClassifyReviews(max_batch_size=8)
    result = p.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed for c in result.metrics().query(MetricsFilter())["counters"]
                if c.key.metric.namespace == "classify"}
    assert counters["scored"] == 5
    assert counters["scored_unique"] == 3
    assert counters["not_applicable"] == 5


def test_not_applicable_notes_say_why():
    with TestPipeline() as p:
        out = p | beam.Create(ITEMS[4:8] + ITEMS[9:]) | ClassifyReviews()
        notes = out | beam.Map(lambda it: (it.review.review_id, it.signals["fake_classifier"].note.split(";")[0]))
        assert_that(notes, equal_to([("j1", "language 'ja' not evaluated"), ("u1", "language undetermined"),
                                     ("e1", "empty text"), ("s1", "text too short (1 word)"),
                                     ("k2", "text too short (1 char)")]))


class Broken(OnnxFakeReviewHandler):
    def run_inference(self, batch, model, inference_args=None):
        raise ValueError("simulated inference failure")


def _broken():
    from pipeline.classifier.runtime import default_model_dir
    return Broken(str(default_model_dir()))


def test_inference_failure_keeps_reviews_with_not_run_signal():
    with TestPipeline() as p:
        out = p | beam.Create(ITEMS[:3]) | ClassifyReviews(handler=_broken())
        got = out | beam.Map(lambda it: (it.review.review_id, it.signals["fake_classifier"].status,
                                         "simulated inference failure" in it.signals["fake_classifier"].note))
        assert_that(got, equal_to([("r1", "not_run", True), ("r2", "not_run", True), ("r3", "not_run", True)]))


def test_inference_failure_to_dead_letters():
    with TestPipeline() as p:
        items, dead = p | beam.Create(ITEMS[:3] + ITEMS[4:5]) | ClassifyReviews(
            handler=_broken(), dead_letters=True, run_id="run-t")
        assert_that(items | "I" >> beam.Map(lambda it: it.review.review_id), equal_to(["j1"]), label="items")
        assert_that(dead | "D" >> beam.Map(lambda d: (d.review_id, d.error_code, d.stage)),
                    equal_to([("r1", "internal_error", "classify"), ("r2", "internal_error", "classify"),
                              ("r3", "internal_error", "classify")]), label="dead")


def test_text_key_is_sha256_of_text():
    assert text_key("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
