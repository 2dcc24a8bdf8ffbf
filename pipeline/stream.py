"""The streaming job: reviews from Pub/Sub through the same stages as batch, out to Pub/Sub and files.

    ReadFromPubSub (publish time) → MessagesToLines → ParseReviews → AssignEventTime (created_at,
      bounded by the allowed lateness) → moderate() from pipeline/build.py with
        StreamingDropRedeliveries (state per review_id, retention timer) and
        DetectFakes(streaming=True) (StreamingNearDuplicates: band buckets, retention timers)
      → decisions, published, restricted, dead letters
    → events topic: one ``decision`` event per review, the signed ``published`` record, and a
      ``product`` document (running totals) after every decision for that product
    → dead-letter topic: every dead letter
    → windowed files under --output: published/, decisions/, dead_letter/, restricted/originals/

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
by ``review_id`` into a stateful DoFn: the first delivery is decided, any later one within
``--redelivery_retention_days`` becomes a ``redelivery`` dead letter naming the first delivery's
message. Streaming has no "lowest input line" to prefer, so the first delivery *processed* wins.
The near-duplicate buckets never compare a review with itself either.

**Source references.** ``input`` in provenance and ``source`` in dead letters are
``{"uri": <subscription or topic>, "line": <Pub/Sub message id>}`` (message ids are decimal
integers; a non-numeric id, which the service does not give, would be recorded as 1).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any, Dict, Optional

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.transforms import trigger, window
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import (BagStateSpec, CombiningValueStateSpec, ReadModifyWriteStateSpec, TimerSpec,
                                              on_timer)
from apache_beam.utils.timestamp import MIN_TIMESTAMP, Duration, Timestamp

from pipeline.build import BatchConfig, _count_dead_letter, moderate
from pipeline.context import RunContext
from pipeline.io import to_json_line
from pipeline.transforms.common import review_json
from pipeline.transforms.parse import ParseReviews
from pipeline.transforms.products import ProductAggregateFn, product_doc
from schemas import codes
from schemas.records import DeadLetter, InputRef, Item, RawLine

LOG = logging.getLogger("pipeline")
STAGE = "stream"
DEAD = "dead_letter"
LATE_FIRING_DELAY_S = 10
EVENT_KINDS = ("decision", "published", "product")


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


def created_seconds(created_at: str) -> float:
    return dt.datetime.fromisoformat(created_at.replace("Z", "+00:00").replace("z", "+00:00")).timestamp()


class AssignEventTime(beam.DoFn):
    """Item with publish-time timestamp → the same item at event time ``created_at`` (clamped, see module doc)."""

    def __init__(self, allowed_lateness_s: int):
        self._lateness = allowed_lateness_s
        self._late = Metrics.counter(STAGE, "late_beyond_allowed_lateness")
        self._future = Metrics.counter(STAGE, "created_at_after_publish_time")

    def process(self, item: Item, published=beam.DoFn.TimestampParam):
        created = Timestamp(seconds=created_seconds(item.review.created_at))
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


# -- exactly-once effect --------------------------------------------------------------------

class FirstDeliveryFn(beam.DoFn):
    """Keyed by review_id: the first delivery passes; later ones become ``redelivery`` dead letters.

    State per review: the first delivery's (message id, 8-byte content digest); an event-time timer
    clears it ``retention`` after the review's event time.
    """

    FIRST = ReadModifyWriteStateSpec("first", PickleCoder())
    GC = TimerSpec("gc", TimeDomain.WATERMARK)

    def __init__(self, run_id: str, retention_s: int):
        self._run_id = run_id
        self._retention = retention_s
        self._redelivered = Metrics.counter("redelivery", "redeliveries")

    def process(self, keyed, ts=beam.DoFn.TimestampParam, first=beam.DoFn.StateParam(FIRST),
                gc=beam.DoFn.TimerParam(GC)):
        review_id, item = keyed
        digest = hashlib.sha256(review_json(item).encode("utf-8")).digest()[:8]
        kept = first.read()
        if kept is None:
            first.write((item.ref.line, digest))
            gc.set(ts + Duration(seconds=self._retention))
            yield item
            return
        self._redelivered.inc()
        line, kept_digest = kept
        yield beam.pvalue.TaggedOutput(DEAD, DeadLetter(
            error_code=codes.REDELIVERY,
            error=(f"review_id {review_id!r} was already delivered as message {line} of {item.ref.uri}; "
                   + ("identical content" if digest == kept_digest else
                      "content differs, the first delivery is kept")),
            raw=review_json(item), source=item.ref, stage="redelivery", run_id=self._run_id,
            review_id=review_id))

    @on_timer(GC)
    def expire(self, first=beam.DoFn.StateParam(FIRST)):
        first.clear()


class StreamingDropRedeliveries(beam.PTransform):
    """PCollection[Item] → (first deliveries, redelivery dead letters); the streaming DropRedeliveries."""

    def __init__(self, run_id: str, retention_s: int):
        super().__init__()
        self._run_id = run_id
        self._retention = retention_s

    def expand(self, items):
        out = (items
               | "KeyByReviewId" >> beam.Map(lambda it: (it.review.review_id, it))
               | "KeepFirstDelivery" >> beam.ParDo(FirstDeliveryFn(self._run_id, self._retention))
               .with_outputs(DEAD, main="items"))
        return out.items, out[DEAD]


# -- per-product documents --------------------------------------------------------------------

class ProductUpdateFn(beam.DoFn):
    """Keyed by product_id: the running aggregate (the batch ProductAggregateFn, as combining state);
    emits the product's document after every decision for it, so a widget cache is never more than
    one pipeline latency behind. State per product: one accumulator (counts, no reviews)."""

    AGG = CombiningValueStateSpec("agg", PickleCoder(), ProductAggregateFn())

    def __init__(self, run_id: str):
        self._run_id = run_id

    def process(self, keyed, agg=beam.DoFn.StateParam(AGG)):
        product_id, decision = keyed
        agg.add(decision)
        yield product_doc(product_id, agg.read(), self._run_id)


class StreamingProductUpdates(beam.PTransform):
    """PCollection[Decision] → PCollection[ProductDoc]: each product's running totals, kept current."""

    def __init__(self, run_id: str):
        super().__init__()
        self._run_id = run_id

    def expand(self, decisions):
        return (decisions
                | "KeyByProduct" >> beam.Map(lambda d: (d.product_id, d))
                | "RunningAggregate" >> beam.ParDo(ProductUpdateFn(self._run_id)))


