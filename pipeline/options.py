"""The pipeline's own flags, and the job configuration they make.

Every other flag is passed through to Beam (runner, project, ...). :func:`configs_from_options`
turns the flags into the typed configuration of the batch job (``build.BatchConfig``) or the
streaming job (``stream.StreamConfig``) and the loaded decision policy; every mistake a user can
fix is a :class:`UsageError` (exit status 2 from ``pipeline.run``).
"""
from __future__ import annotations

import argparse
import os
from typing import NamedTuple, Optional, Union

from apache_beam.options.pipeline_options import PipelineOptions

from pipeline import signing
from pipeline.build import BatchConfig
from pipeline.behaviour.config import BehaviourConfig
from pipeline.dedup.config import DedupConfig
from pipeline.policy import Policy, PolicyError, load_overrides
from pipeline.stream import StreamConfig
from pipeline.io import DEFAULT_MAX_DECOMPRESSION_RATIO
from pipeline.text.pii import PublicContacts
from pipeline.timestamps import parse_rfc3339
from pipeline.transforms.parse import DEFAULT_EARLIEST_CREATED_AT, DEFAULT_MAX_CLOCK_SKEW_S, DEFAULT_MAX_TEXT_CHARS

DEFAULT_MAX_LINE_BYTES = 1 << 20


def _flag(value: str) -> bool:
    if str(value).lower() in ("1", "true", "yes", "on"):
        return True
    if str(value).lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


class _Once(argparse.Action):
    """A flag that may be given once: a second ``--input`` would silently replace the first."""

    def __call__(self, parser, namespace, values, option_string=None):
        if getattr(namespace, self.dest, None) is not None:
            parser.error(f"{option_string} given twice ({getattr(namespace, self.dest)!r}, then {values!r}): "
                         "give one pattern (a glob can match several files)")
        setattr(namespace, self.dest, values)


class ModerationOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--input", action=_Once, help="Input JSON Lines: a file, glob or gs:// pattern "
                            "(compressed .gz, .bz2, .xz, .zst, .deflate files are read too, bounded).")
        parser.add_argument("--output", help="Output prefix (directory or gs:// prefix) for published/, "
                            "decisions/, dead_letter/, products/, restricted/ and run_summary.json.")
        parser.add_argument("--run_date", default=None,
                            help="YYYY-MM-DD substituted for {date} in --input and --output, so a fixed "
                                 "scheduled launch reads each day's folder (default: yesterday, UTC).")
        parser.add_argument("--run_id", default=None,
                            help="Id recorded in provenance (default: run-<UTC time>-<random>). Give the "
                                 "same id when re-running a scheduled job to make its records comparable.")
        parser.add_argument("--max_line_bytes", type=int, default=DEFAULT_MAX_LINE_BYTES,
                            help="Lines longer than this become 'too_large' dead letters (default 1 MiB).")
        parser.add_argument("--max_text_chars", type=int, default=DEFAULT_MAX_TEXT_CHARS,
                            help="A title or body longer than this many characters becomes a "
                                 "'too_large' dead letter (default %(default)s).")
        parser.add_argument("--earliest_created_at", default=DEFAULT_EARLIEST_CREATED_AT,
                            help="An earlier created_at is implausible and is clamped to this time, with "
                                 "the reason created_at_adjusted (default %(default)s).")
        parser.add_argument("--max_clock_skew_s", type=float, default=DEFAULT_MAX_CLOCK_SKEW_S,
                            help="A created_at later than receipt (received_at, else when the line was read) "
                                 "by more than this is clamped to the receipt time (default %(default)s).")
        parser.add_argument("--max_decompression_ratio", type=int, default=DEFAULT_MAX_DECOMPRESSION_RATIO,
                            help="A .gz/.bz2 file that expands to more than this many times its size (and "
                                 "more than 1 MiB) is stopped with a 'decompression_limit' dead letter "
                                 "(default %(default)s).")
        parser.add_argument("--public_contacts", default="",
                            help="Comma-separated phone numbers (with their country code, +1 800 555 0199) and email "
                                 "addresses that are the store's own "
                                 "(support line, service address): not personal data, so complaints that "
                                 "quote them keep them; everything else is redacted as before.")
        parser.add_argument("--signing_key_file", default=None,
                            help="File (local or gs://) holding the HMAC key that signs published "
                                 "reviews. Default: $REVIEW_SIGNING_KEY, else the demo key.")
        parser.add_argument("--require_signing_key", type=_flag, nargs="?", const=True, default=False,
                            help="Fail instead of falling back to the demo signing key "
                                 "(also --require_signing_key=true, for template parameters).")
        parser.add_argument("--policy", default=None,
                            help="Decision policy YAML (local or gs://); default: the packaged "
                                 "pipeline/policies/default.yaml. Its id and version go into provenance.")
        parser.add_argument("--overrides", default=None,
                            help="Moderator decisions (JSON Lines or CSV: review_id, decision, moderator, note"
                                 "[, reasons]) that take precedence over the policy; appeals go here too.")
        parser.add_argument("--report_locale", default="en", choices=["en", "ja", "ko", "zh-Hans", "zh-Hant"],
                            help="Language of report.html (headings, tables, chart labels) and of the "
                                 "'localized' sentences in run_summary.json (default en).")
        parser.add_argument("--parity_margin", type=float, default=0.02,
                            help="Warn when the withheld rate of 1-2 star reviews exceeds that of 4-5 star "
                                 "reviews by more than this (default 0.02, two percentage points).")
        parser.add_argument("--classifier", type=_flag, nargs="?", const=True, default=True,
                            help="Fake-review classifier on (default) or off (--classifier=false).")
        parser.add_argument("--classifier_model", default="",
                            help="Classifier model directory (local or gs://); default: the committed artifact "
                                 "under pipeline/classifier/artifacts/.")
        parser.add_argument("--classifier_threads", type=int, default=1,
                            help="ONNX Runtime intra-op threads per classifier model (default 1: right for Dataflow, "
                                 "which runs one SDK process per vCPU; on DirectRunner, the number of cores).")
        parser.add_argument("--dedup", type=_flag, nargs="?", const=True, default=True,
                            help="Near-duplicate detection on (default) or off (--dedup=false).")
        parser.add_argument("--dedup_threshold", type=float, default=0.8,
                            help="Jaccard similarity at which two reviews are near-duplicates (default 0.8).")
        parser.add_argument("--dedup_num_perm", type=int, default=128,
                            help="MinHash permutations (default 128).")
        parser.add_argument("--behaviour", type=_flag, nargs="?", const=True, default=True,
                            help="Behavioural detectors (coordinated groups, author velocity, product bursts; "
                                 "never the rating or text) on (default) or off (--behaviour=false).")
        parser.add_argument("--signature_store", default=None,
                            help="Prefix (local or gs://) of the signature store that lets scheduled runs "
                                 "find copies of reviews from earlier runs; read, then appended to.")
        parser.add_argument("--signature_retention_days", type=int, default=90,
                            help="Store entries older than this are ignored and compacted away (default 90).")
        parser.add_argument("--num_shards", type=int, default=0,
                            help="Files per output directory (0: the runner decides).")
        # Streaming (with Beam's --streaming; see pipeline/stream.py and README "Streaming").
        parser.add_argument("--input_subscription", default=None,
                            help="Streaming: read JSON reviews (one per message) from this Pub/Sub "
                                 "subscription, projects/P/subscriptions/S.")
        parser.add_argument("--input_topic", default=None,
                            help="Streaming: read from this topic (projects/P/topics/T) through a "
                                 "subscription the runner creates; prefer --input_subscription.")
        parser.add_argument("--output_topic", default=None,
                            help="Streaming: Pub/Sub topic for moderated events (decision, published, "
                                 "product) that widget caches consume.")
        parser.add_argument("--dead_letter_topic", default=None,
                            help="Streaming: Pub/Sub topic that also receives every dead letter.")
        parser.add_argument("--window_s", type=int, default=60,
                            help="Streaming: event-time window of the files under --output (default 60 s).")
        parser.add_argument("--allowed_lateness_s", type=int, default=3600,
                            help="Streaming: a review whose created_at is older than its publish time by "
                                 "more than this is counted late and given event time publish-time minus "
                                 "this, so it is decided and written, never dropped (default 1 h).")
        parser.add_argument("--redelivery_retention_days", type=int, default=None,
                            help="Streaming: how long a review_id is remembered to turn redeliveries into "
                                 "dead letters (default: --signature_retention_days).")
        parser.add_argument("--pubsub_id_label", default=None,
                            help="Streaming: message attribute Dataflow uses to drop Pub/Sub redeliveries "
                                 "early (optional; review_id dedupe happens in the job either way).")
        parser.add_argument("--stream_duration_s", type=float, default=0,
                            help="Streaming on DirectRunner: cancel the job after this many seconds "
                                 "(0: run until interrupted).")


