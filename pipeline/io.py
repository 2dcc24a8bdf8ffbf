"""Sources and sinks: JSON Lines files (local or gs://) in; JSON Lines out, in batch as sharded
files (:class:`WriteJsonLines`) and in streaming as event-time windowed files
(:class:`WriteWindowedFiles`, all folders through one writer; :class:`WriteWindowedJsonLines` for
one). Pub/Sub in is Beam's own, Pub/Sub out Beam's or, on the DirectRunner, ``pipeline/stream.py``'s.

Lines are read with their file URI and 1-based line number (Beam's ReadFromText gives neither),
as bytes, so invalid UTF-8 becomes a dead letter instead of a crash, and with a size limit
enforced while reading, so one enormous line cannot exhaust a worker's memory.
"""
from __future__ import annotations

import bz2
import hashlib
import logging
import lzma
import os
import stat
import uuid
import zlib
from typing import Tuple

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.transforms import trigger, window
from apache_beam.utils.timestamp import Duration, Timestamp

from pipeline.files import iter_lines, to_json_line
from schemas import codes
from schemas.records import DeadLetter, InputRef, RawLine

LOG = logging.getLogger(__name__)
BLANK = "blank"
BAD_FILE = "bad_file"
_PROGRESS_EVERY = 10_000


DEFAULT_MAX_DECOMPRESSION_RATIO = 200
MIN_DECOMPRESSION_LIMIT = 1 << 20  # a tiny file may always expand to 1 MiB
_RAW_CHUNK = 1 << 16