class WidgetDocFn(beam.DoFn):
    """Keyed by product_id: the product's widget document (pipeline/transforms/widget_docs.py, the
    same builder as batch), re-emitted after every published review and every product update.

    State per product: the latest product aggregate and its ``MAX_REVIEWS`` most recent published
    records (a widget pages through recent reviews; the aggregate counts all of them)."""

    PUBLISHED = BagStateSpec("published", PickleCoder())
    PRODUCT = ReadModifyWriteStateSpec("product", PickleCoder())
    MAX_REVIEWS = 200

    def process(self, keyed, published=beam.DoFn.StateParam(PUBLISHED), product=beam.DoFn.StateParam(PRODUCT)):
        from pipeline.transforms.widget_docs import _as_dict, build_widget_doc, most_recent_first
        product_id, (kind, record) = keyed
        record = _as_dict(record)
        if kind == "product":
            product.write(record)
        else:
            kept = [r for r in published.read() if r["review_id"] != record["review_id"]] + [record]
            if len(kept) > self.MAX_REVIEWS:
                recent = {r["review_id"] for r in most_recent_first(kept)[:self.MAX_REVIEWS]}
                kept = [r for r in kept if r["review_id"] in recent]
                published.clear()
                for r in kept:
                    published.add(r)
            else:
                published.add(record)
        current = list(published.read())
        if current or product.read() is not None:
            yield build_widget_doc(product_id, current, product.read())


