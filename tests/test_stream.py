"""The streaming job's own pieces, deterministic in event time with TestStream (pipeline/stream.py):
event time and allowed lateness, windows and late panes, redelivery state and its retention timer,
per-product running documents, and the whole streaming middle on Pub/Sub-shaped messages."""
from __future__ import annotations

import datetime as dt
import json
import pickle

import apache_beam as beam
import pytest
from apache_beam.io.gcp.pubsub import PubsubMessage
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import window
from apache_beam.transforms.window import TimestampedValue

from pipeline.build import BatchConfig
from pipeline.context import RunContext
from pipeline.io import window_for_files
from pipeline.policy import DEFAULT_POLICY
from pipeline.stream import AssignEventTime, MessagesToLines, StreamConfig, message_line, moderate_stream
from pipeline.transforms.products import ProductUpdateFn
from pipeline.transforms.redelivery import StreamingDropRedeliveries, conflict_id
from schemas.records import Decision, InputRef, Item, Review

pytestmark = pytest.mark.slow
SUB = "projects/p/subscriptions/reviews"
T0 = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.timezone.utc).timestamp()


def iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).isoformat().replace("+00:00", "Z")


def streaming_pipeline() -> beam.Pipeline:
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    return beam.Pipeline(options=options)


def item(review_id: str, created: float, message_id: int = 1, body: str = "fine", author: str = "a") -> Item:
    return Item(review=Review(review_id=review_id, product_id="p", author_id=author, rating=4, body=body,
                              created_at=iso(created)), ref=InputRef(SUB, message_id), ingested_at="t")


def test_message_ids_become_source_lines():
    assert message_line("4711") == 4711
    assert message_line(None) == 1 and message_line("abc") == 1 and message_line("0") == 1


def test_event_time_is_created_at_bounded_by_allowed_lateness():
    stream = (TestStream()
              .add_elements([TimestampedValue(item("on_time", T0 - 30), T0),         # 30 s old: keeps its time
                             TimestampedValue(item("out_of_order", T0 - 90), T0 + 1),
                             TimestampedValue(item("late", T0 - 7200), T0 + 2),       # 2 h old, lateness 1 h
                             TimestampedValue(item("future", T0 + 600), T0 + 3)])     # producer clock ahead
              .advance_watermark_to_infinity())
    p = streaming_pipeline()
    out = (p | stream | beam.ParDo(AssignEventTime(3600))
           | beam.Map(lambda it, ts=beam.DoFn.TimestampParam: (it.review.review_id, float(ts) - T0)))
    assert_that(out, equal_to([("on_time", -30.0), ("out_of_order", -90.0), ("late", 2 - 3600.0),
                               ("future", 3.0)]))
    p.run().wait_until_finish()


def test_windows_fire_on_time_and_again_for_late_data_within_lateness():
    # Event times near 0: DirectRunner's TestStream clock starts at 0, and a processing-time late
    # trigger on present-day event times stalls it there (it fires live: see the emulator test).
    T0 = 0.0
    stream = (TestStream()
              .add_elements([TimestampedValue("a", T0 + 1), TimestampedValue("b", T0 + 7),
                             TimestampedValue("next", T0 + 12)])
              .advance_watermark_to(T0 + 100)                 # both windows close: on-time panes
              .add_elements([TimestampedValue("late", T0 + 3)])  # late, within the allowed lateness
              .advance_processing_time(20)
              .advance_watermark_to_infinity())
    p = streaming_pipeline()

    def describe(kv, win=beam.DoFn.WindowParam, pane=beam.DoFn.PaneInfoParam):
        return (float(win.start) - T0, {0: "early", 1: "on_time", 2: "late"}[pane.timing], sorted(kv[1]))

    out = (p | stream | "FileWindows" >> window_for_files(10, 3600) | beam.Map(lambda x: ("k", x))
           | beam.GroupByKey() | beam.Map(describe) | "Global" >> beam.WindowInto(window.GlobalWindows()))
    assert_that(out, equal_to([(0.0, "on_time", ["a", "b"]), (10.0, "on_time", ["next"]),
                               (0.0, "late", ["late"])]))
    p.run().wait_until_finish()


