"""The streaming near-duplicate transform, deterministic in event time with TestStream."""
from __future__ import annotations

import datetime as dt
import pickle

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import TimestampedValue

from pipeline.dedup import clusters as cl
from pipeline.dedup.config import DedupConfig
from pipeline.transforms.dedup_stream import StreamingNearDuplicates
from schemas.records import InputRef, Item, Review

pytestmark = pytest.mark.slow
CFG = DedupConfig()
LONG = ("This is hands down the best kettle I have ever owned, amazing quality, super fast shipping "
        "and the seller is so helpful, everyone in my family wants one now")


def ts(day: str) -> float:
    return dt.datetime.fromisoformat(day + "T00:00:00+00:00").timestamp()


def item(review_id, body, day, author, language="en"):
    return TimestampedValue(Item(review=Review(review_id=review_id, product_id="p", author_id=author, rating=5,
                                               body=body, created_at=day + "T00:00:00Z"),
                                 ref=InputRef("pubsub", 1), ingested_at="t", clean_body=body, language=language),
                            ts(day))


def summary(it: Item):
    s = it.signals["near_duplicate"]
    v = s.values
    return (it.review.review_id, s.status, v.get("pattern"), v.get("canonical_review_id"), v.get("cluster_size"))


def test_copies_across_time_with_retention_enforced_by_timers():
    stream = (TestStream()
              .add_elements([item("orig", LONG, "2026-01-01", "a1")])
              .advance_watermark_to(ts("2026-01-05"))
              .add_elements([item("copy", LONG + " wow", "2026-01-10", "a2"),
                             item("short", "재밌어요", "2026-01-10", "k1", language="ko")])
              .add_elements([item("orig", LONG, "2026-01-01", "a1")])  # redelivered, late and out of order
              .advance_watermark_to(ts("2026-06-01"))  # past 90 days for both: the timers prune the buckets
              .add_elements([item("late", LONG + " again", "2026-06-02", "a3")])
              # A late review dated 2026-01-12 is within 90 days of orig and copy, so only the timers'
              # pruning (state gone) keeps it from matching them.
              .add_elements([item("stale", LONG + " stale", "2026-01-12", "a4")])
              .advance_watermark_to_infinity())
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    p = beam.Pipeline(options=options)
    out = p | stream | StreamingNearDuplicates(CFG) | beam.Map(summary)
    assert_that(out, equal_to([
        ("orig", "scored", "none", "orig", 1),
        ("copy", "scored", "campaign", "orig", 2),
        ("short", "not_applicable", None, None, None),
        ("orig", "scored", "campaign", "orig", 2),  # matched the copy, never itself
        ("late", "scored", "none", "late", 1),
        ("stale", "scored", "none", "stale", 1),
    ]))
    p.run().wait_until_finish()


def test_state_per_retained_review_is_small():
    fp = cl.fingerprints([{"review_id": "r" * 12, "created_at": "2026-01-01T00:00:00Z", "author_id": "author-123",
                           "product_id": "product-456", "channel": "on_site", "partner": None,
                           "text": LONG, "language": "en"}], CFG, CFG.signer())[0]
    per_band = len(pickle.dumps(fp._replace(signature=b"")))
    per_review = per_band * CFG.bands_rows[0]
    assert per_review < 12_000, per_review