class StreamingWidgetDocs(beam.PTransform):
    """(published records, product documents) → widget documents, kept current per product."""

    def expand(self, pcolls):
        from pipeline.transforms.widget_docs import _as_dict
        published, products = pcolls
        return ((published | "KeyPublished" >> beam.Map(lambda r: (_as_dict(r)["product_id"], ("published", r))),
                 products | "KeyProducts" >> beam.Map(lambda r: (r.product_id, ("product", r))))
                | "Both" >> beam.Flatten()
                | "CurrentDoc" >> beam.ParDo(WidgetDocFn()))


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
    items, bad_lines = lines | "ParseReviews" >> ParseReviews(ctx.run_id, base.max_text_chars)
    timed = items | "AssignEventTime" >> beam.ParDo(AssignEventTime(cfg.allowed_lateness_s))
    redeliveries = StreamingDropRedeliveries(ctx.run_id, cfg.redelivery_retention_days * 86400)
    moderated = moderate(timed, ctx, base, policy, redeliveries=redeliveries, streaming=True)
    decisions = moderated[0]
    products = decisions | "ProductUpdates" >> StreamingProductUpdates(ctx.run_id)
    widget_docs = (moderated[1], products) | "WidgetDocs" >> StreamingWidgetDocs()
    dead_letters = (((bad_lines,) + tuple(moderated[-1])) | "AllDeadLetters" >> beam.Flatten()
                    | "CountDeadLetters" >> beam.Map(_count_dead_letter))
    out = {"decisions": decisions, "published": moderated[1], "restricted": moderated[2],
           "products": products, "widget_docs": widget_docs, "dead_letters": dead_letters}
    if hasattr(moderated, "review_queue"):  # held reviews for moderators (the policy's review queue)
        out["review_queue"] = moderated.review_queue
    return out


def decision_event(decision) -> Dict[str, Any]:
    """What a widget cache needs to know about every decision (no author, no signals)."""
    prov = decision.provenance
    return {"review_id": decision.review_id, "product_id": decision.product_id,
            "decision": decision.decision, "reasons": list(decision.reasons),
            "labels": [dict(x) for x in decision.labels], "created_at": decision.created_at,
            "decided_at": prov.get("decided_at"), "run_id": prov.get("run_id"), "policy": prov.get("policy")}


def to_message(kind: str, record) -> "beam.io.PubsubMessage":
    """A record → Pub/Sub message: JSON payload, attributes ``kind``, ``review_id``, ``product_id``."""
    from apache_beam.io.gcp.pubsub import PubsubMessage
    obj = record.to_dict() if hasattr(record, "to_dict") else record
    attrs = {"kind": kind}
    for key in ("review_id", "product_id"):
        if obj.get(key):
            attrs[key] = str(obj[key])[:1024]
    return PubsubMessage(data=to_json_line(obj).encode("utf-8"), attributes=attrs)


def _utc(ts: Timestamp) -> str:
    return ts.to_utc_datetime().strftime("%Y%m%dT%H%M%SZ")


class _WritePaneFn(beam.DoFn):
    """(shard, JSON lines) of one window pane → one file, written under a temp name then renamed.

    The name is fixed by window, pane index and shard, so a retried bundle rewrites the same file.
    """

    def __init__(self, directory: str):
        self._dir = directory
        self._files = Metrics.counter(STAGE, "files_written")

    def process(self, keyed, win=beam.DoFn.WindowParam, pane=beam.DoFn.PaneInfoParam):
        shard, lines = keyed
        lines = sorted(lines)
        timing = {0: "early", 1: "ontime", 2: "late"}.get(pane.timing, "pane")
        name = (f"part-{_utc(win.start)}-{_utc(win.end)}-{timing}{pane.index:03d}-{shard:05d}.jsonl"
                if hasattr(win, "start") else f"part-global-{pane.index:05d}-{shard:05d}.jsonl")
        final = FileSystems.join(self._dir, name)
        temp = FileSystems.join(self._dir, ".temp", f"{uuid.uuid4().hex}-{name}")
        with FileSystems.create(temp, mime_type="application/octet-stream") as handle:
            for line in lines:
                handle.write(line.encode("utf-8") + b"\n")
        if FileSystems.exists(final):
            FileSystems.delete([final])
        FileSystems.rename([temp], [final])
        self._files.inc()
        yield final