def test_redelivery_is_one_decision_and_retention_timer_clears_state():
    retention = 3600
    stream = (TestStream()
              .add_elements([TimestampedValue(item("r1", T0, 1), T0)])
              .add_elements([TimestampedValue(item("r1", T0, 2), T0 + 5),                 # Pub/Sub redelivery
                             TimestampedValue(item("r1", T0, 3, body="edited"), T0 + 6),  # producer resend, changed
                             TimestampedValue(item("r2", T0, 4), T0 + 7),
                             TimestampedValue(item("r2", T0, 6, author="someone-else"), T0 + 8),  # id conflict
                             TimestampedValue(item("r2", T0, 7, author="someone-else"), T0 + 9)])  # its resend
              .advance_watermark_to(T0 + retention + 60)   # the timer fires: r1's state is cleared
              .add_elements([TimestampedValue(item("r1", T0, 5), T0 + retention + 70)])
              .advance_watermark_to_infinity())
    p = streaming_pipeline()
    unique, dead = p | stream | StreamingDropRedeliveries("run", retention)
    # another author under r2 is decided on its own (not buried as a redelivery), under its conflict id
    assert_that(unique | beam.Map(lambda it: (it.review.review_id, it.ref.line, it.review_id_conflict)),
                equal_to([("r1", 1, None), ("r2", 4, None), (conflict_id("r2", "someone-else"), 6, "r2"),
                          ("r1", 5, None)]), label="kept")
    assert_that(dead | beam.Map(lambda d: (d.error_code, d.review_id, d.source.line, d.error.split("; ")[-1])),
                equal_to([("redelivery", "r1", 2, "identical content"),
                          ("redelivery", "r1", 3, "content differs, the first delivery is kept"),
                          ("redelivery", "r2", 7, "identical content")]), label="dead")
    p.run().wait_until_finish()


def test_a_conflicting_author_cannot_shorten_the_first_deliverys_retention():
    """Session 20's attack (helper round 2): another author's delivery under the id with an earlier
    event time set the id's timer earlier, so the first delivery's resend within its retention was
    decided a second time under the same id. The timer now only moves later."""
    retention = 3600
    stream = (TestStream()
              .add_elements([TimestampedValue(item("r1", T0, 1, author="a"), T0),
                             TimestampedValue(item("r1", T0, 2, author="b"), T0 - 1800)])   # expires T0 + 1800
              .advance_watermark_to(T0 + 2500)
              .add_elements([TimestampedValue(item("r1", T0, 3, author="a"), T0 + 3000)])   # a's resend
              .advance_watermark_to_infinity())
    p = streaming_pipeline()
    unique, dead = p | stream | StreamingDropRedeliveries("run", retention)
    assert_that(unique | beam.Map(lambda it: (it.review.review_id, it.ref.line)),
                equal_to([("r1", 1), (conflict_id("r1", "b"), 2)]), label="kept")
    assert_that(dead | beam.Map(lambda d: (d.error_code, d.source.line)), equal_to([("redelivery", 3)]), label="dead")
    p.run().wait_until_finish()


def test_redelivery_state_per_retained_review_is_small():
    """What the two redelivery steps keep per review id: IdOwnerFn (8-byte author digest, expiry in
    µs) and FirstDeliveryFn (message id, 8-byte content digest), with their keys."""
    key = "en-00000123".encode("utf-8")
    owner = pickle.dumps((b"\x00" * 8, 1_772_000_000_000_000))
    first = pickle.dumps((2_070_443_601_311_540, b"\x00" * 8))
    assert 2 * len(key) + len(owner) + len(first) < 120, 2 * len(key) + len(owner) + len(first)


