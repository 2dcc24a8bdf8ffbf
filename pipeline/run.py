"""The launcher: moderate a batch of reviews, or a stream of them with ``--streaming``.

Flags → ``options.configs_from_options`` → ``build.build_pipeline`` (batch) or
``stream.build_stream_pipeline`` (streaming) → run. Locally (DirectRunner)::

    python -m pipeline.run --input 'data/reviews-*.jsonl' --output out/run1
    review-moderation --input gs://bucket/in/2026-11-25/*.jsonl --output gs://bucket/out/2026-11-25
    python -m pipeline.run --streaming --input_subscription projects/P/subscriptions/S \\
        --output out/stream --output_topic projects/P/topics/events --stream_duration_s 600

On Dataflow (see README, "Running on Dataflow")::

    python -m pipeline.run --runner DataflowRunner --project P --region R \\
        --temp_location gs://B/tmp --setup_file ./setup.py \\
        --input gs://B/in/*.jsonl --output gs://B/out/run1

Exit status: 0 when the run finished and every input line is accounted for (streaming: when it
stopped cleanly); 1 when the conservation rule failed or the job failed; 2 for a usage error
(bad flags, input matching no file).
"""
from __future__ import annotations

import ctypes
import datetime as dt
import logging
import os
import signal
import sys
import threading
import time
from typing import List, Optional

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions, SetupOptions, StandardOptions

from pipeline.build import build_pipeline
from pipeline.context import RunContext
from pipeline.files import read_json
from pipeline.options import ModerationOptions, UsageError, configs_from_options
from pipeline.stream import build_stream_pipeline
from pipeline.transforms.summary import SUMMARY_FILE

LOG = logging.getLogger("pipeline")


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
    if "://" not in opts.input:
        _check_local_input(opts.input, [m.path for m in files])
    if not files:
        raise UsageError(f"--input {opts.input!r} matches no file")
    LOG.info("Input %s: %d file(s), %d bytes", opts.input, len(files),
             sum(m.size_in_bytes for m in files))


def _check_local_input(pattern: str, matched: List[str]) -> None:
    """Local ``--input`` that Beam's matcher would read differently from what it names: a directory
    (it reads no file in it), an existing file whose name has glob characters (Beam reads the
    pattern instead: ``reviews[1].jsonl`` → ``reviews1.jsonl``), or files a POSIX glob matches that
    Beam's does not (it treats a backslash in a name as a separator and skips the file silently)."""
    import glob
    if os.path.isdir(pattern):
        raise UsageError(f"--input {pattern!r} is a directory: give a pattern of its files, e.g. "
                         f"{os.path.join(pattern, '*.jsonl')!r}")
    got = {os.path.abspath(p) for p in matched}
    if os.path.isfile(pattern) and glob.has_magic(pattern) and got != {os.path.abspath(pattern)}:
        raise UsageError(f"--input {pattern!r} names a file, but its name has glob characters and Beam reads it "
                         f"as a pattern ({len(got)} other file(s) matched): rename the file or use a pattern "
                         "that matches only it")
    skipped = sorted(p for p in (os.path.abspath(x) for x in glob.glob(pattern, recursive=True))
                     if os.path.isfile(p) and p not in got)
    if skipped:
        raise UsageError(f"--input {pattern!r}: {len(skipped)} file(s) match it but Beam's file matcher skips them "
                         f"(its `**` needs at least one folder; a backslash in a name; a folder reached through a link), so "
                         "they would not be read: "
                         f"{skipped[:3]}; rename or move them")


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


def return_freed_memory_sooner() -> bool:
    """glibc only: blocks over 128 KiB come from mmap and the heap is trimmed above 128 KiB free, so
    memory the DirectRunner frees after each stage goes back to the system instead of staying with the
    process (the same as ``MALLOC_MMAP_THRESHOLD_=131072 MALLOC_TRIM_THRESHOLD_=131072``; issue #23:
    RSS growth 8.3 → 6.4 KB a review measured with the variables, README *Throughput*).
    ``REVIEW_MALLOC_TUNING=0`` leaves the allocator alone. Returns whether it was applied."""
    if os.environ.get("REVIEW_MALLOC_TUNING", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):   # not glibc (macOS, musl): nothing to tune
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3   # <malloc.h>
    return bool(mallopt(m_mmap_threshold, 131072)) and bool(mallopt(m_trim_threshold, 131072))


def run(argv: Optional[List[str]] = None, save_main_session: bool = False) -> dict:
    """Builds and runs the job; returns the batch run summary ({} for streaming and template builds).
    Raises UsageError for bad flags."""
    options = PipelineOptions(argv)
    options.view_as(SetupOptions).save_main_session = save_main_session
    opts = options.view_as(ModerationOptions)
    if options.view_as(StandardOptions).streaming:
        return _run_streaming(options, opts)
    if opts.input and opts.output:
        expand_date(opts)
    if _is_template_build(options):
        if not opts.input or not opts.output:
            raise UsageError("--input and --output are required")
    else:
        _check_io(opts)
    cfg, policy = configs_from_options(opts)
    return_freed_memory_sooner()
    ctx = RunContext.create(opts.run_id, policy, input=opts.input, output=opts.output)
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
    return bool(options.view_as(GoogleCloudOptions).template_location)