class WriteWindowedJsonLines(beam.PTransform):
    """Records → ``<prefix>/<name>/part-<window start>-<window end>-<pane>-<shard>.jsonl``.

    Event-time windows (:func:`window_for_files`): a file per window when the watermark passes its
    end (``ontime``) and, for late records, more files ``LATE_FIRING_DELAY_S`` after the first late
    one (``late001``...); nothing within the allowed lateness is dropped. Returns the file names.
    """

    def __init__(self, output: str, name: str, window_s: int, allowed_lateness_s: int, shards: int = 0):
        super().__init__()
        self._dir = FileSystems.join(output.rstrip("/"), name)
        self._window = window_s
        self._lateness = allowed_lateness_s
        self._shards = shards or 1

    def expand(self, records):
        shards = self._shards
        return (records
                | "Window" >> window_for_files(self._window, self._lateness)
                | "ToJson" >> beam.Map(to_json_line)
                | "KeyByShard" >> beam.Map(
                    lambda line: (int(hashlib.md5(line.encode("utf-8")).hexdigest(), 16) % shards, line))
                | "GroupPane" >> beam.GroupByKey()
                | "WritePane" >> beam.ParDo(_WritePaneFn(self._dir)))


def window_for_files(window_s: int, allowed_lateness_s: int) -> beam.WindowInto:
    """Fixed event-time windows; on time at the watermark, late panes batched; lateness covers the clamp."""
    return beam.WindowInto(
        window.FixedWindows(window_s),
        trigger=trigger.AfterWatermark(late=trigger.AfterProcessingTime(LATE_FIRING_DELAY_S)),
        accumulation_mode=trigger.AccumulationMode.DISCARDING,
        allowed_lateness=Duration(seconds=allowed_lateness_s + window_s))


def build_stream_pipeline(p: beam.Pipeline, cfg: StreamConfig, ctx: RunContext, policy) -> Dict[str, Any]:
    """Adds the streaming job (Pub/Sub in; Pub/Sub and windowed files out) to ``p``."""
    messages = p | "ReadFromPubSub" >> beam.io.ReadFromPubSub(
        subscription=cfg.input_subscription, topic=None if cfg.input_subscription else cfg.input_topic,
        with_attributes=True, id_label=cfg.pubsub_id_label)
    lines = messages | "MessagesToLines" >> beam.ParDo(MessagesToLines(cfg.source, cfg.base.max_line_bytes))
    out = moderate_stream(lines, ctx, cfg, policy)
    if cfg.output_topic:
        events = (
            (out["decisions"] | "DecisionEvents" >> beam.Map(lambda d: to_message("decision", decision_event(d))),
             out["published"] | "PublishedEvents" >> beam.Map(lambda r: to_message("published", r)),
             out["products"] | "ProductEvents" >> beam.Map(lambda r: to_message("product", r)),
             out["widget_docs"] | "WidgetEvents" >> beam.Map(lambda r: to_message("widget_document", r)))
            | "AllEvents" >> beam.Flatten())
        events | "WriteEvents" >> beam.io.WriteToPubSub(cfg.output_topic, with_attributes=True)
    if cfg.dead_letter_topic:
        (out["dead_letters"]
         | "DeadLetterMessages" >> beam.Map(lambda r: to_message("dead_letter", r))
         | "WriteDeadLetterTopic" >> beam.io.WriteToPubSub(cfg.dead_letter_topic, with_attributes=True))
    if cfg.output:
        for name, key in (("published", "published"), ("decisions", "decisions"),
                          ("dead_letter", "dead_letters"), ("restricted/originals", "restricted"),
                          ("review_queue", "review_queue"), ("widget_updates", "widget_docs")):
            if key not in out:
                continue
            out[key] | f"Write_{name}" >> WriteWindowedJsonLines(
                cfg.output, name, cfg.window_s, cfg.allowed_lateness_s, cfg.base.num_shards)
    return out


# -- launcher (called by pipeline.run for --streaming) ------------------------------------------

def _load_policy(opts):
    """The policy and moderator overrides exactly as the batch launcher loads them."""
    from pipeline import policy as policies
    if hasattr(policies, "Policy") and hasattr(policies.Policy, "load"):
        return policies.Policy.load(getattr(opts, "policy", None)), policies.load_overrides(getattr(opts, "overrides", None))
    return policies.DEFAULT_POLICY, {}