def test_a_flood_of_authors_under_one_id_keeps_the_ids_state_constant():
    """Session 20's open point: every other author under one id was kept in that id's state, each new
    author rewriting all of it (quadratic in a flood). Now the id's state is its owner only; each
    author's first delivery is decided once under its conflict id and its resend is a redelivery."""
    from apache_beam.transforms.userstate import ReadModifyWriteStateSpec

    from pipeline.transforms.redelivery import IdOwnerFn
    specs = [v for v in vars(IdOwnerFn).values() if isinstance(v, ReadModifyWriteStateSpec)]
    assert [s.name for s in specs] == ["owner"]
    n = 40
    flood = [TimestampedValue(item("r1", T0, k + 1, author=f"bot{k}"), T0 + k) for k in range(n)]
    resends = [TimestampedValue(item("r1", T0, 100 + k, author=f"bot{k}"), T0 + 100 + k) for k in range(n)]
    stream = TestStream().add_elements(flood).add_elements(resends).advance_watermark_to_infinity()
    p = streaming_pipeline()
    unique, dead = p | stream | StreamingDropRedeliveries("run", 3600)
    assert_that(unique | beam.Map(lambda it: (it.review.review_id, it.ref.line)),
                equal_to([("r1", 1)] + [(conflict_id("r1", f"bot{k}"), k + 1) for k in range(1, n)]), label="kept")
    assert_that(dead | beam.Map(lambda d: (d.error_code, d.review_id, d.source.line,
                                           json.loads(d.raw)["review_id"])),
                equal_to([("redelivery", "r1", 100 + k, "r1") for k in range(n)]), label="dead")
    p.run().wait_until_finish()


def test_product_documents_follow_every_decision():
    def decision(i, product, outcome="publish", rating=4, reasons=()):
        return TimestampedValue(Decision(review_id=f"r{i}", product_id=product, author_id="a", rating=rating,
                                         created_at="x", language="en", decision=outcome, reasons=reasons,
                                         labels=(), redactions={}, signals={}, provenance={}), T0 + i)

    stream = (TestStream()
              .add_elements([decision(1, "p1", rating=5), decision(2, "p2")])
              .add_elements([decision(3, "p1", "hold_for_review", reasons=("duplicate_campaign",))])
              .advance_watermark_to_infinity())
    p = streaming_pipeline()
    docs = (p | stream | beam.Map(lambda d: (d.product_id, d)) | beam.ParDo(ProductUpdateFn("run"))
            | beam.Map(lambda doc: (doc.product_id, doc.published_count, doc.average_rating,
                                    doc.withheld_count, json.dumps(doc.withheld_by_reason))))
    assert_that(docs, equal_to([("p1", 1, 5.0, 0, "{}"), ("p2", 1, 4.0, 0, "{}"),
                                ("p1", 1, 5.0, 1, '{"duplicate_campaign": 1}')]))
    p.run().wait_until_finish()


def review_line(review_id: str, created: float, body: str, author: str = "a1") -> bytes:
    return json.dumps({"review_id": review_id, "product_id": "kettle-01", "author_id": author, "rating": 2,
                       "body": body, "created_at": iso(created)}).encode("utf-8")


LONG = ("The kettle boils fast but the lid hinge cracked after two weeks and the handle gets far too hot "
        "to hold, customer service never answered my emails about a replacement")


