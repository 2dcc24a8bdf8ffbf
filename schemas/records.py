"""Typed Python records mirroring the JSON Schema files in this package.

Input: :class:`Review` (``review.schema.json``). Pipeline envelope: :class:`Item`, which carries a
review through the stages with where it came from and what each stage derived. Outputs:
:class:`DeadLetter`, :class:`Decision`, :class:`Published`, :class:`ProductDoc`; each has
``to_dict()`` giving exactly the fields of its schema (``tests/test_schemas.py`` checks it).
:func:`pack` / :class:`Packer` turn any value into one bytes object for a batch grouping to hold.
"""
from __future__ import annotations

import dataclasses
import hashlib
import pickle
import unicodedata
import zlib
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

Rating = Union[int, float]


def _compact_pickle(cls):
    """Pickles instances of a record as (class, field values): no field names per record.

    Records cross every stage boundary of the job pickled (Beam's fallback coder), and the
    DirectRunner keeps grouped values in memory; names repeated in every pickle were about a third
    of an item's bytes. Unpickling sets the values back in field order (:func:`_rebuild`)."""
    names = tuple(f.name for f in dataclasses.fields(cls))
    _FIELD_NAMES[cls] = names

    def __reduce__(self):
        return _rebuild, (cls, tuple([getattr(self, name) for name in names]))

    cls.__reduce__ = __reduce__
    return cls


_FIELD_NAMES: Dict[type, Tuple[str, ...]] = {}


def _rebuild(cls, values):
    """Unpickles a :func:`_compact_pickle` record (the values were validated when it was made)."""
    obj = object.__new__(cls)
    obj.__dict__.update(zip(_FIELD_NAMES[cls], values))
    return obj


def pack(value: Any) -> bytes:
    """A value pickled to one ``bytes`` object, for values a batch job groups.

    The DirectRunner keeps a grouping's values decoded in memory until the grouping is read: a
    decoded :class:`Item` is dozens of objects (~3 KB), the same item pickled is one (~0.6 KB).
    Grouping packed values and unpacking them after the grouping keeps the same records."""
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def unpack(data: bytes) -> Any:
    """The value :func:`pack` packed."""
    return pickle.loads(data)


class Packer:
    """:func:`pack`, then deflated with a preset dictionary made of typical values (``samples``).

    Signals repeat the same keys, versions and reasons in every record: a behavioural signal
    pickles to ~690 bytes and deflates to ~60 with such a dictionary (~430 without), an item
    from ~620 to ~420. The dictionary only changes sizes, never values: packing and unpacking use
    the same instance (it travels pickled with the transforms that use it)."""

    def __init__(self, samples=()):
        self.zdict = b"".join(pack(s) for s in samples)[-32768:]  # deflate looks back at most 32 KB

    def pack(self, value: Any) -> bytes:
        out = zlib.compressobj(1, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, *([self.zdict] if self.zdict else []))
        return out.compress(pack(value)) + out.flush()

    def unpack(self, data: bytes) -> Any:
        d = zlib.decompressobj(-15, *([self.zdict] if self.zdict else []))
        return unpack(d.decompress(data) + d.flush())


@_compact_pickle
@dataclass(frozen=True)
class Source:
    """Where the review was collected (``source`` in the input)."""

    channel: Optional[str] = None  # on_site | syndicated | import | email_request
    partner: Optional[str] = None
    url: Optional[str] = None


@_compact_pickle
@dataclass(frozen=True)
class Client:
    """Optional platform metadata (``client`` in the input): hashed or opaque, never published."""

    ip_prefix: Optional[str] = None
    device_id: Optional[str] = None


