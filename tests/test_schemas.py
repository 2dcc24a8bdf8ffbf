"""The JSON Schema files and the typed Python records are one contract: prove they agree."""
from __future__ import annotations

import dataclasses
import typing

import pytest

import schemas
from schemas import codes
from schemas.records import Client, DeadLetter, Decision, ProductDoc, Published, Review, Source

JSON_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number", dict: "object"}


def _json_types(hint) -> set:
    """Python annotation → the set of JSON Schema types it admits."""
    origin = typing.get_origin(hint)
    if origin is typing.Union:
        return set().union(*(_json_types(a) for a in typing.get_args(hint)))
    if hint is type(None):
        return {"null"}
    if hint in (Source, Client):
        return {"object"}
    if origin in (dict, typing.Mapping) or hint is dict:
        return {"object"}
    if origin in (tuple, list):
        return {"array"}
    return {JSON_TYPES.get(hint, "?")}


def _schema_types(prop: dict) -> set:
    if "enum" in prop:
        return {"string" if isinstance(v, str) else "null" for v in prop["enum"]}
    t = prop.get("type")
    return set(t) if isinstance(t, list) else {t}


def test_review_schema_and_record_have_the_same_fields_types_and_required():
    schema = schemas.load("review.schema.json")
    fields = {f.name: f for f in dataclasses.fields(Review)}
    hints = typing.get_type_hints(Review)
    assert set(schema["properties"]) == set(fields)
    required = {name for name, f in fields.items()
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    assert set(schema["required"]) == required
    for name, prop in schema["properties"].items():
        py = _json_types(hints[name])
        js = _schema_types(prop)
        if name == "rating":  # JSON number; the record keeps ints for integral ratings
            assert js == {"number"} and py == {"integer", "number"}
            continue
        assert py == js, f"{name}: Python {py} vs schema {js}"


def test_client_schema_matches_client_record():
    props = schemas.load("review.schema.json")["properties"]["client"]["properties"]
    assert set(props) == {f.name for f in dataclasses.fields(Client)}
    review = Review.from_dict({"review_id": "r", "product_id": "p", "author_id": "a", "rating": 2, "body": "b",
                               "created_at": "2025-01-01T00:00:00Z", "client": {"device_id": "d1"},
                               "account_created_at": "2025-01-01T00:00:00Z"})
    assert review.client == Client(device_id="d1") and review.account_created_at == "2025-01-01T00:00:00Z"


def test_source_schema_matches_source_record():
    props = schemas.load("review.schema.json")["properties"]["source"]["properties"]
    assert set(props) == {f.name for f in dataclasses.fields(Source)}
    assert set(props["channel"]["enum"]) - {None} == {"on_site", "syndicated", "import", "email_request"}


@pytest.mark.parametrize("record, schema_file", [
    (Decision, "decision.schema.json"), (Published, "published.schema.json"),
    (DeadLetter, "dead_letter.schema.json"), (ProductDoc, "product.schema.json")])
def test_output_records_match_their_schemas(record, schema_file):
    schema = schemas.load(schema_file)
    names = {f.name for f in dataclasses.fields(record)}
    assert names == set(schema["properties"]), schema_file
    optional = {"raw_truncated"}  # emitted only when true
    assert set(schema["required"]) == names - optional


def test_code_lists_are_closed_and_documented():
    data = schemas.load("codes.json")
    assert set(codes.ERROR_CODES) == set(data["error_codes"])
    assert set(codes.REASON_CODES) == set(data["reason_codes"])
    for required in ("invalid_utf8", "malformed_json", "not_an_object", "missing_field", "wrong_type",
                     "rating_out_of_range", "bad_timestamp", "too_large", "redelivery"):
        assert required in codes.ERROR_CODES


def test_every_schema_is_valid_json_schema():
    from jsonschema import Draft202012Validator
    for name in schemas.SCHEMA_FILES:
        if name.endswith(".schema.json"):
            Draft202012Validator.check_schema(schemas.load(name))


def test_schema_rejects_what_the_contract_forbids():
    v = schemas.validator("review.schema.json")
    good = {"review_id": "r", "product_id": "p", "author_id": "a", "rating": 4.5, "body": "b",
            "created_at": "2025-01-01T00:00:00Z"}
    assert v.is_valid(good)
    assert v.is_valid(dict(good, unknown_field=1)), "unknown fields are accepted (forward compatible)"
    for bad in (dict(good, rating=4.2), dict(good, rating=0.5), dict(good, rating=True),
                dict(good, created_at="2025-01-01"), dict(good, language="en_US!"),
                dict(good, author_relationship="friend"), {k: v for k, v in good.items() if k != "body"}):
        assert not v.is_valid(bad), bad