def test_an_honest_review_behind_a_squatted_id_is_never_its_own_copy_in_streaming():
    """Session 20's attack: another account delivers R first; the honest review comes later (decided
    under R's conflict id) and its producer resends it after the first delivery's retention. The
    resend was decided as a repeat of itself by its own author (``duplicate_spam``). Now the
    conflicting delivery keeps the id's state alive (the resend is a redelivery); and past that
    retention too, the near-duplicate memory knows the review under either id as one review."""
    day = 86400
    squat = review_line("R", T0, "Great product love it five stars would buy again and tell all my friends", "squatter")
    honest = review_line("R", T0, LONG, "honest")
    msg = lambda i, d, ts: TimestampedValue(PubsubMessage(d, {}, message_id=str(i)), ts)
    ctx = RunContext.create("stream-test", DEFAULT_POLICY, commit="test")
    # (redelivery retention, honest delivery, resend): 90 days: the resend 11 days after the first
    # delivery's retention is a redelivery; 5 days: the resend comes in again as R, past every
    # redelivery state, while the near-duplicate memory (90 days) still holds the conflict id
    for retention, at, resend, again in ((90, 80, 91, False), (5, 3, 14, True)):
        stream = (TestStream().add_elements([msg(1, squat, T0)]).advance_watermark_to(T0 + at * day)
                  .add_elements([msg(2, honest, T0 + at * day)]).advance_watermark_to(T0 + (resend - 1) * day)
                  .add_elements([msg(3, honest, T0 + resend * day)]).advance_watermark_to_infinity())
        cfg = StreamConfig(base=BatchConfig(input=SUB, output="", classifier=None), input_subscription=SUB,
                           redelivery_retention_days=retention)
        p = streaming_pipeline()
        out = moderate_stream(p | stream | beam.ParDo(MessagesToLines(SUB, 1 << 20)), ctx, cfg, DEFAULT_POLICY)
        expected = [("R", "squatter", "publish", ()),
                    (conflict_id("R", "honest"), "honest", "publish", ("review_id_conflict",))]
        assert_that(out["decisions"] | beam.Map(lambda d: (d.review_id, d.author_id, d.decision, d.reasons)),
                    equal_to(expected + ([("R", "honest", "publish", ())] if again else [])), label="decisions")
        assert_that(out["dead_letters"] | beam.Map(lambda d: (d.error_code, d.source.line)),
                    equal_to([] if again else [("redelivery", 3)]), label="dead_letters")
        p.run().wait_until_finish()


def test_streaming_middle_on_pubsub_messages():
    """Parse → redelivery → normalise → near-duplicates across time → decide → provenance, from messages."""
    msgs = [
        (1, review_line("r1", T0 - 10, LONG, "a1"), T0),
        (2, b"{not json", T0 + 1),
        (3, review_line("r1", T0 - 10, LONG, "a1"), T0 + 2),            # redelivered
        (4, review_line("r2", T0 - 7200, "Great kettle, works well, quick to boil and quiet too.", "a2"), T0 + 3),
    ]
    later = [(5, review_line("r3", T0 + 86400 * 20, LONG + " really", "a3"), T0 + 86400 * 20)]  # a copy 20 days on
    stream = (TestStream()
              .add_elements([TimestampedValue(PubsubMessage(d, {}, message_id=str(i)), ts) for i, d, ts in msgs])
              .advance_watermark_to(T0 + 86400 * 10)
              .add_elements([TimestampedValue(PubsubMessage(d, {}, message_id=str(i)), ts) for i, d, ts in later])
              .advance_watermark_to_infinity())
    policy = DEFAULT_POLICY
    cfg = StreamConfig(base=BatchConfig(input=SUB, output="", classifier=""), input_subscription=SUB)
    ctx = RunContext.create("stream-test", policy, commit="test")
    p = streaming_pipeline()
    lines = p | stream | beam.ParDo(MessagesToLines(SUB, 1 << 20))
    out = moderate_stream(lines, ctx, cfg, policy)

    def decided(d):
        nd = d.signals["near_duplicate"]["values"]
        return (d.review_id, d.provenance["input"]["line"], nd.get("pattern"), nd.get("canonical_review_id"),
                d.signals["fake_classifier"]["status"])

    # the classifier scores every English review in streaming too ("not_run" when a join of items and
    # scores fired per element before the score arrived)
    assert_that(out["decisions"] | beam.Map(decided),
                equal_to([("r1", 1, "none", "r1", "scored"), ("r2", 4, "none", "r2", "scored"),
                          ("r3", 5, "campaign", "r1", "scored")]),
                label="decisions")
    # Decisions keep their review's event time through every grouping inside the stages (classifier,
    # review queue): the windowed files are cut by it. End-of-global-window timestamps would put
    # them in a file window that never closes, and their files would never be written.
    assert_that(out["decisions"] | beam.Map(lambda d, ts=beam.DoFn.TimestampParam: (d.review_id, float(ts) - T0)),
                equal_to([("r1", -10.0), ("r2", 3 - 3600.0), ("r3", 86400 * 20.0)]), label="event_time")
    assert_that(out["dead_letters"] | beam.Map(lambda d: (d.error_code, d.source.uri, d.source.line)),
                equal_to([("malformed_json", SUB, 2), ("redelivery", SUB, 3)]), label="dead_letters")
    assert_that(out["products"] | beam.Map(lambda doc: (doc.product_id, doc.published_count + doc.withheld_count)),
                equal_to([("kettle-01", 1), ("kettle-01", 2), ("kettle-01", 3)]), label="products")
    # widget documents stay current: the last state shows both published reviews and the held copy
    def latest_state(docs):
        assert docs and {d[0] for d in docs} == {"kettle-01"}
        assert max(d[1] for d in docs) == 2 and max(d[2] for d in docs) == 1, docs

    assert_that(out["widget_docs"] | beam.Map(lambda d: (d["product_id"], len(d["reviews"]), d["withheld"]["count"])),
                latest_state, label="widget_docs")
    p.run().wait_until_finish()


