"""Sources and sinks: JSON Lines files (local or gs://) in; JSON Lines out, in batch as sharded
files (:class:`WriteJsonLines`) and in streaming as event-time windowed files
(:class:`WriteWindowedJsonLines`). Pub/Sub in and out is Beam's own (``pipeline/stream.py``).

Lines are read with their file URI and 1-based line number (Beam's ReadFromText gives neither),
as bytes, so invalid UTF-8 becomes a dead letter instead of a crash, and with a size limit
enforced while reading, so one enormous line cannot exhaust a worker's memory.
"""
from __future__ import annotations

import hashlib
import logging
import uuid

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.transforms import trigger, window
from apache_beam.utils.timestamp import Duration, Timestamp

from pipeline.files import iter_lines, to_json_line
from schemas.records import InputRef, RawLine

LOG = logging.getLogger(__name__)
BLANK = "blank"
_PROGRESS_EVERY = 10_000


class _ReadLinesFn(beam.DoFn):
    """ReadableFile → RawLine per non-blank line, and a count of blank lines on the BLANK output."""

    def __init__(self, max_line_bytes: int):
        self._max = max_line_bytes
        self._lines = Metrics.counter("read", "input_lines")
        self._blank = Metrics.counter("read", "blank_lines")

    def process(self, readable_file):
        uri = readable_file.metadata.path
        LOG.info("Reading %s (%s bytes)", uri, readable_file.metadata.size_in_bytes)
        n = blank = 0
        with readable_file.open(mime_type="application/octet-stream") as handle:
            for lineno, data, truncated in iter_lines(handle, self._max):
                if not truncated and not data.strip():
                    blank += 1
                    self._blank.inc()
                    continue
                n += 1
                self._lines.inc()
                if n % _PROGRESS_EVERY == 0:
                    LOG.info("  %s: %d lines read", uri, n)
                yield RawLine(ref=InputRef(uri=uri, line=lineno), data=data, truncated=truncated)
        if blank:
            yield beam.pvalue.TaggedOutput(BLANK, blank)
        LOG.info("Read %s: %d non-blank lines, %d blank", uri, n, blank)


class ReadReviewLines(beam.PTransform):
    """Reads every file matching ``pattern`` → (lines: PCollection[RawLine], blank: PCollection[int])."""

    def __init__(self, pattern: str, max_line_bytes: int):
        super().__init__()
        self._pattern = pattern
        self._max = max_line_bytes

    def expand(self, pbegin):
        files = (pbegin
                 | "MatchFiles" >> fileio.MatchFiles(self._pattern)
                 | "ReadMatches" >> fileio.ReadMatches()
                 | "SpreadFiles" >> beam.Reshuffle())
        out = files | "ReadLines" >> beam.ParDo(_ReadLinesFn(self._max)).with_outputs(BLANK, main="lines")
        # Spread the lines of a big file over workers before the per-record work.
        lines = out.lines | "SpreadLines" >> beam.Reshuffle()
        return lines, out[BLANK]


class WriteJsonLines(beam.PTransform):
    """Writes records (dicts or records with ``to_dict``) as ``<prefix>/<name>/part-SSSSS-of-NNNNN.jsonl``."""

    def __init__(self, output: str, name: str, num_shards: int = 0):
        super().__init__()
        self._path = FileSystems.join(output.rstrip("/"), name, "part")
        self._shards = num_shards

    def expand(self, pcoll):
        return (pcoll
                | "ToJson" >> beam.Map(to_json_line)
                | "Write" >> beam.io.WriteToText(self._path, file_name_suffix=".jsonl",
                                                 num_shards=self._shards,
                                                 shard_name_template="-SSSSS-of-NNNNN"))


# -- streaming: event-time windowed files ----------------------------------------------------------

LATE_FIRING_DELAY_S = 10


def _utc(ts: Timestamp) -> str:
    return ts.to_utc_datetime().strftime("%Y%m%dT%H%M%SZ")


class _WritePaneFn(beam.DoFn):
    """(shard, JSON lines) of one window pane → one file, written under a temp name then renamed.

    The name is fixed by window, pane index and shard, so a retried bundle rewrites the same file.
    """

    def __init__(self, directory: str):
        self._dir = directory
        self._files = Metrics.counter("stream", "files_written")

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


def window_for_files(window_s: int, allowed_lateness_s: int) -> beam.WindowInto:
    """Fixed event-time windows; on time at the watermark, late panes batched; lateness covers the clamp."""
    return beam.WindowInto(
        window.FixedWindows(window_s),
        trigger=trigger.AfterWatermark(late=trigger.AfterProcessingTime(LATE_FIRING_DELAY_S)),
        accumulation_mode=trigger.AccumulationMode.DISCARDING,
        allowed_lateness=Duration(seconds=allowed_lateness_s + window_s))


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