class FileProblem(Exception):
    """A file (from some point on) cannot be read: ``code`` is a file-level dead-letter code."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


_SUFFIXES = ((".gz", "gzip"), (".bz2", "bzip2"), (".deflate", "deflate"), (".zst", "zstd"), (".zstd", "zstd"),
             (".xz", "lzma"), (".lzma", "lzma"))   # every suffix Beam's CompressionTypes.AUTO knows
_ZSTD_FEED = 512   # zstd has no output bound per call: input is fed in pieces this small (≤ ~16 MiB out each)


def compression_of(uri: str):
    """'gzip' | 'bzip2' | 'deflate' | 'zstd' | 'lzma' | None (read as is), from the file name, for
    every suffix Beam's AUTO would decompress: none of them is left to Beam's unbounded reader."""
    lower = uri.lower()
    return next((kind for suffix, kind in _SUFFIXES if lower.endswith(suffix)), None)


class BoundedDecompressor:
    """A binary file object over a compressed stream (gzip, bzip2, deflate, zstd, xz/lzma) that
    fails loudly instead of silently.

    * corrupt data (or a plain file named ``.gz``) → ``FileProblem(corrupt_file)``;
    * a stream that ends before its end-of-stream marker → ``FileProblem(truncated_file)``;
    * more than ``limit`` bytes of output → ``FileProblem(decompression_limit)`` (a bomb: a small
      file of millions of blank lines is stopped after ``limit`` bytes, never held in memory).

    Concatenated members or frames (``cat a.gz b.gz``) are read as one stream, as gzip does; an
    empty file is an empty stream. Each ``read`` returns at most ``size`` bytes and only ``b""`` at
    the end.
    """

    def __init__(self, raw, kind: str, limit: int):
        self._raw, self._kind, self._limit = raw, kind, limit
        self._d = None
        self._pending = b""
        self._raw_done = False
        self._out = 0
        self._ready = b""   # zstd: output decompressed but not yet returned

    def _new(self):
        if self._kind == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        if self._kind == "deflate":
            return zlib.decompressobj()          # what Beam's DEFLATE reads: a zlib stream
        if self._kind == "zstd":
            import zstandard   # Beam's own dependency for .zst
            return zstandard.ZstdDecompressor(max_window_size=1 << 31).decompressobj()
        if self._kind == "lzma":
            return lzma.LZMADecompressor()
        return bz2.BZ2Decompressor()

    def _fill(self) -> None:
        if not self._pending and not self._raw_done:
            chunk = self._raw.read(_RAW_CHUNK)
            if chunk:
                self._pending = chunk
            else:
                self._raw_done = True

    def _step(self, size: int) -> Tuple[bytes, bytes]:
        """(input consumed, output) of one bounded call of the current decompressor."""
        if self._kind == "zstd":
            self._fill()
            data, self._pending = self._pending[:_ZSTD_FEED], self._pending[_ZSTD_FEED:]
            out = self._d.decompress(data)
            if self._d.eof:
                self._pending = self._d.unused_data + self._pending
            return data, out
        tail = self._kind in ("gzip", "deflate")
        needs_input = tail or self._d.needs_input
        if needs_input:
            self._fill()
        data, self._pending = (self._pending, b"") if needs_input else (b"", self._pending)
        out = self._d.decompress(data, size)
        if self._d.eof:
            self._pending = self._d.unused_data + self._pending
        elif tail:
            self._pending = self._d.unconsumed_tail + self._pending
        return data, out

    def read(self, size: int = -1) -> bytes:
        size = size if size and size > 0 else 1 << 20
        while True:
            if self._ready:   # the limit counts what is returned: lines before a flood are still read
                out, self._ready = self._ready[:size], self._ready[size:]
                self._out += len(out)
                if self._out > self._limit:
                    raise FileProblem(codes.DECOMPRESSION_LIMIT, f"the {self._kind} stream expands beyond "
                                      f"{self._limit} bytes (--max_decompression_ratio): reading stopped")
                return out
            if self._d is None:  # between members: the end, or the next member
                self._fill()
                if not self._pending:
                    return b""
                self._d = self._new()
            try:
                data, out = self._step(size)
            except Exception as exn:  # noqa: BLE001 -- zlib.error, OSError, EOFError, LZMAError, ZstdError...
                raise FileProblem(codes.CORRUPT_FILE, f"not a valid {self._kind} stream after {self._out} "
                                  f"bytes of output: {exn}") from exn
            ended = self._d.eof
            if ended:
                self._d = None
            if not out and not data and self._raw_done and not ended and not self._pending:
                raise FileProblem(codes.TRUNCATED_FILE, f"the {self._kind} stream ends before its "
                                  f"end-of-stream marker after {self._out} bytes: the file is truncated")
            self._ready = out

    def close(self) -> None:
        self._raw.close()


def printable_uri(uri: str) -> str:
    """``uri`` as valid text: a local file name that is not UTF-8 (its bytes as surrogates) keeps
    them as ``\\udcff`` escapes, so its records can be written out and decided."""
    return uri.encode("utf-8", "backslashreplace").decode("utf-8")   # valid text is unchanged


def decompression_limit(compressed_size: int, ratio: int) -> int:
    return max(MIN_DECOMPRESSION_LIMIT, ratio * max(compressed_size, 0))


def open_input(readable_file, ratio: int):
    """A binary file object of a matched input file, decompressed (bounded) if its name says so."""
    uri = readable_file.metadata.path
    if "://" not in uri:   # a local FIFO would block the open, a device (/dev/zero) never end
        mode = os.stat(uri).st_mode
        if not stat.S_ISREG(mode):
            raise FileProblem(codes.CORRUPT_FILE, "not a regular file (a FIFO, device or socket): not read")
    kind = compression_of(uri)   # every codec Beam knows by name is read by BoundedDecompressor, never Beam
    raw = readable_file.open(mime_type="application/octet-stream",
                             compression_type=CompressionTypes.UNCOMPRESSED)
    if kind is None:
        return raw
    return BoundedDecompressor(raw, kind, decompression_limit(readable_file.metadata.size_in_bytes or 0, ratio))


class _ReadLinesFn(beam.DoFn):
    """ReadableFile → RawLine per non-blank line, a count of blank lines on the BLANK output, and a
    file-level dead letter on the BAD_FILE output when the file (or its remainder) cannot be read.

    An unreadable file costs only itself: the lines read before the problem go on to be decided;
    one dead letter, at the line number where reading stopped, stands for the rest of the file
    and counts as one input record in the run summary's conservation rule."""

    def __init__(self, max_line_bytes: int, max_decompression_ratio: int = DEFAULT_MAX_DECOMPRESSION_RATIO,
                 run_id: str = ""):
        self._max = max_line_bytes
        self._ratio = max_decompression_ratio
        self._run_id = run_id
        self._lines = Metrics.counter("read", "input_lines")
        self._blank = Metrics.counter("read", "blank_lines")
        self._bad = Metrics.counter("read", "unreadable_files")

    def process(self, readable_file):
        uri = printable_uri(readable_file.metadata.path)
        LOG.info("Reading %s (%s bytes)", uri, readable_file.metadata.size_in_bytes)
        n = blank = lineno = 0
        problem = None
        handle = None
        try:
            handle = open_input(readable_file, self._ratio)
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
        except FileProblem as exn:
            problem = (exn.code, exn.message)
        except Exception as exn:  # noqa: BLE001 - an unreadable file must cost itself, not the job
            problem = (codes.CORRUPT_FILE, f"reading failed: {exn!r}"[:2000])
        finally:
            if handle is not None:
                try:
                    handle.close()
                except Exception:  # noqa: BLE001
                    pass
        if blank:
            yield beam.pvalue.TaggedOutput(BLANK, blank)
        if problem is not None:
            code, message = problem
            self._bad.inc()
            LOG.error("Unreadable input %s after %d lines: %s (%s)", uri, lineno, message, code)
            yield beam.pvalue.TaggedOutput(BAD_FILE, DeadLetter(
                error_code=code, error=f"{message}; {n} non-blank lines before it were read and decided, "
                "the rest of the file is this one dead letter", raw="", source=InputRef(uri=uri, line=lineno + 1),
                stage="read", run_id=self._run_id))
        LOG.info("Read %s: %d non-blank lines, %d blank", uri, n, blank)