def test_every_stateful_step_of_the_streaming_middle_has_a_deterministic_key_coder(caplog):
    """State is per key; a key coder that is not deterministic (Beam's default for untyped keys)
    can split one review id's or product's state in two on a runner that compares encoded keys."""
    cfg = StreamConfig(base=BatchConfig(input=SUB, output="", classifier=""), input_subscription=SUB)
    p = streaming_pipeline()
    lines = p | TestStream().advance_watermark_to_infinity() | beam.ParDo(MessagesToLines(SUB, 1 << 20))
    with caplog.at_level("WARNING", logger="apache_beam"):
        moderate_stream(lines, RunContext.create("stream-test", DEFAULT_POLICY, commit="test"), cfg, DEFAULT_POLICY)
    assert not [r.getMessage() for r in caplog.records if "may not be deterministic" in r.getMessage()]


def test_streaming_usage_errors_exit_2(capsys):
    from pipeline.run import main
    assert main(["--streaming", "--output", "out/x"]) == 2
    assert main(["--streaming", "--input_subscription", SUB]) == 2
    assert main(["--streaming", "--input_subscription", SUB, "--input", "x.jsonl", "--output", "o"]) == 2
    assert "--input_subscription" in capsys.readouterr().err


def test_widget_documents_once_per_product_per_bundle_with_the_latest_state():
    """A product's widget document (up to 200 reviews, ~85 KB) is built once per bundle from the
    product's latest state, not after each of its events; the newest 200 reviews are kept."""
    from pipeline.transforms.widget_docs import StreamingWidgetDocs, WidgetDocFn
    from tests.test_widget_docs import make_published

    def published(i, product):
        return make_published(f"{product}-r{i:03d}", product, 1 + i % 5, iso(T0 + i))

    first = [published(i, "p1") for i in range(5)] + [published(i, "p2") for i in range(2)]
    many = [published(i, "p3") for i in range(WidgetDocFn.MAX_REVIEWS + 3)]
    stream = (TestStream()
              .add_elements([TimestampedValue(r, T0) for r in first])
              .advance_watermark_to(T0 + 10)
              .add_elements([TimestampedValue(published(5, "p1"), T0 + 20)])
              .advance_watermark_to(T0 + 30)
              .add_elements([TimestampedValue(r, T0 + 40) for r in many])
              .advance_watermark_to_infinity())
    p = streaming_pipeline()
    records = p | stream
    products = p | "NoProducts" >> beam.Create([])
    docs = (records, products) | StreamingWidgetDocs()
    assert_that(docs | beam.Map(lambda d: (d["product_id"], len(d["reviews"]))),
                equal_to([("p1", 5), ("p2", 2), ("p1", 6), ("p3", WidgetDocFn.MAX_REVIEWS)]))
    newest = {f"p3-r{i:03d}" for i in range(3, WidgetDocFn.MAX_REVIEWS + 3)}
    assert_that(docs | beam.Filter(lambda d: d["product_id"] == "p3")
                | beam.Map(lambda d: {r["review_id"] for r in d["reviews"]} == newest),
                equal_to([True]), label="newest_kept")
    p.run().wait_until_finish()


