"""Plain file helpers (no Beam transforms): JSON Lines and JSON documents, local or gs://.

Beam's ``FileSystems`` gives one API over local paths and Cloud Storage; the pipeline's stages,
its tools (``pipeline.verify``, the signature store) and the widget server read and write through
these functions.
"""
from __future__ import annotations

import json
import re
import zlib

import orjson
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

from apache_beam.io.filesystems import FileSystems

_CHUNK = 1 << 20


class DuplicateKeyError(ValueError):
    """A JSON object names one key twice: which value counts is ambiguous (readers differ)."""

    def __init__(self, key: str):
        super().__init__(f"the key {key[:80]!r} appears twice in one JSON object")
        self.key = key


def unique_keys(pairs):
    """``object_pairs_hook`` for ``json.loads``: a dict, or DuplicateKeyError."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen = set()
        raise DuplicateKeyError(next(k for k, _ in pairs if k in seen or seen.add(k)))
    return obj


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


_ORJSON_OPTS = orjson.OPT_SORT_KEYS


def to_json_line(record: Any) -> str:
    """One JSON Lines row: UTF-8 (not \\u-escaped), compact, keys sorted so diffs between runs are readable.

    orjson (several times faster than ``json``; this is the cost of every output row): the same JSON
    values as ``json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))``, which
    is the fall-back for what orjson refuses (integers beyond 64 bits, non-string keys, lone
    surrogates). Floats may be spelt differently (``0.00001`` for ``1e-05``), never valued differently."""
    obj = record.to_dict() if hasattr(record, "to_dict") else record
    try:
        return orjson.dumps(obj, option=_ORJSON_OPTS).decode("utf-8")
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def write_json(path: str, obj: Dict[str, Any]) -> None:
    """Writes one JSON document to a local path or gs:// URI."""
    with FileSystems.create(path, mime_type="application/json") as handle:
        handle.write(json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8"))


def read_json(path: str) -> Dict[str, Any]:
    with FileSystems.open(path, mime_type="application/json") as handle:
        return json.loads(handle.read().decode("utf-8"))


def base_name(path: str) -> str:
    """The last part of a local, ``gs://`` or Windows path (after the last ``/`` or ``\\``)."""
    return re.split(r"[/\\]", path)[-1]


def read_json_lines(pattern: str, on_error: Optional[Callable[[str, int, str], None]] = None
                    ) -> Iterator[Dict[str, Any]]:
    """Every record of every file matching ``pattern`` (local or gs://); for tools and tests.

    With ``on_error``, a line that is not a JSON object, or a file that cannot be read, is reported
    as ``on_error(path, line number (0: the file), message)`` and skipped: one bad line never stops
    a reader (``pipeline.verify``, the widget server). Without it, the error is raised.
    """
    for match in sorted(FileSystems.match([pattern])[0].metadata_list, key=lambda m: m.path):
        try:
            with FileSystems.open(match.path, mime_type="application/octet-stream") as handle:
                for lineno, line, _ in iter_lines(handle, 1 << 30):
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line, object_pairs_hook=unique_keys)   # one value per key
                        if not isinstance(record, dict):
                            raise ValueError(f"a JSON {type(record).__name__}, not an object")
                    except (ValueError, RecursionError) as exn:   # RecursionError: [[[[…]]]] nested too deep
                        if on_error is None:
                            raise
                        on_error(match.path, lineno, (str(exn) or type(exn).__name__)[:200])
                        continue
                    yield record
        except (OSError, EOFError, zlib.error) as exn:
            if on_error is None:
                raise
            on_error(match.path, 0, f"cannot read the file: {exn}"[:300])