class ReadReviewLines(beam.PTransform):
    """Reads every file matching ``pattern`` → (lines: PCollection[RawLine], blank: PCollection[int],
    bad_files: PCollection[DeadLetter], one per unreadable file)."""

    def __init__(self, pattern: str, max_line_bytes: int,
                 max_decompression_ratio: int = DEFAULT_MAX_DECOMPRESSION_RATIO, run_id: str = ""):
        super().__init__()
        self._pattern = pattern
        self._max = max_line_bytes
        self._ratio = max_decompression_ratio
        self._run_id = run_id

    def expand(self, pbegin):
        files = (pbegin
                 | "MatchFiles" >> fileio.MatchFiles(self._pattern)
                 | "ReadMatches" >> fileio.ReadMatches()
                 | "SpreadFiles" >> beam.Reshuffle())
        out = files | "ReadLines" >> beam.ParDo(_ReadLinesFn(self._max, self._ratio, self._run_id)).with_outputs(
            BLANK, BAD_FILE, main="lines")
        # Spread the lines of a big file over workers before the per-record work.
        lines = out.lines | "SpreadLines" >> beam.Reshuffle()
        return lines, out[BLANK], out[BAD_FILE]


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
    """((folder, shard), JSON lines) of one window pane → ``<prefix>/<folder>/<file>``, written
    under a temp name then renamed.

    The name is fixed by window, pane index and shard, so a retried bundle rewrites the same file.
    """

    def __init__(self, prefix: str):
        self._prefix = prefix
        self._files = Metrics.counter("stream", "files_written")

    def process(self, keyed, win=beam.DoFn.WindowParam, pane=beam.DoFn.PaneInfoParam):
        (folder, shard), lines = keyed
        directory = FileSystems.join(self._prefix, folder)
        lines = sorted(lines)
        timing = {0: "early", 1: "ontime", 2: "late"}.get(pane.timing, "pane")
        name = (f"part-{_utc(win.start)}-{_utc(win.end)}-{timing}{pane.index:03d}-{shard:05d}.jsonl"
                if hasattr(win, "start") else f"part-global-{pane.index:05d}-{shard:05d}.jsonl")
        final = FileSystems.join(directory, name)
        temp = FileSystems.join(directory, ".temp", f"{uuid.uuid4().hex}-{name}")
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


def shard_of(line: str, shards: int) -> int:
    """The file shard of a JSON line: stable across runs and workers."""
    return int(hashlib.md5(line.encode("utf-8")).hexdigest(), 16) % shards if shards > 1 else 0


class WriteWindowedFiles(beam.PTransform):
    """((folder, shard), JSON line) → ``<prefix>/<folder>/part-<window start>-<window end>-<pane>-<shard>.jsonl``.

    Event-time windows (:func:`window_for_files`): a file per folder, shard and window when the
    watermark passes its end (``ontime``) and, for late records, more files ``LATE_FIRING_DELAY_S``
    after the first late one (``late001``...); nothing within the allowed lateness is dropped. All
    folders go through one window, one GroupByKey and one writer; the caller keys each line by
    folder and :func:`shard_of` (the streaming job does it while encoding). Returns the file names.
    """

    def __init__(self, output: str, window_s: int, allowed_lateness_s: int):
        super().__init__()
        self._prefix = output.rstrip("/")
        self._window = window_s
        self._lateness = allowed_lateness_s

    def expand(self, keyed_lines):
        return (keyed_lines
                | "Window" >> window_for_files(self._window, self._lateness)
                | "GroupPane" >> beam.GroupByKey()
                | "WritePane" >> beam.ParDo(_WritePaneFn(self._prefix)))


class WriteWindowedJsonLines(beam.PTransform):
    """Records → ``<prefix>/<name>/part-<window start>-<window end>-<pane>-<shard>.jsonl``
    (:class:`WriteWindowedFiles` for one folder). Returns the file names."""

    def __init__(self, output: str, name: str, window_s: int, allowed_lateness_s: int, shards: int = 0):
        super().__init__()
        self._name = name
        self._shards = shards or 1
        self._files = WriteWindowedFiles(output, window_s, allowed_lateness_s)

    def expand(self, records):
        name, shards = self._name, self._shards

        def keyed(record):
            line = to_json_line(record)
            return (name, shard_of(line, shards)), line

        return records | "ToJson" >> beam.Map(keyed) | "Write" >> self._files
