"""Builds the job graph: source → stages → sinks. Batch and streaming differ only at the ends.

    ReadReviewLines → ParseReviews → DropRedeliveries → NormalizeReviews → DetectFakes → Decide
      → AttachProvenance → WriteJsonLines(published/, decisions/, restricted/originals/)
                         → SummariseProducts → WriteJsonLines(products/)
    unreadable files and every stage's failures → WriteJsonLines(dead_letter/);  all counts → WriteRunSummary
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, NamedTuple, Optional, Tuple

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipeline.behaviour.config import BehaviourConfig
from pipeline.context import RunContext
from pipeline.dedup.config import DedupConfig
from pipeline.io import ReadReviewLines, WriteJsonLines
from pipeline.policy import DEFAULT_POLICY
from pipeline.transforms.decide import Decide
from pipeline.transforms.detect import DetectFakes
from pipeline.transforms.normalize import NormalizeReviews
from pipeline.io import DEFAULT_MAX_DECOMPRESSION_RATIO
from pipeline.transforms.parse import (DEFAULT_EARLIEST_CREATED_AT, DEFAULT_MAX_CLOCK_SKEW_S, DEFAULT_MAX_TEXT_CHARS,
                                       ParseReviews)
from pipeline.transforms.products import SummariseProducts
from pipeline.transforms.provenance import AttachProvenance
from pipeline.transforms.redelivery import DropRedeliveries
from pipeline.transforms.summary import WriteRunSummary
from pipeline.transforms.widget_docs import WriteWidgetDocs


@dataclass(frozen=True)
class BatchConfig:
    input: str
    output: str
    max_line_bytes: int = 1 << 20
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS
    signing_key_file: Optional[str] = None
    require_signing_key: bool = False
    num_shards: int = 0
    dedup: Optional[DedupConfig] = DedupConfig()
    overrides: Mapping[Any, Any] = field(default_factory=dict)  # review_id (or (id, author)) → override
    parity_margin: float = 0.02
    classifier: Optional[str] = None  # model directory; "" = the packaged default model; None = off
    classifier_threads: int = 1
    report_locale: str = "en"  # report.html and run_summary's "localized" sentences (--report_locale)
    behaviour: Optional[BehaviourConfig] = BehaviourConfig()  # None: behavioural detectors off (--behaviour=false)
    earliest_created_at: str = DEFAULT_EARLIEST_CREATED_AT
    max_clock_skew_s: float = DEFAULT_MAX_CLOCK_SKEW_S
    max_decompression_ratio: int = DEFAULT_MAX_DECOMPRESSION_RATIO
    public_contacts: Tuple[str, ...] = ()  # the store's own phones / emails: never redacted (--public_contacts)


class Moderated(NamedTuple):
    """What the shared middle of the job produces (batch and streaming alike)."""

    decisions: Any
    published: Any
    restricted: Any
    review_queue: Any
    dead_letters: Tuple[Any, ...]
    product_alerts: Any = None  # behavioural product alerts (batch), or None


def count_dead_letter(dead):
    """A dead letter, counted by code (``dead_letters/<code>``) so a running job shows where records go."""
    Metrics.counter("dead_letters", dead.error_code).inc()
    return dead


def moderate(items, ctx: RunContext, cfg: BatchConfig, policy=DEFAULT_POLICY, redeliveries=None,
             streaming: bool = False):
    """The shared middle of the job: parsed items → decisions, published, restricted, dead letters.

    Streaming (pipeline/stream.py) passes its stateful ``redeliveries`` transform and
    ``streaming=True`` (stateful near-duplicate buckets); every other stage is the same object.
    """
    stored = None
    if cfg.dedup is not None and cfg.dedup.signature_store:
        from pipeline.dedup.store import ReadSignatureStore
        stored = items.pipeline | "ReadSignatureStore" >> ReadSignatureStore(cfg.dedup.signature_store, ctx.run_id)
    unique, redelivered = items | "DropRedeliveries" >> (redeliveries or DropRedeliveries(ctx.run_id, stored))
    normalised, failed_normalize = unique | "NormalizeReviews" >> NormalizeReviews(ctx.run_id, cfg.max_text_chars,
                                                                                  cfg.public_contacts)
    detected, fingerprints, alerts = normalised | "DetectFakes" >> DetectFakes(
        cfg.dedup, stored, streaming=streaming, classifier=cfg.classifier, run_id=ctx.run_id,
        classifier_threads=cfg.classifier_threads, behaviour=cfg.behaviour)
    if stored is not None:
        from pipeline.dedup.store import AppendToSignatureStore
        fingerprints | "AppendToSignatureStore" >> AppendToSignatureStore(
            cfg.dedup.signature_store, cfg.dedup, ctx.run_id)
    decided, failed_decide = detected | "Decide" >> Decide(ctx.run_id, policy, cfg.overrides)
    decisions, published, restricted, failed_provenance, queue = decided | "AttachProvenance" >> AttachProvenance(
        ctx, cfg.signing_key_file, cfg.require_signing_key)
    return Moderated(decisions, published, restricted, queue,
                     (redelivered, failed_normalize, failed_decide, failed_provenance), alerts)


def build_pipeline(p: beam.Pipeline, cfg: BatchConfig, ctx: RunContext, policy=DEFAULT_POLICY):
    """Adds the batch job to ``p``. Returns the summary PCollection (one dict)."""
    lines, blank, bad_files = p | "ReadReviewLines" >> ReadReviewLines(cfg.input, cfg.max_line_bytes,
                                                                       cfg.max_decompression_ratio, ctx.run_id)
    items, bad_lines = lines | "ParseReviews" >> ParseReviews(ctx.run_id, cfg.max_text_chars,
                                                              cfg.earliest_created_at, cfg.max_clock_skew_s)
    moderated = moderate(items, ctx, cfg, policy)
    decisions, published = moderated.decisions, moderated.published
    products = decisions | "SummariseProducts" >> SummariseProducts(ctx.run_id)
    dead_letters = ((bad_files, bad_lines) + moderated.dead_letters) | "AllDeadLetters" >> beam.Flatten()
    dead_letters = dead_letters | "CountDeadLetters" >> beam.Map(count_dead_letter)

    out, shards = cfg.output, cfg.num_shards
    published | "WritePublished" >> WriteJsonLines(out, "published", shards)
    decisions | "WriteDecisions" >> WriteJsonLines(out, "decisions", shards)
    dead_letters | "WriteDeadLetters" >> WriteJsonLines(out, "dead_letter", shards)
    products | "WriteProducts" >> WriteJsonLines(out, "products", shards)
    (published, products) | "WriteWidgetDocs" >> WriteWidgetDocs(  # widget/<product>.json, run_index.json
        out, cfg.signing_key_file, cfg.require_signing_key, run_id=ctx.run_id)
    moderated.restricted | "WriteRestricted" >> WriteJsonLines(out, "restricted/originals", shards)
    moderated.review_queue | "WriteReviewQueue" >> WriteJsonLines(out, "review_queue", shards)
    alerts = moderated.product_alerts
    if alerts is None:
        alerts = p | "NoProductAlerts" >> beam.Create([])
    alerts | "WriteProductAlerts" >> WriteJsonLines(out, "product_alerts", shards)
    return {"lines": lines, "blank": blank, "bad_files": bad_files, "decisions": decisions,
            "dead_letters": dead_letters, "published": published, "products": products,
            "product_alerts": alerts} | "WriteRunSummary" >> WriteRunSummary(
                ctx, cfg.parity_margin, cfg.report_locale)
