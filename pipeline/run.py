"""Entry point: moderate a batch of reviews.

Locally (DirectRunner)::

    python -m pipeline.run --input 'data/reviews-*.jsonl' --output out/run1
    review-moderation --input gs://bucket/in/2026-11-25/*.jsonl --output gs://bucket/out/2026-11-25

On Dataflow (see README, "Running on Dataflow")::

    python -m pipeline.run --runner DataflowRunner --project P --region R \\
        --temp_location gs://B/tmp --setup_file ./setup.py \\
        --input gs://B/in/*.jsonl --output gs://B/out/run1

Exit status: 0 when the run finished and every input line is accounted for; 1 when the
conservation rule failed; 2 for a usage error (bad flags, input matching no file).
"""
from __future__ import annotations

import datetime as dt
import logging
import sys
import time
from typing import List, Optional

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions

from pipeline.build import BatchConfig, build_pipeline
from pipeline.context import RunContext
from pipeline.dedup.config import DedupConfig
from pipeline.io import read_json
from pipeline.options import ModerationOptions
from pipeline.policy import Policy, PolicyError, load_overrides
from pipeline.transforms.summary import SUMMARY_FILE

LOG = logging.getLogger("pipeline")


class UsageError(Exception):
    pass


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    # Beam's own INFO lines (bundle and stage internals) drown the job's progress lines.
    for noisy in ("apache_beam", "google", "urllib3", "absl", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _check_io(opts: ModerationOptions) -> None:
    if not opts.input or not opts.output:
        raise UsageError("both --input PATTERN and --output PREFIX are required "
                         "(local paths or gs:// URIs)")
    try:
        matched = FileSystems.match([opts.input])[0].metadata_list
    except Exception as exn:  # noqa: BLE001 - any filesystem error is a usage error here
        raise UsageError(f"cannot list --input {opts.input!r}: {exn}") from exn
    files = [m for m in matched if not m.path.endswith("/")]
    if not files:
        raise UsageError(f"--input {opts.input!r} matches no file")
    LOG.info("Input %s: %d file(s), %d bytes", opts.input, len(files),
             sum(m.size_in_bytes for m in files))


def _dedup_config(opts: ModerationOptions) -> Optional[DedupConfig]:
    if not opts.dedup:
        return None
    try:
        return DedupConfig(threshold=opts.dedup_threshold, num_perm=opts.dedup_num_perm,
                           signature_store=opts.signature_store, retention_days=opts.signature_retention_days)
    except ValueError as exn:
        raise UsageError(str(exn)) from exn


def format_summary(summary: dict) -> str:
    """The run summary as a small table a person can read in a terminal."""
    rows = [("input lines (non-blank)", summary["input_lines"]),
            ("blank lines (ignored)", summary["blank_lines"]),
            ("decisions", summary["decisions"])]
    rows += [(f"  {k}", v) for k, v in summary["decisions_by_type"].items()]
    rows += [("dead letters", summary["dead_letters"])]
    rows += [(f"  {k}", v) for k, v in summary["dead_letters_by_code"].items()]
    rows += [("published", summary["published"]), ("products", summary["products"]),
             ("reviews with personal data redacted", summary.get("redacted_reviews", 0))]
    rows += [("languages", ", ".join(f"{k} {v}" for k, v in summary["languages"].items()))]
    for name, statuses in summary.get("detectors", {}).items():
        rows += [(f"detector {name}", ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))]
    if summary.get("duplicate_patterns"):
        rows += [("near-duplicate patterns", ", ".join(f"{k} {v}" for k, v in summary["duplicate_patterns"].items()))]
    width = max(len(r[0]) for r in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    verdict = "OK" if summary["conservation"]["ok"] else "FAILED"
    lines.append(f"conservation {verdict}: {summary['conservation']['detail']}")
    return "\n".join(lines)


def expand_date(opts: ModerationOptions) -> None:
    """Replaces {date} in --input/--output with --run_date (default: yesterday, UTC)."""
    if "{date}" not in f"{opts.input}{opts.output}":
        return
    run_date = opts.run_date or (dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)).isoformat()
    try:
        dt.date.fromisoformat(run_date)
    except ValueError as exn:
        raise UsageError(f"--run_date {run_date!r} is not YYYY-MM-DD") from exn
    opts.input = opts.input.replace("{date}", run_date)
    opts.output = opts.output.replace("{date}", run_date)
    LOG.info("Run date %s: input %s, output %s", run_date, opts.input, opts.output)