def test_a_streaming_widget_document_fits_one_pubsub_message_however_long_the_reviews():
    """200 reviews of 20,000 emoji each would make a 16 MB document, over the 10 MB real Pub/Sub
    accepts. The document carries only the most recent reviews that fit in WidgetDocFn.MAX_BYTES,
    and its aggregate still counts all 200 (the product's running totals)."""
    from pipeline.display import safe_json
    from pipeline.transforms.widget_docs import StreamingWidgetDocs, WidgetDocFn
    from schemas.records import ProductDoc
    from tests.test_widget_docs import make_product, make_published
    body = "\U0001F600" * 20_000
    huge = [make_published(f"h-{i:03d}", "p", 1 + i % 5, iso(T0 + i), body=body) for i in range(200)]
    stream = (TestStream()
              .add_elements([TimestampedValue(ProductDoc(**make_product("p", huge)), T0)])
              .advance_watermark_to(T0 + 1)
              .add_elements([TimestampedValue(r, T0 + 1) for r in huge])
              .advance_watermark_to_infinity())
    p = streaming_pipeline()
    records, products = p | stream | beam.Partition(lambda x, n: int(isinstance(x, ProductDoc)), 2)
    docs = (records, products) | StreamingWidgetDocs() | beam.Filter(lambda d: d["reviews"])

    def check(doc):
        size = len(safe_json(doc).encode("utf-8"))
        carried = [r["review_id"] for r in doc["reviews"]]
        newest = [f"h-{i:03d}" for i in range(199, 199 - len(carried), -1)]
        return (size <= WidgetDocFn.MAX_BYTES, 1 <= len(carried) < 200, carried == newest,
                doc["aggregate"]["review_count"], doc["json_ld"]["aggregateRating"]["reviewCount"])

    assert_that(docs | beam.Map(check), equal_to([(True, True, True, 200, 200)]))
    p.run().wait_until_finish()


def test_outputs_are_encoded_once_for_topics_and_files():
    """EncodeOutputsFn: dead letters to the dead-letter topic, other events to the events topic with
    kind and ids as attributes, and the file line identical to the event payload (one encoding)."""
    from pipeline.stream import DEAD_EVENTS, EVENTS, FILES, EncodeOutputsFn
    from schemas.records import DeadLetter
    dead = DeadLetter(error_code="malformed_json", error="x", raw="{", source=InputRef(SUB, 7), stage="parse",
                      run_id="r")
    doc = {"product_id": "p1", "reviews": []}
    fn = EncodeOutputsFn(events="projects/p/topics/events", dead_events="projects/p/topics/dead", files=True)
    out = {}
    for name, record in (("dead_letters", dead), ("widget_docs", doc), ("restricted", {"review_id": "r9"})):
        for tagged in fn.process((name, record)):
            out.setdefault((name, tagged.tag), []).append(tagged.value)
    assert set(out) == {("dead_letters", DEAD_EVENTS), ("dead_letters", FILES), ("widget_docs", EVENTS),
                        ("widget_docs", FILES), ("restricted", FILES)}
    ((folder, shard), line), = out[("dead_letters", FILES)]
    assert folder == "dead_letter" and shard == 0 and out[("dead_letters", DEAD_EVENTS)][0].data == line.encode("utf-8")
    message = out[("widget_docs", EVENTS)][0]
    assert message.attributes == {"kind": "widget_document", "product_id": "p1"}
    assert out[("widget_docs", FILES)][0] == (("widget_updates", 0), message.data.decode("utf-8"))
    assert out[("restricted", FILES)][0][0] == ("restricted/originals", 0)
    # no topic configured: nothing for it
    assert [t.tag for t in EncodeOutputsFn(None, None, True).process(("dead_letters", dead))] == [FILES]