@_compact_pickle
@dataclass(frozen=True)
class Review:
    """One input review, as validated against ``review.schema.json``."""

    review_id: str
    product_id: str
    author_id: str
    rating: Rating
    body: str
    created_at: str
    title: Optional[str] = None
    language: Optional[str] = None
    source: Optional[Source] = None
    verified_purchase: Optional[bool] = None
    incentivized: Optional[bool] = None
    author_relationship: Optional[str] = None  # none | employee | brand_partner | unknown
    client: Optional[Client] = None  # behavioural detectors only (shared device / network prefix)
    account_created_at: Optional[str] = None  # context only: a new account alone is never evidence
    received_at: Optional[str] = None  # platform-stamped receipt time; orders near-duplicate clusters

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> "Review":
        """Builds a review from an object that already passed schema validation."""
        src = obj.get("source")
        rating = obj["rating"]
        # 4.0 and 4 are the same rating; keep integral ratings as int so that the canonical JSON
        # signed in provenance is the same in Python and JavaScript ("4", not "4.0").
        rating = int(rating) if float(rating).is_integer() else float(rating)
        return cls(
            review_id=obj["review_id"], product_id=obj["product_id"], author_id=obj["author_id"],
            rating=rating, body=obj["body"], created_at=obj["created_at"],
            title=obj.get("title"), language=obj.get("language"),
            source=Source(**{k: src.get(k) for k in ("channel", "partner", "url")}) if src else None,
            verified_purchase=obj.get("verified_purchase"), incentivized=obj.get("incentivized"),
            author_relationship=obj.get("author_relationship"),
            client=Client(**{k: cl.get(k) for k in ("ip_prefix", "device_id")}) if (cl := obj.get("client")) else None,
            account_created_at=obj.get("account_created_at"), received_at=obj.get("received_at"))


@_compact_pickle
@dataclass(frozen=True)
class InputRef:
    """Where a record was read: the file URI (or subscription) and the 1-based line number."""

    uri: str
    line: int

    def to_dict(self) -> Dict[str, Any]:
        return {"uri": self.uri, "line": self.line}


@_compact_pickle
@dataclass(frozen=True)
class RawLine:
    """One non-blank input line as bytes, before parsing."""

    ref: InputRef
    data: bytes
    truncated: bool = False  # the line was longer than the size limit and was cut


@_compact_pickle
@dataclass(frozen=True)
class Signal:
    """One detector's output for one review."""

    status: str  # scored | not_applicable | not_run
    version: Optional[str]
    values: Mapping[str, Any] = field(default_factory=dict)
    note: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        out = {"status": self.status, "version": self.version, "values": dict(self.values)}
        if self.note:
            out["note"] = self.note
        return out


@_compact_pickle
@dataclass(frozen=True)
class Item:
    """A review on its way through the pipeline; each stage returns a copy with its fields set."""

    review: Review
    ref: InputRef
    ingested_at: str
    clean_title: Optional[str] = None
    clean_body: Optional[str] = None
    language: Optional[str] = None
    language_source: str = "undetermined"  # given | detected | detected_over_given | undetermined
    language_given: Optional[str] = None  # the input's language tag when detection overruled it
    content_sha256: Optional[str] = None
    redactions: Mapping[str, int] = field(default_factory=dict)
    signals: Mapping[str, Signal] = field(default_factory=dict)
    # The input's source when personal data was redacted from it (``review.source`` then holds the
    # redacted copy that is published); only ever written to restricted/originals/.
    original_source: Optional[Source] = None
    # created_at as given, when parsing clamped an implausible one (review.created_at is the clamped value)
    created_at_given: Optional[str] = None
    created_at_adjustment: Optional[str] = None  # before_earliest | after_receipt
    # when the transport says the platform received it (the Pub/Sub publish time in streaming)
    receipt_at: Optional[str] = None
    # the review_id as given, when another author's review came under the same id (redelivery stage:
    # reason review_id_conflict; review.review_id is then the given id or its '#conflict-' form)
    review_id_conflict: Optional[str] = None

    def replace(self, **changes) -> "Item":
        return dataclasses.replace(self, **changes)


# -- review_id conflicts ------------------------------------------------------------------------
# Another author's review delivered under a review_id already taken is decided on its own under
# ``<review_id>#conflict-<16 hex of sha256(author_id)>`` (pipeline/transforms/redelivery.py); input
# ids of that form are refused (review.schema.json), so no input can take one.
CONFLICT_MARK = "#conflict-"


def author_key(author_id: str) -> str:
    """An author id as the conflict rules compare it: in NFC (one author written in two Unicode forms
    is one author)."""
    return unicodedata.normalize("NFC", author_id)


def author_digest(author_id: str) -> bytes:
    """8 bytes of SHA-256 of :func:`author_key`: the conflict id's suffix, and streaming's redelivery state."""
    return hashlib.sha256(author_key(author_id).encode("utf-8")).digest()[:8]


def _author_hex(author_id: str) -> str:
    return author_digest(author_id).hex()