def run(argv: Optional[List[str]] = None, save_main_session: bool = False) -> dict:
    """Builds and runs the batch job; returns the run summary. Raises UsageError for bad flags."""
    options = PipelineOptions(argv)
    options.view_as(SetupOptions).save_main_session = save_main_session
    opts = options.view_as(ModerationOptions)
    from apache_beam.options.pipeline_options import StandardOptions
    if options.view_as(StandardOptions).streaming:  # Pub/Sub in and out: pipeline/stream.py
        from pipeline.stream import run_streaming
        return run_streaming(options, UsageError)  # this module's class, also when run as __main__
    if opts.input and opts.output:
        expand_date(opts)
    if _is_template_build(options):
        if not opts.input or not opts.output:
            raise UsageError("--input and --output are required")
    else:
        _check_io(opts)
    try:
        policy = Policy.load(opts.policy)
        overrides = load_overrides(opts.overrides)
    except (PolicyError, OSError, ValueError) as exn:
        raise UsageError(str(exn)) from exn
    ctx = RunContext.create(opts.run_id, policy, input=opts.input, output=opts.output)
    cfg = BatchConfig(input=opts.input, output=opts.output, max_line_bytes=opts.max_line_bytes,
                      max_text_chars=opts.max_text_chars, signing_key_file=opts.signing_key_file,
                      require_signing_key=opts.require_signing_key, num_shards=opts.num_shards,
                      dedup=_dedup_config(opts), overrides=overrides, parity_margin=opts.parity_margin,
                      classifier=(opts.classifier_model or "") if opts.classifier else None,
                      classifier_threads=opts.classifier_threads)
    LOG.info("Run %s: pipeline %s (commit %s), policy %s %s", ctx.run_id, ctx.pipeline_version,
             ctx.commit or "unknown", ctx.policy_id, ctx.policy_version)
    started = time.monotonic()
    p = beam.Pipeline(options=options)
    build_pipeline(p, cfg, ctx, policy)
    result = p.run()
    if _is_template_build(options):
        LOG.info("Template written; nothing was run.")
        return {}
    result.wait_until_finish()
    summary = read_json(FileSystems.join(opts.output.rstrip("/"), SUMMARY_FILE))
    LOG.info("Run %s finished in %.1f s", ctx.run_id, time.monotonic() - started)
    return summary


def _is_template_build(options: PipelineOptions) -> bool:
    from apache_beam.options.pipeline_options import GoogleCloudOptions
    return bool(options.view_as(GoogleCloudOptions).template_location)


def main(argv: Optional[List[str]] = None) -> int:
    _configure_logging()
    argv = sys.argv[1:] if argv is None else argv
    try:
        summary = run(argv)
    except UsageError as exn:
        print(f"error: {exn}", file=sys.stderr)
        return 2
    except Exception as exn:  # noqa: BLE001 - the runner wraps stage errors; report them plainly
        LOG.error("The job failed: %s", exn)
        return 1
    if not summary:
        return 0
    output = summary["output"].rstrip("/")
    print()
    print(format_summary(summary))
    print()
    print(f"Outputs under {output}/: published/ decisions/ dead_letter/ products/ widget/ review_queue/ "
          f"restricted/ (access-controlled) {SUMMARY_FILE} report.html")
    return 0 if summary["conservation"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