def test_streaming_graph_publishes_with_beams_sink_off_the_direct_runner(tmp_path):
    """Off the DirectRunner (Dataflow; here the FnApiRunner, which builds offline) the events and dead
    letters go through Beam's WriteToPubSub (Dataflow's native sink); on the DirectRunner they are
    published from the encoding step. Files either way."""
    from apache_beam.pipeline import PipelineVisitor
    from apache_beam.runners.direct.direct_runner import DirectRunner
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    from pipeline.stream import build_stream_pipeline

    class Labels(PipelineVisitor):
        def __init__(self):
            self.labels = []

        def enter_composite_transform(self, node):
            self.labels.append(node.full_label)

        def visit_transform(self, node):
            self.labels.append(node.full_label)

    sub = "projects/shop-1/subscriptions/reviews"
    cfg = StreamConfig(base=BatchConfig(input=sub, output=str(tmp_path), classifier=""), input_subscription=sub,
                       output_topic="projects/shop-1/topics/events", dead_letter_topic="projects/shop-1/topics/dead")
    ctx = RunContext.create("graph-test", DEFAULT_POLICY, commit="test")
    for runner, beams_sink in ((DirectRunner(), False), (FnApiRunner(), True)):
        p = beam.Pipeline(runner=runner, options=PipelineOptions(["--streaming"]))
        build_stream_pipeline(p, cfg, ctx, DEFAULT_POLICY)
        visitor = Labels()
        p.visit(visitor)
        assert ("WriteEvents" in visitor.labels and "WriteDeadLetterTopic" in visitor.labels) == beams_sink, runner
        assert "EncodeOutputs" in visitor.labels and "WriteFiles" in visitor.labels


def test_demo_publishes_every_sample_line_as_given_unless_it_can_retime_it():
    """The demo (and make bench-stream) re-times parseable reviews and sends every other line as it
    is, including the sample's too-deeply-nested JSON, which used to stop a 50 msg/s run."""
    import random

    from pipeline.local.stream_demo import load_sample, retime
    rng = random.Random(7)
    deep = b"[" * 100_000 + b"]" * 100_000
    assert retime(deep, T0, rng, late=False) == deep
    assert retime(b"{not json", T0, rng, late=False) == b"{not json"
    review = json.loads(retime(review_line("r1", T0 - 86400, "fine", "a1"), T0, rng, late=False))
    assert T0 - 2 <= dt.datetime.fromisoformat(review["created_at"].replace("Z", "+00:00")).timestamp() <= T0
    lines = load_sample(3000)
    assert len(lines) > 2800 and all(retime(line, T0, rng, late=False) for line in lines)


def test_demo_clears_the_previous_runs_files(tmp_path):
    """File names depend only on the window: a previous demo run's files under the same output
    would count as this run's and could hide a missing decision."""
    from pipeline.local.stream_demo import clear_previous_run
    old = tmp_path / "decisions" / "part-old.jsonl"
    old.parent.mkdir()
    old.write_text('{"review_id": "stale"}\n')
    keep = tmp_path / "notes.txt"
    keep.write_text("mine")
    clear_previous_run(str(tmp_path))
    assert not old.exists() and keep.exists()


def test_output_attributes_fit_pubsubs_1024_bytes():
    """Pub/Sub takes attribute values of at most 1024 *bytes*: 300 emoji are 1,200."""
    from pipeline.stream import to_message
    message = to_message("dead_letter", {"review_id": "\U0001F600" * 300, "product_id": "p"})
    value = message.attributes["review_id"]
    assert len(value.encode("utf-8")) <= 1024 and value == "\U0001F600" * 256


