"""Reading lines with their numbers, as bytes, with a size limit enforced while reading."""
from __future__ import annotations

import io

from hypothesis import given, settings, strategies as st

from pipeline.files import iter_lines


def lines(data: bytes, max_bytes=100, chunk=7):
    return list(iter_lines(io.BytesIO(data), max_bytes, chunk_size=chunk))


def test_numbers_lines_and_strips_line_endings():
    assert lines(b"a\r\nbb\n\nccc") == [(1, b"a", False), (2, b"bb", False), (3, b"", False), (4, b"ccc", False)]


def test_trailing_newline_does_not_add_a_line():
    assert lines(b"a\nb\n") == [(1, b"a", False), (2, b"b", False)]


def test_over_size_line_is_cut_flagged_and_the_next_line_is_intact():
    data = b"x" * 1000 + b"\nok\n"
    assert lines(data, max_bytes=10) == [(1, b"x" * 10, True), (2, b"ok", False)]


def test_line_exactly_at_the_limit_is_not_truncated():
    assert lines(b"x" * 10 + b"\n", max_bytes=10) == [(1, b"x" * 10, False)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=20),
       st.integers(1, 50), st.integers(1, 13))
def test_every_line_comes_back_once_whatever_the_chunking(parts, max_bytes, chunk):
    data = b"\n".join(parts)
    got = lines(data, max_bytes=max_bytes, chunk=chunk)
    expected = parts if data else []
    if data and data.endswith(b"\n"):
        expected = parts[:-1]
    assert [n for n, _, _ in got] == list(range(1, len(got) + 1))
    assert len(got) == len(expected)
    for (_, line, truncated), part in zip(got, expected):
        part = part if len(part) > max_bytes else part.rstrip(b"\r")
        assert truncated == (len(part) > max_bytes)
        assert line == part[:max_bytes]