class UsageError(Exception):
    """A flag or input the user can fix; ``pipeline.run`` prints it and exits with status 2."""


class Configs(NamedTuple):
    """What a launch needs: the job's configuration and the decision policy it applies."""

    job: Union[BatchConfig, StreamConfig]
    policy: Policy


def dedup_config(opts: ModerationOptions) -> Optional[DedupConfig]:
    """Near-duplicate settings from the flags; None when ``--dedup=false``."""
    if not opts.dedup:
        return None
    try:
        return DedupConfig(threshold=opts.dedup_threshold, num_perm=opts.dedup_num_perm,
                           signature_store=opts.signature_store, retention_days=opts.signature_retention_days)
    except ValueError as exn:
        raise UsageError(str(exn)) from exn


def _check_streaming_flags(opts: ModerationOptions) -> None:
    if bool(opts.input_subscription) == bool(opts.input_topic):
        raise UsageError("--streaming needs exactly one of --input_subscription projects/P/subscriptions/S "
                         "or --input_topic projects/P/topics/T")
    if opts.input:
        raise UsageError("--input is for batch; streaming reads --input_subscription or --input_topic")
    if not (opts.output or opts.output_topic):
        raise UsageError("--streaming needs --output PREFIX (windowed files) and/or --output_topic")


def check_signing_key(opts: ModerationOptions) -> None:
    """A signing key that is required or given is loaded now, before any input is read: a missing,
    empty or short key is a UsageError, never a silent fall-back to the demo key on the workers."""
    if not (opts.require_signing_key or opts.signing_key_file or signing.ENV_KEY in os.environ):
        return
    try:
        signing.load_signing_key(opts.signing_key_file, require=opts.require_signing_key)
    except (ValueError, OSError) as exn:
        raise UsageError(f"signing key: {exn}") from exn


def _timestamp_flag(name: str, value: str) -> str:
    try:
        parse_rfc3339(value)
    except ValueError as exn:
        raise UsageError(f"{name} {value!r} is not an RFC 3339 time with an offset ({exn})") from exn
    return value


def configs_from_options(opts: ModerationOptions, streaming: bool = False) -> Configs:
    """The flags → the batch or streaming job's configuration and its policy; UsageError if they don't fit."""
    if streaming:
        _check_streaming_flags(opts)
    check_signing_key(opts)
    dedup = dedup_config(opts)
    if streaming and dedup is not None and dedup.signature_store:
        raise UsageError("--signature_store is for batch; streaming keeps its near-duplicate memory in state")
    try:
        policy = Policy.load(opts.policy)
        overrides = load_overrides(opts.overrides)
    except (PolicyError, OSError, ValueError) as exn:
        raise UsageError(str(exn)) from exn
    source = (opts.input_subscription or opts.input_topic or "") if streaming else opts.input
    public_contacts = tuple(v.strip() for v in (opts.public_contacts or "").split(",") if v.strip())
    try:
        PublicContacts.parse(public_contacts)
    except ValueError as exn:
        raise UsageError(f"--public_contacts: {exn}") from exn
    base = BatchConfig(input=source, output=opts.output or "", max_line_bytes=opts.max_line_bytes,
                       max_text_chars=opts.max_text_chars, signing_key_file=opts.signing_key_file,
                       earliest_created_at=_timestamp_flag("--earliest_created_at", opts.earliest_created_at),
                       max_clock_skew_s=opts.max_clock_skew_s,
                       max_decompression_ratio=opts.max_decompression_ratio, public_contacts=public_contacts,
                       require_signing_key=opts.require_signing_key, num_shards=opts.num_shards,
                       dedup=dedup, overrides=overrides, parity_margin=opts.parity_margin,
                       classifier=(opts.classifier_model or "") if opts.classifier else None,
                       classifier_threads=opts.classifier_threads, report_locale=opts.report_locale,
                       behaviour=BehaviourConfig(retention_days=opts.signature_retention_days)
                       if opts.behaviour else None)
    if not streaming:
        return Configs(base, policy)
    return Configs(StreamConfig(
        base=base, input_subscription=opts.input_subscription, input_topic=opts.input_topic,
        output_topic=opts.output_topic, dead_letter_topic=opts.dead_letter_topic,
        window_s=opts.window_s, allowed_lateness_s=opts.allowed_lateness_s,
        redelivery_retention_days=opts.redelivery_retention_days or opts.signature_retention_days,
        pubsub_id_label=opts.pubsub_id_label), policy)
