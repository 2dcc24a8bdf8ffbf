"""Parse stage: every kind of bad line becomes one dead letter with its code; good lines become items."""
from __future__ import annotations

import json

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import given, settings, strategies as st

from pipeline.transforms.parse import ParseReviews, parse_line
from schemas.records import DeadLetter, InputRef, Item, RawLine

GOOD = {"review_id": "r1", "product_id": "p1", "author_id": "a1", "rating": 2, "title": "Meh",
        "body": "Broke after a week.", "created_at": "2025-03-01T10:00:00+09:00", "language": "en",
        "source": {"channel": "syndicated", "partner": "Acme", "url": "https://acme.example/r/1"},
        "verified_purchase": True, "incentivized": False, "author_relationship": "none"}


def raw(data, line=1, truncated=False) -> RawLine:
    if isinstance(data, dict):
        data = json.dumps(data, ensure_ascii=False)
    if isinstance(data, str):
        data = data.encode("utf-8")
    return RawLine(InputRef("gs://b/in.jsonl", line), data, truncated)


def parse(data, **kw):
    return parse_line(raw(data, **kw), run_id="run-t", ingested_at="2025-01-01T00:00:00Z")


def variant(**changes):
    rec = dict(GOOD)
    for key, value in changes.items():
        if value is ...:
            rec.pop(key)
        else:
            rec[key] = value
    return rec


def test_good_line_becomes_a_typed_review():
    item = parse(GOOD)
    assert isinstance(item, Item)
    assert item.review.review_id == "r1" and item.review.rating == 2
    assert isinstance(item.review.rating, int)
    assert item.review.source.partner == "Acme"
    assert item.ref == InputRef("gs://b/in.jsonl", 1)


def test_half_star_and_integral_float_ratings():
    assert parse(variant(rating=4.5)).review.rating == 4.5
    rating = parse(variant(rating=4.0)).review.rating
    assert rating == 4 and isinstance(rating, int)


@pytest.mark.parametrize("data, code, words", [
    (b"{not json", "malformed_json", "not valid JSON"),
    (b'{"rating": NaN}', "malformed_json", "NaN"),
    (b"[" * 5000 + b"]" * 5000, "malformed_json", "nests too deeply"),
    (b"[1, 2]", "not_an_object", "list"),
    (b"null", "not_an_object", "NoneType"),
    (b"\xff\xfe{}", "invalid_utf8", "0xff"),
    (b'{"review_id": "a\\ud800"}', "invalid_utf8", "surrogate"),
    (variant(body=...), "missing_field", "'body'"),
    (variant(rating="5"), "wrong_type", "rating"),
    (variant(rating=True), "wrong_type", "rating"),
    (variant(verified_purchase="yes"), "wrong_type", "verified_purchase"),
    (variant(source="acme"), "wrong_type", "source"),
    (variant(rating=0), "rating_out_of_range", "1 to 5"),
    (variant(rating=5.5), "rating_out_of_range", "1 to 5"),
    (variant(rating=3.3), "rating_out_of_range", "steps of 0.5"),
    (json.dumps(variant(rating=5)).replace('"rating": 5', '"rating": 1e400'), "rating_out_of_range", "1 to 5"),
    (variant(created_at="last tuesday"), "bad_timestamp", "RFC 3339"),
    (variant(created_at="2025-02-29T10:00:00Z"), "bad_timestamp", "day is out of range"),
    (variant(created_at="2025-01-01T10:00:00"), "bad_timestamp", "RFC 3339"),
    (variant(review_id=""), "invalid_value", "must not be empty"),
    (variant(language="english please"), "invalid_value", "BCP 47"),
    (variant(author_relationship="cousin"), "invalid_value", "allowed"),
    (variant(source={"channel": "carrier pigeon"}), "invalid_value", "allowed"),
    (variant(body="x" * 20_001), "too_large", "20001 characters"),
])
def test_bad_lines_become_dead_letters_with_code_and_readable_message(data, code, words):
    dead = parse(data, line=7)
    assert isinstance(dead, DeadLetter), dead
    assert dead.error_code == code
    assert words in dead.error
    assert dead.source == InputRef("gs://b/in.jsonl", 7)
    assert dead.stage == "parse" and dead.run_id == "run-t"
    assert dead.raw  # the line (or its start) is kept for whoever fixes the producer
    json.dumps(dead.to_dict(), ensure_ascii=False).encode("utf-8")  # always writable


def test_missing_field_wins_over_other_problems_and_all_of_that_kind_are_listed():
    dead = parse(variant(body=..., author_id=..., rating=9))
    assert dead.error_code == "missing_field"
    assert "'body'" in dead.error and "'author_id'" in dead.error


def test_review_id_is_kept_on_dead_letters_when_readable():
    assert parse(variant(rating=9)).review_id == "r1"
    assert parse(b"[]").review_id is None


def test_over_size_line_is_too_large_and_raw_is_cut():
    dead = parse_line(raw(b"x" * 10_000, truncated=True), run_id="r", ingested_at="t")
    assert dead.error_code == "too_large" and dead.raw_truncated and len(dead.raw) == 4096


def test_a_long_bad_line_keeps_a_bounded_raw():
    """1 MiB of control characters: kept whole, its JSON (\\u0001 each) was a 6 MB dead letter."""
    dead = parse(b"\x01" * (1 << 20))
    assert dead.error_code == "malformed_json" and dead.raw_truncated and len(dead.raw) == 65536
    assert not parse(b"\x01" * 100).raw_truncated   # a short bad line is kept whole


def test_byte_order_mark_is_not_content():
    assert isinstance(parse(b"\xef\xbb\xbf" + json.dumps(GOOD).encode()), Item)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(lambda s: s.encode("utf-8", "surrogatepass")))
def test_any_bytes_give_exactly_one_item_or_dead_letter(data):
    out = parse_line(raw(data), run_id="r", ingested_at="t")
    assert isinstance(out, (Item, DeadLetter))
    if isinstance(out, DeadLetter):
        json.dumps(out.to_dict(), ensure_ascii=False).encode("utf-8")


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(GOOD) + ["extra"]),
                       st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
                       | st.lists(st.integers(), max_size=2) | st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2)))
def test_any_json_object_gives_exactly_one_item_or_dead_letter(obj):
    out = parse(dict(GOOD, **obj))
    assert isinstance(out, (Item, DeadLetter))


def test_parse_transform_routes_items_and_dead_letters():
    lines = [raw(GOOD, 1), raw(b"oops", 2), raw(variant(review_id="r2"), 3), raw(variant(rating=7), 4)]
    with BeamTestPipeline() as p:
        items, dead = p | beam.Create(lines) | ParseReviews("run-t")
        assert_that(items | "Ids" >> beam.Map(lambda it: it.review.review_id), equal_to(["r1", "r2"]), label="items")
        assert_that(dead | "Codes" >> beam.Map(lambda d: (d.source.line, d.error_code)),
                    equal_to([(2, "malformed_json"), (4, "rating_out_of_range")]), label="dead")
