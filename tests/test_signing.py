"""Signatures on published reviews: valid ones verify; any change to any field breaks them."""
from __future__ import annotations

import copy
import json

import pytest

from pipeline import signing

KEY = signing.SigningKey("k-test", b"secret-for-tests")


def record() -> dict:
    rec = {"review_id": "r1", "product_id": "p1", "rating": 1, "title": None, "body": "Broke. 고장났어요",
           "language": "en", "created_at": "2025-01-01T00:00:00Z", "labels": [{"code": "verified_purchase"}],
           "provenance": {"run_id": "x", "content_sha256": "0" * 64, "signature_scheme": signing.scheme(KEY)}}
    rec["signature"] = signing.sign(rec, KEY)
    return rec


def test_signed_record_verifies():
    assert signing.verify_published(record(), KEY)
    assert signing.verify_published(record(), {"k-test": b"secret-for-tests", "k-old": b"x"})


def test_round_trip_through_json_lines_still_verifies():
    assert signing.verify_published(json.loads(json.dumps(record(), ensure_ascii=False)), KEY)


@pytest.mark.parametrize("path, value", [
    (("body",), "Great!"), (("rating",), 5), (("labels",), []), (("title",), "x"),
    (("provenance", "run_id"), "other"), (("review_id",), "r2"), (("signature",), "0" * 64),
])
def test_any_change_breaks_the_signature(path, value):
    rec = copy.deepcopy(record())
    target = rec
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert not signing.verify_published(rec, KEY)


def test_wrong_or_unknown_key_fails():
    assert not signing.verify_published(record(), signing.SigningKey("k-test", b"other"))
    assert not signing.verify_published(record(), {"k-other": b"secret-for-tests"})


def test_malformed_records_do_not_verify():
    assert not signing.verify_published({}, KEY)
    rec = record()
    del rec["signature"]
    assert not signing.verify_published(rec, KEY)


def test_canonical_form_is_sorted_compact_utf8():
    assert signing.canonical_json({"b": 1, "a": "é", "signature": "x"}) == '{"a":"é","b":1}'.encode()


def test_key_sources(monkeypatch, tmp_path):
    monkeypatch.delenv(signing.ENV_KEY, raising=False)
    assert signing.load_signing_key().is_demo
    with pytest.raises(ValueError, match="no signing key"):
        signing.load_signing_key(require=True)
    monkeypatch.setenv(signing.ENV_KEY, "from-env-" + "e" * 32)
    key = signing.load_signing_key(require=True)
    assert key.secret == b"from-env-" + b"e" * 32 and key.key_id.startswith("k-") and not key.is_demo
    path = tmp_path / "key"
    path.write_text("from-file-" + "f" * 32 + "\n")
    assert signing.load_signing_key(str(path)).secret == b"from-file-" + b"f" * 32
    assert "from-file" not in repr(signing.load_signing_key(str(path)))


@pytest.mark.parametrize("secret", ["", "   ", "short", "x" * 31])
def test_an_empty_or_short_key_is_an_error_never_the_demo_key(monkeypatch, tmp_path, secret):
    monkeypatch.setenv(signing.ENV_KEY, secret)
    for require in (False, True):
        with pytest.raises(signing.SigningKeyError, match="at least 32 bytes"):
            signing.load_signing_key(require=require)
    monkeypatch.delenv(signing.ENV_KEY)
    path = tmp_path / "key"
    path.write_text(secret + "\n")
    with pytest.raises(signing.SigningKeyError, match="at least 32 bytes"):
        signing.load_signing_key(str(path))


def test_manifest_signature_covers_every_served_number():
    key = signing.SigningKey("k1", b"m" * 32)
    records = [{"review_id": "r1", "signature": "aa"}, {"review_id": "r2", "signature": "bb"}]
    manifest = signing.sign_manifest("p1", "run", records, {"count": 2, "by_reason": {"suspected_fake": 2}},
                                     {"policy": {"id": "x"}, "detectors": []}, key)
    assert signing.verify_manifest(manifest, key) and manifest["review_count"] == 2
    assert manifest["reviews_sha256"] == signing.reviews_digest(list(reversed(records)))   # order-free
    for field, value in (("review_count", 3), ("reviews_sha256", "0" * 64), ("product_id", "p2"),
                         ("withheld", {"count": 0, "by_reason": {}}), ("moderation", {}), ("run_id", "other")):
        assert not signing.verify_manifest({**manifest, field: value}, key), field
    assert not signing.verify_manifest(manifest, signing.SigningKey("k1", b"n" * 32))
    assert not signing.verify_manifest({k: v for k, v in manifest.items() if k != "signature"}, key)
    assert not signing.verify_manifest(None, key) and not signing.verify_manifest("x", key)