def stream_config(opts, dedup) -> StreamConfig:
    base = BatchConfig(input=opts.input_subscription or opts.input_topic or "", output=opts.output or "",
                       max_line_bytes=opts.max_line_bytes, max_text_chars=opts.max_text_chars,
                       signing_key_file=opts.signing_key_file, require_signing_key=opts.require_signing_key,
                       num_shards=opts.num_shards, dedup=dedup,
                       classifier=(opts.classifier_model or "") if getattr(opts, "classifier", False) else None,
                       classifier_threads=getattr(opts, "classifier_threads", 1))
    return StreamConfig(base=base, input_subscription=opts.input_subscription, input_topic=opts.input_topic,
                        output_topic=opts.output_topic, dead_letter_topic=opts.dead_letter_topic,
                        window_s=opts.window_s, allowed_lateness_s=opts.allowed_lateness_s,
                        redelivery_retention_days=(opts.redelivery_retention_days
                                                   or opts.signature_retention_days),
                        pubsub_id_label=opts.pubsub_id_label)


def run_streaming(options, usage_error=None) -> dict:
    """Builds and runs the streaming job. On DirectRunner it runs here until --stream_duration_s
    passes or the process is interrupted, then cancels; on Dataflow it returns once submitted."""
    from apache_beam.options.pipeline_options import StandardOptions
    from pipeline.options import ModerationOptions
    from pipeline import run as launcher

    # The launcher's UsageError (exit status 2); pipeline.run passes its own, which is a different
    # class from pipeline.run.UsageError when it runs as ``python -m pipeline.run``.
    UsageError = usage_error or launcher.UsageError
    opts = options.view_as(ModerationOptions)
    if bool(opts.input_subscription) == bool(opts.input_topic):
        raise UsageError("--streaming needs exactly one of --input_subscription projects/P/subscriptions/S "
                         "or --input_topic projects/P/topics/T")
    if opts.input:
        raise UsageError("--input is for batch; streaming reads --input_subscription or --input_topic")
    if not (opts.output or opts.output_topic):
        raise UsageError("--streaming needs --output PREFIX (windowed files) and/or --output_topic")
    try:
        dedup = launcher._dedup_config(opts)
    except launcher.UsageError as exn:
        raise UsageError(str(exn)) from exn
    if dedup is not None and dedup.signature_store:
        raise UsageError("--signature_store is for batch; streaming keeps its near-duplicate memory in state")
    try:
        policy, overrides = _load_policy(opts)
    except (OSError, ValueError) as exn:
        raise UsageError(str(exn)) from exn
    cfg = stream_config(opts, dedup)
    if overrides and hasattr(cfg.base, "overrides"):
        cfg = replace(cfg, base=replace(cfg.base, overrides=overrides))
    ctx = RunContext.create(opts.run_id, policy, input=cfg.source, output=opts.output or opts.output_topic)
    LOG.info("Streaming run %s: %s → events %s, dead letters %s, files %s (window %d s, allowed lateness %d s)",
             ctx.run_id, cfg.source, cfg.output_topic or "-", cfg.dead_letter_topic or "-", cfg.output or "-",
             cfg.window_s, cfg.allowed_lateness_s)
    options.view_as(StandardOptions).streaming = True
    p = beam.Pipeline(options=options)
    build_stream_pipeline(p, cfg, ctx, policy)
    result = p.run()
    runner = str(options.view_as(StandardOptions).runner or "DirectRunner")
    if "Direct" not in runner:
        LOG.info("Submitted streaming job (%s); stop it with drain or cancel, replace it with --update.", runner)
        return {}
    # DirectRunner's wait_until_finish takes no duration: wait in a thread, cancel from this one.
    failure = []

    def wait():
        try:
            result.wait_until_finish()
        except BaseException as exn:  # noqa: BLE001 - handed to the main thread
            failure.append(exn)

    waiter = threading.Thread(target=wait, name="wait-until-finish", daemon=True)
    waiter.start()
    try:
        waiter.join(timeout=opts.stream_duration_s or None)
        if failure:
            raise failure[0]
        if not waiter.is_alive():
            return {}
        LOG.info("Stream duration of %.0f s reached: cancelling the streaming job", opts.stream_duration_s)
    except KeyboardInterrupt:
        LOG.info("Interrupted: cancelling the streaming job")
    finally:
        started = time.monotonic()
        try:
            result.cancel()
        except Exception as exn:  # noqa: BLE001 - already finished or failed: nothing left to stop
            LOG.debug("cancel: %s", exn)
        LOG.info("Streaming job stopped (%.1f s to cancel)", time.monotonic() - started)
    return {}
