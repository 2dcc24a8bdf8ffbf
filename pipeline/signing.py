"""Signatures on published reviews, so a widget backend can verify a record was not altered.

Scheme (``signature_scheme`` in each record's provenance names it):

* ``alg``: HMAC-SHA256 with a secret key shared by the pipeline and the serving side.
* ``canonicalization`` ``json-sorted-compact-utf8-v1``: the published record *without* its
  ``signature`` field, serialised as JSON with keys sorted at every level, no whitespace
  (separators ``,`` and ``:``), non-ASCII characters as UTF-8 (not ``\\u`` escapes), then
  UTF-8 encoded. Integral ratings are integers (``4``, not ``4.0``) so JavaScript's
  ``JSON.stringify`` over sorted keys gives the same bytes.
* ``signature``: lower-case hex of the HMAC.
* ``key_id``: which key signed; verifiers keep a map of key id → secret, which makes rotation easy.

Keys: ``REVIEW_SIGNING_KEY`` (and optionally ``REVIEW_SIGNING_KEY_ID``) in the environment, or
``--signing_key_file`` (a local path or gs:// object readable only by the job's service account;
on Dataflow use this, or a Secret Manager secret mounted as a file). A key that is given must be
at least ``MIN_KEY_BYTES`` (32) bytes: an empty or short key is an error, never a fallback to the
demo key. Without any key, a clearly named demo key is used and a warning logged;
``--require_signing_key`` makes that an error (checked by the launcher before any input is read).

Per-product manifests (:func:`sign_manifest`): the pipeline also signs, for each product, what the
widget serves beyond the reviews themselves: how many reviews were published and a hash of their
ids and signatures, the withheld counts by reason and which policy and detectors decided. A server
that finds a product's verified records differ from its manifest (a review deleted or altered)
does not serve that product as verified.

A run index (:func:`sign_run_index`, ``PREFIX/run_index.json``) binds one run's manifests together:
its run id, when it was signed, and every product with its manifest's signature. A server that
requires it serves no product whose manifest is not the one the index lists (a product's files
taken from another run), reports every listed product whose document is missing, and can refuse a
run signed too long ago (a whole older run put in place of the current one).

A streaming job has no end at which to list a product's reviews, so each of its widget documents
carries a **streaming manifest** instead (:func:`sign_stream_manifest`): the product's running count
of published reviews and an order-free digest of all of them (:class:`ReviewSetDigest`, a sum of
2,048-bit hashes, updated one review at a time), the numbers the document shows (aggregate,
withheld, moderation), a digest of the reviews it carries, and a sequence number that grows with
every update of the product. ``pipeline.verify`` checks the newest document of each product against
the published records the job wrote.

Verify with :func:`verify_published`, :func:`verify_manifest`, :func:`verify_stream_manifest` and
:func:`verify_run_index`, or from the shell: ``python -m pipeline.verify PREFIX``.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Tuple, Union

LOG = logging.getLogger(__name__)
ALG = "HMAC-SHA256"
CANONICALIZATION = "json-sorted-compact-utf8-v1"
ENV_KEY = "REVIEW_SIGNING_KEY"
ENV_KEY_ID = "REVIEW_SIGNING_KEY_ID"
DEMO_KEY = b"demo-signing-key-NOT-FOR-PRODUCTION"
DEMO_KEY_ID = "demo-not-for-production"
MIN_KEY_BYTES = 32
MANIFEST_VERSION = "product-manifest/1"
STREAM_MANIFEST_VERSION = "stream-product-manifest/1"
RUN_INDEX_VERSION = "run-index/1"
STREAM_INDEX_VERSION = "stream-index/1"
STREAM_INDEX_DIR = "widget_index"
STREAM_DOCS_DIR = "widget_updates"   # a streaming job's windowed widget documents, which the index lists
RUN_INDEX_FILE = "run_index.json"


class SigningKeyError(ValueError):
    """A signing key that was given but cannot be used (empty, too short)."""


@dataclass(frozen=True)
class SigningKey:
    key_id: str
    secret: bytes = field(repr=False)

    @property
    def is_demo(self) -> bool:
        return self.key_id == DEMO_KEY_ID


def _derive_key_id(secret: bytes) -> str:
    return "k-" + hashlib.sha256(b"review-signing-key-id:" + secret).hexdigest()[:12]


def load_signing_key(key_file: Optional[str] = None, require: bool = False) -> SigningKey:
    """The key from ``key_file`` (local or gs://), else the environment, else the demo key."""
    secret = None
    if key_file:
        from apache_beam.io.filesystems import FileSystems
        with FileSystems.open(key_file, mime_type="application/octet-stream") as handle:
            secret = handle.read().strip()
        source = f"signing key file {key_file}"
    elif ENV_KEY in os.environ:
        secret = os.environ[ENV_KEY].strip().encode("utf-8")
        source = f"${ENV_KEY}"
    if secret is not None and len(secret) < MIN_KEY_BYTES:
        raise SigningKeyError(f"{source} is {'empty' if not secret else f'{len(secret)} bytes'}: a signing key must be "
                        f"at least {MIN_KEY_BYTES} bytes (e.g. `openssl rand -hex 32`); the demo key is never "
                        "used in place of a bad key")
    if secret is None:
        if require:
            raise ValueError(f"no signing key: set {ENV_KEY} or pass --signing_key_file "
                             "(--require_signing_key is on)")
        LOG.warning("No signing key given: signing with the DEMO key %r. Set %s or "
                    "--signing_key_file for anything a storefront will show.", DEMO_KEY_ID, ENV_KEY)
        return SigningKey(DEMO_KEY_ID, DEMO_KEY)
    return SigningKey(os.environ.get(ENV_KEY_ID) or _derive_key_id(secret), secret)


def scheme(key: SigningKey) -> dict:
    return {"alg": ALG, "key_id": key.key_id, "canonicalization": CANONICALIZATION}


def canonical_json(record: Mapping[str, Any]) -> bytes:
    """The bytes that are signed: ``record`` minus ``signature``, canonical JSON, UTF-8."""
    unsigned = {k: v for k, v in record.items() if k != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def sign(record: Mapping[str, Any], key: SigningKey) -> str:
    return hmac.new(key.secret, canonical_json(record), hashlib.sha256).hexdigest()


def verify_published(record: Mapping[str, Any],
                     keys: Union[SigningKey, Mapping[str, bytes]]) -> bool:
    """True when ``record['signature']`` is a valid signature by a known key over the rest of it.

    ``keys`` is one SigningKey or a map of key id → secret (to accept rotated keys).
    """
    try:
        return _signed_by_known_key(record, record["provenance"]["signature_scheme"], keys)
    except (KeyError, TypeError, AttributeError):
        return False


def _signed_by_known_key(signed: Mapping[str, Any], scheme_: Mapping[str, Any],
                         keys: Union[SigningKey, Mapping[str, bytes]]) -> bool:
    """The HMAC check shared by records and manifests: a known key id, our algorithm, a matching
    signature over the canonical JSON of everything but ``signature``."""
    if scheme_.get("alg") != ALG:
        return False
    if isinstance(keys, SigningKey):
        keys = {keys.key_id: keys.secret}
    secret, signature = keys.get(scheme_.get("key_id")), signed.get("signature")
    if secret is None or not isinstance(signature, str):
        return False
    try:
        expected = hmac.new(secret, canonical_json(signed), hashlib.sha256).hexdigest()
    except (TypeError, ValueError):
        return False
    return hmac.compare_digest(expected, signature)


def reviews_digest(records) -> str:
    """SHA-256 over a product's published reviews: sorted ``review_id<TAB>signature`` lines."""
    lines = sorted(f"{r['review_id']}\t{r['signature']}" for r in records)
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def sign_manifest(product_id: str, run_id: Optional[str], published, withheld: Mapping[str, Any],
                  moderation: Mapping[str, Any], key: SigningKey) -> dict:
    """The signed manifest of one product: what a server must find, and may serve, for it."""
    published = list(published)
    manifest = {"manifest_version": MANIFEST_VERSION, "product_id": product_id, "run_id": run_id,
                "review_count": len(published), "reviews_sha256": reviews_digest(published),
                "withheld": {"count": int(withheld.get("count", 0)),
                             "by_reason": dict(sorted((withheld.get("by_reason") or {}).items()))},
                "moderation": dict(moderation), "signature_scheme": scheme(key)}
    manifest["signature"] = sign(manifest, key)
    return manifest


def verify_manifest(manifest: Any, keys: Union[SigningKey, Mapping[str, bytes]]) -> bool:
    """True when ``manifest`` carries a valid signature by a known key over the rest of it."""
    try:
        if manifest.get("manifest_version") != MANIFEST_VERSION:
            return False
        return _signed_by_known_key(manifest, manifest["signature_scheme"], keys)
    except (KeyError, TypeError, AttributeError):
        return False


class ReviewSetDigest:
    """An order-free digest of a multiset of published reviews that grows one review at a time: the
    count, and the sum modulo 2**2048 of each review's 2,048-bit SHAKE-256 hash of
    ``review-set/1 NUL review_id TAB signature``. Equal sets give equal digests whatever the order
    they were added in (a streaming job adds them as they are decided; a verifier reads them from
    windowed files in any order).

    Why a sum this wide: a verifier accepts only records whose own HMAC verifies, so the only
    elements an attacker can combine are records the pipeline signed for this product. Passing a
    different set (a complaint left out, another run's record put in) means finding a subset of those
    with the same count and sum; with thousands of records and a 256-bit sum, Wagner's generalised
    birthday algorithm makes that feasible (~2^40 work), with 2,048 bits it is far out of reach
    (Bellare and Micciancio's AdHash)."""

    BITS = 2048
    MODULUS = 1 << BITS

    def __init__(self, count: int = 0, total: int = 0):
        self.count, self.total = int(count), int(total) % self.MODULUS

    @classmethod
    def term(cls, review_id: str, signature: str) -> int:
        data = b"review-set/1\x00" + f"{review_id}\t{signature}".encode("utf-8")
        return int.from_bytes(hashlib.shake_256(data).digest(cls.BITS // 8), "big")

    def add(self, record: Mapping[str, Any]) -> "ReviewSetDigest":
        self.count += 1
        self.total = (self.total + self.term(record["review_id"], record["signature"])) % self.MODULUS
        return self

    @classmethod
    def of(cls, records) -> "ReviewSetDigest":
        digest = cls()
        for record in records:
            digest.add(record)
        return digest

    def hex(self) -> str:
        return format(self.total, f"0{self.BITS // 4}x")


def sign_stream_manifest(product_id: str, run_id: Optional[str], sequence: int, reviews: ReviewSetDigest,
                         carried, aggregate: Mapping[str, Any], withheld: Mapping[str, Any],
                         moderation: Mapping[str, Any], key: SigningKey) -> dict:
    """The signed manifest of one streaming widget document: every published review of the product
    so far (``review_count``, ``reviews_sum``), the reviews the document carries (``carried_sha256``,
    :func:`reviews_digest` of their ids and signatures), the numbers it shows, and ``sequence``
    (grows with every update of the product: the newest document of a product is the one to serve)."""
    manifest = {"manifest_version": STREAM_MANIFEST_VERSION, "product_id": product_id, "run_id": run_id,
                "sequence": int(sequence), "review_count": reviews.count, "reviews_sum": reviews.hex(),
                "carried_sha256": reviews_digest(carried), "aggregate": dict(aggregate),
                "withheld": {"count": int(withheld.get("count", 0)),
                             "by_reason": dict(sorted((withheld.get("by_reason") or {}).items()))},
                "moderation": dict(moderation), "signature_scheme": scheme(key)}
    manifest["signature"] = sign(manifest, key)
    return manifest


def verify_stream_manifest(manifest: Any, keys: Union[SigningKey, Mapping[str, bytes]]) -> bool:
    """True when ``manifest`` is a streaming manifest carrying a valid signature by a known key."""
    try:
        if manifest.get("manifest_version") != STREAM_MANIFEST_VERSION or not isinstance(manifest.get("sequence"), int):
            return False
        return _signed_by_known_key(manifest, manifest["signature_scheme"], keys)
    except (KeyError, TypeError, AttributeError):
        return False


def sign_stream_index_entry(run_id: Optional[str], sequence: int, previous: Optional[str], file_name: str,
                            documents, key: SigningKey, signed_at: Optional[str] = None, chain: str = "",
                            after=(), unreadable: bool = False) -> dict:
    """One link of a streaming job's signed index of its widget documents: the ``file_name`` of one
    windowed ``widget_updates/`` file and every document in it (``[product_id, sequence, manifest
    signature]``), numbered from 1 and chained to the link before (``previous``: its signature), so a
    file or a product's newest documents removed from the bucket leave a gap or a listed document
    missing, and only the end of the chain can be cut (its ``signed_at`` says how recent it is).
    ``chain`` names one launch of the job; a chain's first link lists in ``after`` the newest link of
    every chain already in the prefix (``[chain, run_id, sequence, signature]``), so an earlier job's
    end is bound once a later one starts. ``unreadable``: the file could not be read back (its
    documents are then not listed, and verification reports them)."""
    if signed_at is None:
        from pipeline.timestamps import utc_now
        signed_at = utc_now()
    entry = {"index_version": STREAM_INDEX_VERSION, "run_id": run_id, "chain": str(chain), "sequence": int(sequence),
             "previous": previous, "after": sorted([str(c), r, int(n), str(sig)] for c, r, n, sig in after),
             "file": file_name, "documents": sorted([str(p), int(n), str(sig)] for p, n, sig in documents),
             "unreadable": bool(unreadable), "signed_at": signed_at, "signature_scheme": scheme(key)}
    entry["signature"] = sign(entry, key)
    return entry


def verify_stream_index_entry(entry: Any, keys: Union[SigningKey, Mapping[str, bytes]]) -> bool:
    """True when ``entry`` is a link of a streaming index carrying a valid signature by a known key."""
    try:
        if entry.get("index_version") != STREAM_INDEX_VERSION or not isinstance(entry.get("sequence"), int):
            return False
        return _signed_by_known_key(entry, entry["signature_scheme"], keys)
    except (KeyError, TypeError, AttributeError):
        return False


def sign_run_index(run_id: Optional[str], manifests: Mapping[str, str], key: SigningKey,
                   signed_at: Optional[str] = None) -> dict:
    """The signed index of one run: product id → the signature of its manifest, the run id, and when
    it was signed (UTC, RFC 3339; now unless given)."""
    if signed_at is None:
        from pipeline.timestamps import utc_now
        signed_at = utc_now()
    index = {"index_version": RUN_INDEX_VERSION, "run_id": run_id, "signed_at": signed_at,
             "product_count": len(manifests), "products": dict(sorted(manifests.items())),
             "signature_scheme": scheme(key)}
    index["signature"] = sign(index, key)
    return index


def verify_run_index(index: Any, keys: Union[SigningKey, Mapping[str, bytes]]) -> bool:
    """True when ``index`` is a run index carrying a valid signature by a known key."""
    try:
        if index.get("index_version") != RUN_INDEX_VERSION or not isinstance(index.get("products"), dict):
            return False
        return _signed_by_known_key(index, index["signature_scheme"], keys)
    except (KeyError, TypeError, AttributeError):
        return False


def read_run_index(prefix: str, keys: Union[SigningKey, Mapping[str, bytes]], max_age_hours: Optional[float] = None,
                   now=None, not_before=None) -> Tuple[Optional[dict], Optional[str]]:
    """(the signed run index under output ``prefix``, None), or (None, why no product of that run may
    be served as verified): missing, unreadable, not signed by a known key, with ``max_age_hours``
    signed longer ago than that before ``now`` (a datetime; default: the current time), or signed
    before ``not_before`` (a datetime: the newest run a server has already served)."""
    import datetime as dt
    from apache_beam.io.filesystems import FileSystems
    from pipeline import files
    from pipeline.timestamps import parse_rfc3339
    path = FileSystems.join(prefix.rstrip("/"), RUN_INDEX_FILE)
    try:
        with FileSystems.open(path, mime_type="application/json") as handle:
            index = json.loads(handle.read().decode("utf-8"), object_pairs_hook=files.unique_keys)
    except (OSError, ValueError) as exn:
        return None, f"the run index {path} cannot be read ({str(exn)[:120]}): nothing of this run is verified"
    if not verify_run_index(index, keys):
        return None, f"the run index {path} is not signed by a known key: nothing of this run is verified"
    try:
        signed_at = parse_rfc3339(index["signed_at"])
    except (KeyError, ValueError) as exn:
        return None, f"the run index has no valid signed_at ({exn})"
    if not_before is not None and signed_at < not_before:
        return None, (f"the run was signed at {index['signed_at']}, before the newest run this server has already "
                      f"served ({not_before.isoformat()}): an older run stands where the current one should")
    if max_age_hours:
        age_h = ((now or dt.datetime.now(dt.timezone.utc)) - signed_at).total_seconds() / 3600
        if age_h > max_age_hours:
            return None, (f"the run was signed at {index['signed_at']}, {age_h:.1f} hours ago, more than "
                          f"--max-age-hours {max_age_hours:g}: an older run may stand where the current one "
                          "should (serve it anyway with --max-age-hours 0)")
    return index, None


def index_lists(index: Mapping[str, Any], manifest: Mapping[str, Any]) -> bool:
    """Whether a verified run ``index`` lists this verified product ``manifest``: the same run, and
    its signature under its product (a product's files from another run are not listed)."""
    return (manifest.get("run_id") == index.get("run_id")
            and index["products"].get(manifest.get("product_id")) == manifest.get("signature"))