def _join_interruptibly(thread: threading.Thread, timeout: Optional[float], step: float = 0.25) -> None:
    """``thread.join(timeout)`` in short steps, so that a stop signal is acted on within ``step``.

    Python runs a signal's handler in the main thread, when it next runs Python code; a signal the
    kernel hands to another thread (a gRPC pull thread, say) does not wake a main thread blocked in
    one untimed ``join``, which then never sees it."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while thread.is_alive():
        left = step if deadline is None else min(step, deadline - time.monotonic())
        if left <= 0:
            return
        thread.join(left)


class StopSignals:
    """SIGINT and SIGTERM as one clean stop of a DirectRunner streaming job.

    Python installs its Ctrl-C handler only when SIGINT is not ignored at start-up, and a shell
    starts a background command (``make stream-demo &``) with SIGINT ignored: the job then ignored
    the demo's SIGINT and ran on until SIGTERM killed it 60 s later (fresh-clone runs of
    ``make stream-demo`` started in the background, sessions 17–19). Within ``with StopSignals()``
    (main thread only) either signal requests a stop: before :meth:`arm` (the job still starting)
    it is remembered, then raised at once; while armed it raises KeyboardInterrupt; after the first
    one every later signal is only logged, so a second Ctrl-C cannot break off the cancel. The
    previous handlers are restored at the end."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested: Optional[str] = None
        self._armed = False
        self._previous: dict = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.requested is not None:
            LOG.info("%s: already stopping", name)
            return
        self.requested = name
        if self._armed:
            self._armed = False
            raise KeyboardInterrupt(name)
        LOG.info("%s: the job stops as soon as it has started", name)

    def arm(self) -> None:
        """From now on a stop raises KeyboardInterrupt; raises it now if one came already."""
        if self.requested is not None:
            raise KeyboardInterrupt(self.requested)
        self._armed = True

    def disarm(self) -> None:
        self._armed = False


def _run_streaming(options: PipelineOptions, opts: ModerationOptions) -> dict:
    """Builds and runs the streaming job. On DirectRunner it runs here until --stream_duration_s
    passes or the process is interrupted (SIGINT or SIGTERM), then cancels; on Dataflow it returns
    once submitted."""
    cfg, policy = configs_from_options(opts, streaming=True)
    ctx = RunContext.create(opts.run_id, policy, input=cfg.source, output=opts.output or opts.output_topic)
    LOG.info("Streaming run %s: %s → events %s, dead letters %s, files %s (window %d s, allowed lateness %d s)",
             ctx.run_id, cfg.source, cfg.output_topic or "-", cfg.dead_letter_topic or "-", cfg.output or "-",
             cfg.window_s, cfg.allowed_lateness_s)
    options.view_as(StandardOptions).streaming = True
    p = beam.Pipeline(options=options)
    build_stream_pipeline(p, cfg, ctx, policy)
    runner = str(options.view_as(StandardOptions).runner or "DirectRunner")
    if "Direct" not in runner:
        p.run()
        LOG.info("Submitted streaming job (%s); stop it with drain or cancel, replace it with --update.", runner)
        return {}
    with StopSignals() as stop:
        result = p.run()
        _wait_then_cancel(result, opts.stream_duration_s, stop)
    return {}


def _wait_then_cancel(result, duration_s: Optional[float], stop: StopSignals) -> None:
    """DirectRunner's wait_until_finish takes no duration: wait in a thread, cancel from this one."""
    failure = []

    def wait():
        try:
            result.wait_until_finish()
        except BaseException as exn:  # noqa: BLE001 - handed to the main thread
            failure.append(exn)

    waiter = threading.Thread(target=wait, name="wait-until-finish", daemon=True)
    waiter.start()
    try:
        stop.arm()
        _join_interruptibly(waiter, duration_s or None)
        stop.disarm()
        if failure:
            raise failure[0]
        if not waiter.is_alive():
            return
        LOG.info("Stream duration of %.0f s reached: cancelling the streaming job", duration_s)
    except KeyboardInterrupt as exn:
        LOG.info("Interrupted (%s): cancelling the streaming job", exn or "SIGINT")
    finally:
        stop.disarm()
        started = time.monotonic()
        try:
            result.cancel()
        except Exception as exn:  # noqa: BLE001 - already finished or failed: nothing left to stop
            LOG.debug("cancel: %s", exn)
        LOG.info("Streaming job stopped (%.1f s to cancel)", time.monotonic() - started)


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
