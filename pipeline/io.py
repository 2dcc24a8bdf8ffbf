"""Sources and sinks: JSON Lines files (local or gs://) in, JSON Lines and a run summary out.

Lines are read with their file URI and 1-based line number (Beam's ReadFromText gives neither),
as bytes, so invalid UTF-8 becomes a dead letter instead of a crash, and with a size limit
enforced while reading, so one enormous line cannot exhaust a worker's memory.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Dict, Iterator, Tuple

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from schemas.records import InputRef, RawLine

LOG = logging.getLogger(__name__)
BLANK = "blank"
_CHUNK = 1 << 20
_PROGRESS_EVERY = 10_000


def iter_lines(fileobj, max_line_bytes: int, chunk_size: int = _CHUNK) -> Iterator[Tuple[int, bytes, bool]]:
    """Yields (line number, bytes without the line ending, truncated) for each line of a binary file.

    A line longer than ``max_line_bytes`` is cut to that length and flagged; the rest of it is
    read past without being held in memory.
    """
    buf = bytearray()
    lineno = 0
    over = False

    def add(piece: bytes) -> None:
        nonlocal over
        if over:
            return
        buf.extend(piece)
        if len(buf) > max_line_bytes:
            over = True
            del buf[max_line_bytes:]

    while True:
        chunk = fileobj.read(chunk_size)
        if not chunk:
            break
        start = 0
        while True:
            nl = chunk.find(b"\n", start)
            if nl < 0:
                add(chunk[start:])
                break
            add(chunk[start:nl])
            lineno += 1
            data = bytes(buf)
            yield lineno, (data if over else data.rstrip(b"\r")), over
            buf.clear()
            over = False
            start = nl + 1
    if buf or over:
        lineno += 1
        yield lineno, bytes(buf) if over else bytes(buf).rstrip(b"\r"), over


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


def to_json_line(record: Any) -> str:
    """One JSON Lines row: UTF-8 (not \\u-escaped), keys sorted so diffs between runs are readable."""
    obj = record.to_dict() if hasattr(record, "to_dict") else record
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


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


def write_json(path: str, obj: Dict[str, Any]) -> None:
    """Writes one JSON document to a local path or gs:// URI."""
    with FileSystems.create(path, mime_type="application/json") as handle:
        handle.write(json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8"))


def read_json(path: str) -> Dict[str, Any]:
    with FileSystems.open(path, mime_type="application/json") as handle:
        return json.loads(handle.read().decode("utf-8"))


def read_json_lines(pattern: str) -> Iterator[Dict[str, Any]]:
    """Every record of every file matching ``pattern`` (local or gs://); for tools and tests."""
    for match in FileSystems.match([pattern])[0].metadata_list:
        with FileSystems.open(match.path, mime_type="application/octet-stream") as handle:
            for _, line, _ in iter_lines(handle, 1 << 30):
                if line.strip():
                    yield json.loads(line)
