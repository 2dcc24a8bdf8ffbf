"""One unreadable file next to good ones costs only itself (the whole batch job, DirectRunner)."""
from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import zlib
from collections import Counter
from pathlib import Path

import pytest

import schemas
from tests.conftest import RunOutput, run_pipeline

pytestmark = pytest.mark.slow


def line(i, prefix, **kw) -> bytes:
    return json.dumps({"review_id": f"{prefix}{i}", "product_id": f"p{i % 7}", "author_id": f"a{prefix}{i}",
                       "rating": 1 + i % 5, "created_at": "2025-01-01T00:00:00Z",
                       "body": f"Review {i} of {prefix}: the thing {i * 7919 % 1000} did what it said, mostly.",
                       **kw}).encode()


def lines(prefix, n=40) -> bytes:
    return b"\n".join(line(i, prefix) for i in range(n)) + b"\n"


@pytest.fixture(scope="module")
def bad_files_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("badfiles")
    data = root / "in"
    data.mkdir()
    (data / "good.jsonl").write_bytes(lines("good")
                                      + b'{"review_id": "dupkey", "product_id": "p", "author_id": "a", "rating": 1, '
                                        b'"body": "Awful, it broke.", "created_at": "2025-01-01T00:00:00Z", '
                                        b'"rating": 5, "body": "Wonderful!"}\n'
                                      + line(0, "huge", rating=10 ** 400) + b"\n")
    (data / "good.jsonl.gz").write_bytes(gzip.compress(lines("gz")))
    (data / "good.jsonl.bz2").write_bytes(bz2.compress(lines("bz")))
    whole = gzip.compress(lines("trunc", 2000))
    (data / "truncated.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    (data / "plain.jsonl.gz").write_bytes(lines("plain"))  # not gzip at all
    (data / "bomb.jsonl.gz").write_bytes(gzip.compress(lines("bomb", 3) + b"\n" * 5_000_000))
    (data / "cut.jsonl.bz2").write_bytes(bz2.compress(lines("cutbz"))[:-20])
    # codecs Beam would open by name without a bound or a truncation check
    (data / "good.jsonl.xz").write_bytes(lzma.compress(lines("xz")))
    (data / "good.jsonl.deflate").write_bytes(zlib.compress(lines("deflate")))
    import zstandard
    (data / "bomb.jsonl.zst").write_bytes(zstandard.ZstdCompressor(level=19).compress(lines("zbomb", 3) + b"\n" * 50_000_000))
    whole = zstandard.ZstdCompressor().compress(lines("ztrunc", 2000))
    (data / "truncated.jsonl.zst").write_bytes(whole[: len(whole) // 2])
    # a file name that is not UTF-8, a FIFO (opening it would block) and a device (never ends)
    with open(os.fsencode(data) + b"/not-utf8-\xff.jsonl", "wb") as fh:
        fh.write(lines("latin"))
    os.mkfifo(data / "fifo.jsonl")
    os.symlink("/dev/zero", data / "zero.jsonl")
    out = RunOutput(str(root / "out"))
    summary = run_pipeline(str(data / "*"), out.prefix, "--run_id", "badfiles")
    return data, out, summary


def test_every_good_file_is_decided_and_the_summary_balances(bad_files_run):
    data, out, summary = bad_files_run
    assert (Path(out.prefix) / "run_summary.json").exists()
    schemas.validator("run_summary.schema.json").validate(out.summary)
    assert summary["conservation"]["ok"], summary["conservation"]
    decided = Counter(Path(d["provenance"]["input"]["uri"]).name for d in out.records("decisions"))
    assert decided["good.jsonl"] == 40 and decided["good.jsonl.gz"] == 40 and decided["good.jsonl.bz2"] == 40
    assert decided["good.jsonl.xz"] == 40 and decided["good.jsonl.deflate"] == 40
    assert decided["not-utf8-\\udcff.jsonl"] == 40   # its name kept as an escape, its records decided
    assert decided["bomb.jsonl.zst"] == 3 and 0 < decided["truncated.jsonl.zst"] < 2000
    assert decided["bomb.jsonl.gz"] == 3  # lines before the blank flood were decided
    assert 0 < decided["truncated.jsonl.gz"] < 2000  # lines before the cut were decided
    # the input accounting counts each unreadable remainder as one record, and the run says which
    assert summary["input_lines"] == summary["decisions"] + summary["dead_letters"]


def test_unreadable_files_are_named_with_their_code(bad_files_run):
    _, out, summary = bad_files_run
    problems = {Path(u["uri"]).name: u["error_code"] for u in summary["unreadable_files"]}
    assert problems == {"truncated.jsonl.gz": "truncated_file", "plain.jsonl.gz": "corrupt_file",
                        "bomb.jsonl.gz": "decompression_limit", "cut.jsonl.bz2": "truncated_file",
                        "bomb.jsonl.zst": "decompression_limit", "truncated.jsonl.zst": "truncated_file",
                        "fifo.jsonl": "corrupt_file", "zero.jsonl": "corrupt_file"}
    file_letters = [d for d in out.records("dead_letter") if d["stage"] == "read"]
    assert {Path(d["source"]["uri"]).name for d in file_letters} == set(problems)
    for d in file_letters:
        schemas.validator("dead_letter.schema.json").validate(d)
        assert d["error"] and d["source"]["line"] >= 1
    assert summary["dead_letters_by_code"]["truncated_file"] == 3


def test_ambiguous_and_absurd_lines_get_their_own_codes(bad_files_run):
    _, out, summary = bad_files_run
    by_id = {d.get("review_id"): d for d in out.records("dead_letter")}
    codes_by_line = Counter(d["error_code"] for d in out.records("dead_letter"))
    assert codes_by_line["duplicate_key"] == 1 and codes_by_line["internal_error"] == 0
    assert by_id["huge0"]["error_code"] == "rating_out_of_range"
