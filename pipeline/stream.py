"""The streaming job: reviews from Pub/Sub through the same stages as batch, out to Pub/Sub and files.

    ReadFromPubSub (publish time) → MessagesToLines → ParseReviews → AssignEventTime (created_at,
      bounded by the allowed lateness) → moderate() from pipeline/build.py with
        StreamingDropRedeliveries (transforms/redelivery.py: state per review_id, retention timer)
        and DetectFakes(streaming=True) (transforms/dedup_stream.py: band buckets, retention timers;
        transforms/behaviour_stream.py: reviewers per product, co-reviews per author, GC timers)
      → decisions, published, restricted, review queue, dead letters
      → StreamingProductUpdates (transforms/products.py) → StreamingWidgetDocs (transforms/widget_docs.py)
    → events topic: one ``decision`` event per review, the signed ``published`` record, a
      ``product`` document (running totals) and a ``widget_document`` after every decision; a
      ``product_alert`` when a product enters a review burst (never a reason to withhold)
    → dead-letter topic: every dead letter
    → windowed files under --output (io.WriteWindowedFiles): published/, decisions/,
      dead_letter/, restricted/originals/, review_queue/, widget_updates/, product_alerts/
      → StreamingWidgetIndex (transforms/widget_docs.py): a signed, chained link per widget_updates/
        file under widget_index/ (what pipeline.verify and widget.serve check documents against)
  (the outputs are tagged, flattened and serialised once, EncodeOutputsFn, then written by one
  writer per topic and one windowed file writer: see OUTPUTS)

The launcher (``pipeline/run.py``) builds this graph for ``--streaming`` and runs it.

Batch and streaming differ only at the ends: parsing, normalisation, detection, the policy and
provenance are the objects ``build.moderate`` applies in both.

**Event time.** Pub/Sub stamps each message with its publish time, and the source's watermark
follows publish time. Each review then gets event time ``created_at``, clamped to
``[publish − allowed_lateness, publish]``: a review created within the allowed lateness (default
1 h) keeps its own time, out of order or not; an older one (an import, a replay) is counted in
``stream/late_beyond_allowed_lateness`` and placed at the edge of the lateness, so its window
is still open: it is decided and written like any other, never dropped. A ``created_at`` after
its publish time (producer clock skew) is counted and placed at the publish time. The windowed
files fire when the watermark passes the window and again, for late reviews, 10 s after the
first late one; their allowed lateness covers the clamp.

**Exactly-once effect.** Pub/Sub delivers at least once, and producers retry. Reviews are keyed
by ``review_id`` into a stateful DoFn (``transforms/redelivery.py``): the first delivery is
decided, any later one within ``--redelivery_retention_days`` becomes a ``redelivery`` dead
letter naming the first delivery's message. The near-duplicate buckets never compare a review
with itself either.

**Source references.** ``input`` in provenance and ``source`` in dead letters are
``{"uri": <subscription or topic>, "line": <Pub/Sub message id>}`` (message ids are decimal
integers; a non-numeric id, which the service does not give, would be recorded as 1).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Dict, Optional

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms import trigger, window
from apache_beam.utils.timestamp import MIN_TIMESTAMP, Duration, Timestamp

from pipeline import direct_runner, signing
from pipeline.build import BatchConfig, count_dead_letter, moderate
from pipeline.context import RunContext
from pipeline.files import to_json_line
from pipeline.io import WriteWindowedFiles, shard_of
from pipeline.timestamps import epoch_seconds
from pipeline.transforms.parse import ParseReviews
from pipeline.transforms.products import StreamingProductUpdates
from pipeline.transforms.redelivery import StreamingDropRedeliveries
from pipeline.transforms.widget_docs import StreamingWidgetDocs, StreamingWidgetIndex
from schemas.records import InputRef, Item, RawLine

LOG = logging.getLogger("pipeline")
STAGE = "stream"


@dataclass(frozen=True)
class StreamConfig:
    """What the streaming job needs besides the shared stage settings in ``base`` (a BatchConfig)."""

    base: BatchConfig
    input_subscription: Optional[str] = None
    input_topic: Optional[str] = None
    output_topic: Optional[str] = None
    dead_letter_topic: Optional[str] = None
    window_s: int = 60
    allowed_lateness_s: int = 3600
    redelivery_retention_days: int = 90
    pubsub_id_label: Optional[str] = None

    @property
    def source(self) -> str:
        return self.input_subscription or self.input_topic or ""

    @property
    def output(self) -> Optional[str]:
        return self.base.output or None


# -- source ---------------------------------------------------------------------------------

def message_line(message_id: Optional[str]) -> int:
    """A Pub/Sub message id as the ``line`` of an InputRef (ids are decimal integers)."""
    text = str(message_id or "")
    return int(text) if text.isdigit() and int(text) >= 1 else 1


class MessagesToLines(beam.DoFn):
    """PubsubMessage (or bytes) → RawLine with ref (source, message id); size limit as in batch."""

    def __init__(self, source: str, max_line_bytes: int):
        self._source = source
        self._max = max_line_bytes
        self._messages = Metrics.counter(STAGE, "messages")

    def process(self, message):
        data = getattr(message, "data", message) or b""
        message_id = getattr(message, "message_id", None)
        self._messages.inc()
        truncated = len(data) > self._max
        yield RawLine(ref=InputRef(uri=self._source, line=message_line(message_id)),
                      data=data[:self._max] if truncated else data, truncated=truncated)


class AssignEventTime(beam.DoFn):
    """Item with publish-time timestamp → the same item at event time ``created_at`` (clamped, see module doc)."""

    def __init__(self, allowed_lateness_s: int):
        self._lateness = allowed_lateness_s
        self._late = Metrics.counter(STAGE, "late_beyond_allowed_lateness")
        self._future = Metrics.counter(STAGE, "created_at_after_publish_time")

    def process(self, item: Item, published=beam.DoFn.TimestampParam):
        created = Timestamp(seconds=epoch_seconds(item.review.created_at))
        if published is None or published <= MIN_TIMESTAMP:
            yield window.TimestampedValue(item, created)
            return
        earliest = published - Duration(seconds=self._lateness)
        if created < earliest:
            self._late.inc()
            created = earliest
        elif created > published:
            self._future.inc()
            created = published
        yield window.TimestampedValue(item, created)


# -- the graph ------------------------------------------------------------------------------

def moderate_stream(lines, ctx: RunContext, cfg: StreamConfig, policy) -> Dict[str, Any]:
    """PCollection[RawLine] (publish-time timestamps) → decisions, published, restricted, products,
    dead_letters: the streaming job without its source and sinks (tests feed it from TestStream)."""
    base = cfg.base
    # The global window never expires (state and decisions never drop late data); a trigger per
    # element lets any grouping inside the shared stages (the classifier's copies-by-text, the review
    # queue's CoGroupByKey) fire as data arrives instead of at the end of a stream that never ends.
    # Their panes are stamped with their earliest element's event time: the default (end of the
    # window) would put every grouped record in a file window that never closes.
    lines = lines | "FirePerElement" >> beam.WindowInto(
        window.GlobalWindows(), trigger=trigger.Repeatedly(trigger.AfterCount(1)),
        accumulation_mode=trigger.AccumulationMode.DISCARDING,
        timestamp_combiner=window.TimestampCombiner.OUTPUT_AT_EARLIEST)
    items, bad_lines = lines | "ParseReviews" >> ParseReviews(ctx.run_id, base.max_text_chars,
                                                                      base.earliest_created_at, base.max_clock_skew_s)
    timed = items | "AssignEventTime" >> beam.ParDo(AssignEventTime(cfg.allowed_lateness_s))
    redeliveries = StreamingDropRedeliveries(ctx.run_id, cfg.redelivery_retention_days * 86400)
    moderated = moderate(timed, ctx, base, policy, redeliveries=redeliveries, streaming=True)
    products = moderated.decisions | "ProductUpdates" >> StreamingProductUpdates(ctx.run_id)
    widget_docs = (moderated.published, products) | "WidgetDocs" >> StreamingWidgetDocs(
        base.signing_key_file, base.require_signing_key)
    dead_letters = (((bad_lines,) + tuple(moderated.dead_letters)) | "AllDeadLetters" >> beam.Flatten()
                    | "CountDeadLetters" >> beam.Map(count_dead_letter))
    return {"decisions": moderated.decisions, "published": moderated.published,
            "restricted": moderated.restricted, "review_queue": moderated.review_queue,
            "products": products, "widget_docs": widget_docs, "dead_letters": dead_letters,
            "product_alerts": moderated.product_alerts}


def decision_event(decision) -> Dict[str, Any]:
    """What a widget cache needs to know about every decision (no author, no signals)."""
    prov = decision.provenance
    return {"review_id": decision.review_id, "product_id": decision.product_id,
            "decision": decision.decision, "reasons": list(decision.reasons),
            "labels": [dict(x) for x in decision.labels], "created_at": decision.created_at,
            "decided_at": prov.get("decided_at"), "run_id": prov.get("run_id"), "policy": prov.get("policy")}


def _message(kind: str, obj: Dict[str, Any], payload: str) -> "beam.io.PubsubMessage":
    from apache_beam.io.gcp.pubsub import PubsubMessage
    attrs = {"kind": kind}
    for key in ("review_id", "product_id"):
        if obj.get(key):   # Pub/Sub takes attribute values of at most 1024 bytes (not characters)
            attrs[key] = str(obj[key]).encode("utf-8", "replace")[:1024].decode("utf-8", "ignore")
    return PubsubMessage(data=payload.encode("utf-8"), attributes=attrs)


def to_message(kind: str, record) -> "beam.io.PubsubMessage":
    """A record → Pub/Sub message: JSON payload, attributes ``kind``, ``review_id``, ``product_id``."""
    obj = record.to_dict() if hasattr(record, "to_dict") else record
    return _message(kind, obj, to_json_line(obj))


# Every output of moderate_stream, where it goes: (output, event kind on the topic or None, folder of
# the windowed files or None). Dead letters go to the dead-letter topic, every other event to the
# output topic. One table, so the sinks are one Flatten, one encoding step and one writer per
# destination instead of a chain of steps per output (each step costs a bundle per input bundle on
# the DirectRunner, most of them empty; see "Latency" in README.md).
OUTPUTS = (("decisions", "decision", "decisions"), ("published", "published", "published"),
           ("products", "product", None), ("widget_docs", "widget_document", signing.STREAM_DOCS_DIR),
           ("product_alerts", "product_alert", "product_alerts"), ("restricted", None, "restricted/originals"),
           ("review_queue", None, "review_queue"), ("dead_letters", "dead_letter", "dead_letter"))
EVENTS, DEAD_EVENTS, FILES = "events", "dead_events", "files"


class EncodeOutputsFn(beam.DoFn):
    """(output name, record) → its Pub/Sub message and its windowed-file line ((folder, shard),
    JSON line; tag ``files``), each record serialised once.

    Messages go out on tags ``events`` / ``dead_events`` for Beam's WriteToPubSub, or, with
    ``publish_direct`` (the DirectRunner), are published from here, one request per topic and bundle
    (:class:`pipeline.direct_runner.Publisher`): Beam's writer on the DirectRunner creates a publisher client (a gRPC
    channel) for every bundle and waits out its batching delay, ~20 ms a bundle even when empty."""

    def __init__(self, events: Optional[str], dead_events: Optional[str], files: bool, shards: int = 1,
                 publish_direct: bool = False):
        self._events, self._dead, self._files = events, dead_events, files
        self._shards = shards or 1
        self._direct = publish_direct
        self._table = {name: (kind, folder) for name, kind, folder in OUTPUTS}

    def start_bundle(self):
        self._pending = {}

    def _emit(self, tag: str, topic: str, message):
        if not self._direct:
            return beam.pvalue.TaggedOutput(tag, message)
        self._pending.setdefault(topic, []).append(message)
        return None

    def process(self, tagged):
        name, record = tagged
        kind, folder = self._table[name]
        obj = record.to_dict() if hasattr(record, "to_dict") else record
        line = to_json_line(obj)
        out = []
        if folder and self._files:
            out.append(beam.pvalue.TaggedOutput(FILES, ((folder, shard_of(line, self._shards)), line)))
        if kind == "dead_letter":
            if self._dead:
                out.append(self._emit(DEAD_EVENTS, self._dead, _message(kind, obj, line)))
        elif kind and self._events:
            if kind == "decision":
                event = decision_event(record)
                out.append(self._emit(EVENTS, self._events, _message(kind, event, to_json_line(event))))
            else:
                out.append(self._emit(EVENTS, self._events, _message(kind, obj, line)))
        return [o for o in out if o is not None]

    def finish_bundle(self):
        pending, self._pending = self._pending, {}
        for topic, messages in pending.items():
            direct_runner.Publisher.publish(topic, messages)


def build_stream_pipeline(p: beam.Pipeline, cfg: StreamConfig, ctx: RunContext, policy) -> Dict[str, Any]:
    """Adds the streaming job (Pub/Sub in; Pub/Sub and windowed files out) to ``p``."""
    direct = direct_runner.is_direct_runner(p)
    if direct:   # the local runner's fixed costs per bundle (pipeline/direct_runner.py)
        direct_runner.patch()
    messages = p | "ReadFromPubSub" >> beam.io.ReadFromPubSub(
        subscription=cfg.input_subscription, topic=None if cfg.input_subscription else cfg.input_topic,
        with_attributes=True, id_label=cfg.pubsub_id_label)
    lines = messages | "MessagesToLines" >> beam.ParDo(MessagesToLines(cfg.source, cfg.base.max_line_bytes))
    out = moderate_stream(lines, ctx, cfg, policy)
    wanted = [(name, kind, folder) for name, kind, folder in OUTPUTS if out.get(name) is not None and (
        (folder and cfg.output) or (kind == "dead_letter" and cfg.dead_letter_topic)
        or (kind and kind != "dead_letter" and cfg.output_topic))]
    if not wanted:
        return out
    encoded = (tuple(out[name] | f"Tag_{name}" >> beam.Map(lambda r, name=name: (name, r))
                     for name, _, _ in wanted)
               | "AllOutputs" >> beam.Flatten()
               | "EncodeOutputs" >> beam.ParDo(EncodeOutputsFn(
                   cfg.output_topic, cfg.dead_letter_topic, bool(cfg.output), cfg.base.num_shards, direct))
               .with_outputs(EVENTS, DEAD_EVENTS, FILES))
    if not direct:   # Beam's sink (Dataflow's native one on Dataflow)
        if cfg.output_topic:
            encoded[EVENTS] | "WriteEvents" >> beam.io.WriteToPubSub(cfg.output_topic, with_attributes=True)
        if cfg.dead_letter_topic:
            encoded[DEAD_EVENTS] | "WriteDeadLetterTopic" >> beam.io.WriteToPubSub(
                cfg.dead_letter_topic, with_attributes=True)
    if cfg.output:
        written = encoded[FILES] | "WriteFiles" >> WriteWindowedFiles(cfg.output, cfg.window_s, cfg.allowed_lateness_s)
        if any(name == "widget_docs" for name, _, _ in wanted):
            written | "IndexWidgetFiles" >> StreamingWidgetIndex(
                cfg.output, ctx.run_id, cfg.base.signing_key_file, cfg.base.require_signing_key)
    return out