def conflict_id(review_id: str, author_id: str) -> str:
    """The id of ``author_id``'s review delivered under ``review_id`` that another author took first."""
    return f"{review_id}{CONFLICT_MARK}{_author_hex(author_id)}"


def review_identity(review_id: str, author_id: str) -> Tuple[str, str]:
    """(id as given, author in NFC): one review whether a run decided it under its id or, because another
    author delivered the id first, under its conflict id. The near-duplicate stages use it so that a
    review is never a copy of itself across runs (run 1 ``R#conflict-…``, run 2 plain ``R``)."""
    author = author_key(author_id)
    if CONFLICT_MARK in review_id and review_id.endswith(_author_hex(author)) and review_id[:-16].endswith(CONFLICT_MARK):
        return review_id[:-16 - len(CONFLICT_MARK)], author
    return review_id, author


@_compact_pickle
@dataclass(frozen=True)
class DeadLetter:
    """A line that did not become a decision, with the reason (``dead_letter.schema.json``)."""

    error_code: str
    error: str
    raw: str
    source: InputRef
    stage: str
    run_id: str
    review_id: Optional[str] = None
    raw_truncated: bool = False

    def to_dict(self) -> Dict[str, Any]:
        out = {"error_code": self.error_code, "error": self.error, "raw": self.raw,
               "source": self.source.to_dict(), "stage": self.stage,
               "review_id": self.review_id, "run_id": self.run_id}
        if self.raw_truncated:
            out["raw_truncated"] = True
        return out


Label = Dict[str, Any]  # {"code": ..., "partner": ...}; see label.schema.json


@_compact_pickle
@dataclass(frozen=True)
class Decision:
    """The audit record for one accepted review (``decision.schema.json``)."""

    review_id: str
    product_id: str
    author_id: str
    rating: Rating
    created_at: str
    language: Optional[str]
    decision: str
    reasons: Tuple[str, ...]
    labels: Tuple[Label, ...]
    redactions: Mapping[str, int]
    signals: Mapping[str, Dict[str, Any]]
    provenance: Mapping[str, Any]

    def to_dict(self) -> Dict[str, Any]:
        # built field by field: dataclasses.asdict deep-copies every nested value (10% of a run's CPU)
        return {"review_id": self.review_id, "product_id": self.product_id, "author_id": self.author_id,
                "rating": self.rating, "created_at": self.created_at, "language": self.language,
                "decision": self.decision, "reasons": list(self.reasons), "labels": [dict(x) for x in self.labels],
                "redactions": dict(self.redactions), "signals": dict(self.signals), "provenance": dict(self.provenance)}


@_compact_pickle
@dataclass(frozen=True)
class Published:
    """A review cleared for display (``published.schema.json``)."""

    review_id: str
    product_id: str
    rating: Rating
    title: Optional[str]
    body: str
    language: Optional[str]
    created_at: str
    labels: Tuple[Label, ...]
    provenance: Mapping[str, Any]
    signature: str

    def to_dict(self) -> Dict[str, Any]:
        return {"review_id": self.review_id, "product_id": self.product_id, "rating": self.rating,
                "title": self.title, "body": self.body, "language": self.language, "created_at": self.created_at,
                "labels": [dict(x) for x in self.labels], "provenance": dict(self.provenance),
                "signature": self.signature}


@_compact_pickle
@dataclass(frozen=True)
class ProductDoc:
    """Per-product aggregates over published reviews, and withheld counts (``product.schema.json``)."""

    product_id: str
    published_count: int
    average_rating: Optional[float]
    rating_histogram: Mapping[str, int]
    decisions: Mapping[str, int]
    withheld_count: int
    withheld_by_reason: Mapping[str, int]
    run_id: str
    site_review_count: Optional[int] = 0
    site_average_rating: Optional[float] = None

    def to_dict(self) -> Dict[str, Any]:
        return {"product_id": self.product_id, "published_count": self.published_count,
                "average_rating": self.average_rating, "rating_histogram": dict(self.rating_histogram),
                "decisions": dict(self.decisions), "withheld_count": self.withheld_count,
                "withheld_by_reason": dict(self.withheld_by_reason), "run_id": self.run_id,
                "site_review_count": self.site_review_count, "site_average_rating": self.site_average_rating}


def schema_fields(cls) -> List[str]:
    """Names of a record's fields, as they appear in its JSON."""
    return [f.name for f in dataclasses.fields(cls)]