def test_a_streaming_widget_aggregate_counts_every_published_review():
    """A product with 50 honest 1-star reviews, then 200 newer 5-star ones: the document keeps the
    200 most recent, but its aggregate must not drop the 1-star reviews (it did: it summarised only
    the reviews the document carries)."""
    from pipeline.display import build_widget_doc
    from tests.test_widget_docs import make_product, make_published
    old = [make_published(f"bad-{i}", "p", 1, iso(T0 + i), body="Broke.") for i in range(50)]
    new = [make_published(f"good-{i}", "p", 5, iso(T0 + 100 + i), body="Great.") for i in range(200)]
    doc = build_widget_doc("p", new, make_product("p", old + new))
    assert len(doc["reviews"]) == 200
    assert doc["aggregate"]["review_count"] == 250 and doc["aggregate"]["rating_histogram"]["1"] == 50
    assert doc["aggregate"]["average_rating"] == round((50 + 1000) / 250, 3)
    rating = doc["json_ld"]["aggregateRating"]   # what search engines show: the same totals
    assert rating["reviewCount"] == 250 and rating["ratingValue"] == round((50 + 1000) / 250, 2)
    assert build_widget_doc("p", new, None)["aggregate"]["review_count"] == 200   # no product record: what it has


def test_a_streaming_json_ld_rating_counts_every_site_review_and_no_syndicated_one():
    """The product's running site totals come from the real combiner (ProductAggregateFn): 30 honest
    1-star site reviews, 20 syndicated 5-star ones, then 200 newer 5-star site reviews. The
    JSON-LD AggregateRating counts the 230 site reviews (the 1-star ones too), never the syndicated."""
    from pipeline.display import build_widget_doc
    from pipeline.transforms.products import ProductAggregateFn, product_doc
    from tests.test_widget_docs import make_published
    syndicated = ({"code": "syndicated", "partner": "brand.example"},)
    old = [make_published(f"bad-{i}", "p", 1, iso(T0 + i)) for i in range(30)]
    partner = [make_published(f"syn-{i}", "p", 5, iso(T0 + 40 + i), labels=syndicated) for i in range(20)]
    new = [make_published(f"good-{i}", "p", 5, iso(T0 + 100 + i)) for i in range(200)]
    fn = ProductAggregateFn()
    acc = fn.create_accumulator()
    for p in old + partner + new:
        acc = fn.add_input(acc, Decision(review_id=p["review_id"], product_id="p", author_id="a", rating=p["rating"],
                                         created_at=p["created_at"], language="en", decision="publish", reasons=(),
                                         labels=tuple(p["labels"]), redactions={}, signals={}, provenance={}))
    product = product_doc("p", fn.extract_output(acc), "run").to_dict()
    assert (product["published_count"], product["site_review_count"]) == (250, 230)
    doc = build_widget_doc("p", new, product)
    rating = doc["json_ld"]["aggregateRating"]
    assert rating["reviewCount"] == 230 and rating["ratingValue"] == round((30 + 1000) / 230, 2)
    assert doc["aggregate"]["review_count"] == 250 and doc["aggregate"]["rating_histogram"]["1"] == 30


def test_the_direct_publisher_cuts_requests_by_count_and_by_bytes():
    """Real Pub/Sub refuses a publish request over 10 MB: 500 widget documents of 1 MiB each must not
    go in one request. Order is kept, and every message goes in exactly one request."""
    from pipeline.direct_runner import PUBLISH_MAX_BYTES, PUBLISH_MAX_MESSAGES, publish_requests
    big = [PubsubMessage(b"x" * (1 << 20), {"kind": "widget_document", "i": str(i)}) for i in range(30)]
    small = [PubsubMessage(b"{}", {"kind": "decision"}) for _ in range(1200)]
    huge = [PubsubMessage(b"y" * (PUBLISH_MAX_BYTES + 1), {})]
    for messages in (big, small, big + small + huge + small[:3]):
        requests = list(publish_requests(messages))
        assert [m for r in requests for m in r] == messages
        for r in requests:
            assert len(r) <= PUBLISH_MAX_MESSAGES
            assert len(r) == 1 or sum(len(m.data) for m in r) <= PUBLISH_MAX_BYTES
    assert max(len(r) for r in publish_requests(big)) == 8   # 8 MiB + attributes ≤ 9 MB
    assert [len(r) for r in publish_requests(small)] == [500, 500, 200]
