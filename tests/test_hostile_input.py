"""The conservation rule on hostile input, and on files this project did not write.

One run over several files at once: generated hostile lines, random bytes, a gzip file, and the
data sets in ../shared/datasets (CSV/TSV, not JSON Lines at all) when they are present. Every
non-blank line of every file must end as exactly one decision or one dead letter.
"""
from __future__ import annotations

import gzip
import json
import random
import shutil
from collections import Counter
from pathlib import Path

import pytest

from pipeline.files import iter_lines
from tests.conftest import SHARED_DATASETS, RunOutput, run_pipeline

pytestmark = pytest.mark.slow

GOOD = {"review_id": "g", "product_id": "p", "author_id": "a", "rating": 1, "body": "Broke on day two.",
        "created_at": "2025-01-01T00:00:00Z"}


def hostile_lines(rng: random.Random) -> list:
    def good(i, **kw):   # one account each: 20 reviews by one account in a day is itself evidence (velocity)
        return json.dumps(dict(GOOD, review_id=f"g{i}", **{"author_id": f"a{i}", **kw}), ensure_ascii=False).encode()

    lines = [
        good(1), good(1), good(1, body="changed"),               # redeliveries
        b"x" * 100_000,                                           # over --max_line_bytes
        good(2, body="y" * 5000),                                 # over --max_text_chars
        b"[" * 100_000 + b"]" * 100_000,                          # nesting bomb (also over size)
        b"[" * 3000 + b"]" * 3000,                                # recursion inside the limit
        b'{"review_id": "s", "body": "\\udc00"}',                 # lone surrogate
        b'{"rating": 1e999}', good(3).replace(b'"rating": 1', b'"rating": -1e999'),
        b"\x00" * 50, b"\r", b"\xef\xbb\xbf" + good(4),           # NULs, bare CR, BOM
        b"\xc3\x28", b"\xed\xa0\x80",                              # invalid UTF-8, encoded surrogate
        good(5, body="<script>while(1){}</script>"),              # nothing left after cleaning
        good(6, body="\u202eevil\u202c " * 10, title="\u0000"),
        good(7, source={"channel": "syndicated", "partner": None}),
        good(8, rating=4.5, language="zh-Hant-TW", body="很好用"),
        b'{"review_id": {"nested": 1}}', b"true", b'""', b"{}", b"{" * 10,
        json.dumps({"review_id": "k", "product_id": "p", "author_id": "a", "rating": 3, "body": "ok",
                    "created_at": "2025-13-45T99:99:99Z"}).encode(),
        good(9)[:-1] + b', "rating": 5, "body": "Wonderful!"}',     # repeated keys: never last-wins
        good(10).replace(b'"rating": 1', b'"rating": 1' + b"0" * 400),  # a 400-digit rating
        good(11, created_at="2999-01-01T00:00:00Z"),               # future-dated: clamped, decided
    ]
    for i in range(300):  # random bytes and random JSON-looking junk
        n = rng.randrange(1, 200)
        if i % 3 == 0:
            lines.append(bytes(rng.randrange(256) for _ in range(n)).replace(b"\n", b" "))
        elif i % 3 == 1:
            lines.append(good(100 + i, rating=rng.choice([1, 2.5, 5, 0, 7, "5", None]),
                              created_at=rng.choice(["2025-01-01T00:00:00Z", "nope", "2025-01-01"])))
        else:
            raw = bytearray(good(100 + i))
            for _ in range(3):
                raw[rng.randrange(len(raw))] = rng.randrange(32, 127)
            lines.append(bytes(raw).replace(b"\n", b" "))
    return lines


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    data = root / "in"
    data.mkdir()
    rng = random.Random(7)
    (data / "hostile.jsonl").write_bytes(b"\n".join(hostile_lines(rng)) + b"\n\n  \n")
    (data / "crlf.jsonl").write_bytes(b"\r\n".join(hostile_lines(rng)[:40]))  # no final newline
    with gzip.open(data / "compressed.jsonl.gz", "wb") as handle:
        handle.write(b"\n".join(hostile_lines(rng)[:60]))
    (data / "empty.jsonl").write_bytes(b"")
    for name in ("fake-reviews-8k.csv", "nsmc-ko-reviews-bucket0.tsv", "ott-deceptive-opinion-16hotels.csv"):
        if (SHARED_DATASETS / name).exists():  # files we did not write (not committed anywhere)
            shutil.copy(SHARED_DATASETS / name, data / name)
    out = RunOutput(str(root / "out"))
    run_pipeline(str(data / "*"), out.prefix, "--max_line_bytes", "20000", "--max_text_chars", "2000",
                 "--run_id", "hostile")
    return data, out


def _non_blank_lines(path: Path) -> set:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        return {n for n, line, truncated in iter_lines(handle, 20000) if truncated or line.strip()}


def test_every_line_of_every_file_is_accounted_for_exactly_once(hostile_run):
    data, out = hostile_run
    assert out.summary["conservation"]["ok"]
    seen = Counter()
    for rec in out.records("decisions"):
        seen[(Path(rec["provenance"]["input"]["uri"]).name, rec["provenance"]["input"]["line"])] += 1
    for rec in out.records("dead_letter"):
        seen[(Path(rec["source"]["uri"]).name, rec["source"]["line"])] += 1
    expected = {(p.name, n) for p in data.iterdir() for n in _non_blank_lines(p)}
    assert set(seen) == expected
    assert max(seen.values()) == 1
    assert out.summary["input_lines"] == len(expected)


def test_hostile_lines_get_the_right_codes(hostile_run):
    _, out = hostile_run
    by_code = Counter(d["error_code"] for d in out.records("dead_letter"))
    for code in ("malformed_json", "not_an_object", "invalid_utf8", "too_large", "redelivery",
                 "rating_out_of_range", "bad_timestamp", "wrong_type", "missing_field", "duplicate_key"):
        assert by_code[code] > 0, code
    assert by_code["internal_error"] == 0
    for dead in out.records("dead_letter"):
        assert dead["error"] and dead["source"]["line"] >= 1
        assert len(dead["raw"]) <= 20000 * 4


def test_good_lines_among_hostile_ones_are_still_decided(hostile_run):
    _, out = hostile_run
    decisions = {d["review_id"]: d for d in out.records("decisions")}
    assert decisions["g1"]["decision"] == "publish"
    assert decisions["g5"]["decision"] == "reject" and decisions["g5"]["reasons"] == ["empty_after_cleaning"]
    assert decisions["g8"]["language"] == "zh-Hant-TW"
    assert decisions["g11"]["created_at"] < "2999" and "created_at_adjusted" in decisions["g11"]["reasons"]
    dead = {d["review_id"]: d["error_code"] for d in out.records("dead_letter") if d["review_id"] in ("g9", "g10")}
    assert dead == {"g10": "rating_out_of_range"}  # g9's repeated keys: a dead letter without a trusted id
    assert "g9" not in decisions
