"""What a shopper sees: widget documents, badges, histograms and JSON-LD, as pure functions.

No Beam here: the batch and streaming stages (``pipeline/transforms/widget_docs.py``) build
documents with these functions, and the widget server (``widget/serve.py``) re-checks and
re-summarises served entries with the same ones.
Each document holds the product's published reviews with their display fields and badges
(most recent first), the aggregate rating and 1–5 histogram over **all** its published reviews,
the withheld count by primary reason (from ``products/``), the moderation policy that decided,
and a schema.org ``Product`` + ``AggregateRating`` + ``Review`` JSON-LD block.

JSON-LD follows Google's review snippet guidelines: only reviews collected on this site are
marked up, so syndicated reviews (label ``syndicated``) get no ``Review`` markup and are left out
of the marked-up ``AggregateRating`` (which therefore can differ from the displayed aggregate);
without any non-syndicated review the block is ``null``. Published records carry no reviewer
name, so ``author.name`` is ``"Anonymous"``; ``name`` is the product id unless the page supplies
the product's name (the widget's ``data-product-name``).

Each review keeps the ``signature`` of its published record, so a serving side can bind every
displayed entry to a verified signed record (``widget/serve.py``); the documents themselves are
not signed and must not be trusted on their own.

File names (:func:`doc_file_name`): ``<slug>--<hash>.json`` where ``slug`` is the product id
lower-cased with every run of characters outside ``[a-z0-9._-]`` replaced by ``-``, trimmed of
``-`` and ``.`` at both ends and cut to 60 characters (``product`` when nothing is left), and
``hash`` is the first 16 hex digits of SHA-256 of the UTF-8 product id. Any product id (slashes,
``..``, non-ASCII, 10 kB long, ids differing only in case) gives a distinct, short, portable
name; readers find a product by the ``product_id`` inside the document, not by parsing names.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional

from pipeline import signing
from pipeline.timestamps import epoch_seconds

DOC_VERSION = "widget-doc/1"
WIDGET_DIR = "widget"
JSON_LD_MAX_REVIEWS = 10   # Review items marked up: the first page the widget shows by default
BADGE_TEXT = {
    "verified_purchase": "Verified purchase",
    "incentivized": "Incentivized review",
    "employee": "Written by an employee",
    "brand_partner": "Written by a brand partner",
}
BADGE_ORDER = ("verified_purchase", "incentivized", "syndicated", "employee", "brand_partner")


def doc_file_name(product_id: str) -> str:
    """The file name of a product's document under ``PREFIX/widget/`` (see the module docstring)."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", product_id.lower()).strip("-.")[:60].strip("-.") or "product"
    digest = hashlib.sha256(product_id.encode("utf-8")).hexdigest()[:16]
    return f"{slug}--{digest}.json"


def as_dict(record: Any) -> Dict[str, Any]:
    """A record (dataclass with ``to_dict``) or a mapping → a plain dict."""
    return record.to_dict() if hasattr(record, "to_dict") else dict(record)


def instant(created_at: str) -> float:
    """Seconds since the epoch of an RFC 3339 time; unparseable sorts last (the contract rules it out)."""
    try:
        return epoch_seconds(created_at)
    except ValueError:
        return float("-inf")


def most_recent_first(reviews: Iterable[Mapping[str, Any]]) -> List[Mapping[str, Any]]:
    """Newest ``created_at`` (as an instant, not as a string) first; ties by ``review_id``."""
    return sorted(reviews, key=lambda r: (-instant(r["created_at"]), r["review_id"]))


def badge(label: Mapping[str, Any]) -> Dict[str, Any]:
    code = label["code"]
    partner = label.get("partner")
    if code == "syndicated":
        text = f"Originally posted on {partner}" if partner else "Originally posted on a partner site"
    else:
        text = BADGE_TEXT.get(code, code.replace("_", " "))
    return {"code": code, "partner": partner, "text": text}


def display_review(published: Mapping[str, Any]) -> Dict[str, Any]:
    """The display fields of one published record (also used by the server to re-check entries)."""
    labels = sorted(published.get("labels") or (), key=lambda x: (
        BADGE_ORDER.index(x["code"]) if x["code"] in BADGE_ORDER else len(BADGE_ORDER), x["code"]))
    return {
        "review_id": published["review_id"],
        "rating": published["rating"],
        "title": published.get("title"),
        "body": published["body"],
        "language": published.get("language"),
        "created_at": published["created_at"],
        "badges": [badge(x) for x in labels],
        "signature": published["signature"],
    }


def is_syndicated(review: Mapping[str, Any]) -> bool:
    """A display review (``badges``) or a published record (``labels``) from a syndication partner."""
    return any(b.get("code") == "syndicated" for b in review.get("badges", review.get("labels", ())))


def summarise_reviews(reviews: Iterable[Mapping[str, Any]]) -> Dict[str, Any]:
    """Count, mean rating (3 decimals; ``None`` when empty) and 1–5 histogram of display reviews."""
    ratings = [r["rating"] for r in reviews]
    histogram = {str(s): 0 for s in range(1, 6)}
    for rating in ratings:
        histogram[star_bucket(rating)] += 1
    return {"review_count": len(ratings),
            "average_rating": round(sum(ratings) / len(ratings), 3) if ratings else None,
            "rating_histogram": histogram}


def build_json_ld(product_id: str, reviews: List[Mapping[str, Any]],
                  product: Optional[Mapping[str, Any]] = None) -> Optional[Dict[str, Any]]:
    """schema.org Product + AggregateRating + Review for the reviews collected on this site.

    ``reviews`` in display order (most recent first). Syndicated reviews are neither marked up nor
    counted (Google: only reviews produced directly by the site). When the product's record counts
    more site reviews than ``reviews`` holds (a streaming document carries only the most recent
    ones), the AggregateRating is the record's running site totals, so newer reviews cannot push
    older (negative) ones out of the rating search engines show. ``None`` when no site review is known.
    """
    own = [r for r in reviews if not is_syndicated(r)]
    agg = summarise_reviews(own)
    product = product or {}
    if (product.get("site_review_count") or 0) > agg["review_count"] and product.get("site_average_rating") is not None:
        agg = {"review_count": product["site_review_count"], "average_rating": product["site_average_rating"]}
    if not agg["review_count"]:
        return None
    return {
        "@context": "https://schema.org",
        "@type": "Product",
        "name": product_id,
        "productID": product_id,
        "aggregateRating": {"@type": "AggregateRating", "ratingValue": round(agg["average_rating"], 2),
                            "reviewCount": agg["review_count"], "bestRating": 5, "worstRating": 1},
        "review": [{
            "@type": "Review",
            "author": {"@type": "Person", "name": "Anonymous"},
            "datePublished": r["created_at"][:10],
            **({"name": r["title"]} if r.get("title") else {}),
            "reviewBody": r["body"],
            **({"inLanguage": r["language"]} if r.get("language") else {}),
            "reviewRating": {"@type": "Rating", "ratingValue": r["rating"], "bestRating": 5, "worstRating": 1},
        } for r in own[:JSON_LD_MAX_REVIEWS]],
    }


def _moderation(published: List[Mapping[str, Any]], run_id: Optional[str]) -> Dict[str, Any]:
    """The policy and detectors that decided, from the first review's provenance (one run = one policy)."""
    prov = published[0].get("provenance", {}) if published else {}
    return {
        "run_id": prov.get("run_id", run_id),
        "policy": prov.get("policy"),
        "detectors": [{"id": d["id"], "status": d["status"]} for d in prov.get("detectors", ())],
    }


def _aggregate(reviews: List[Mapping[str, Any]], product: Mapping[str, Any]) -> Dict[str, Any]:
    """The document's aggregate: over every published review of the product. A streaming document
    carries only the most recent reviews (``WidgetDocFn.MAX_REVIEWS``); its aggregate is then the
    product's running totals, so 200 new reviews cannot push older (negative) ones out of the
    numbers a shopper sees."""
    own = summarise_reviews(reviews)
    if (product.get("published_count") or 0) > own["review_count"] and product.get("rating_histogram"):
        return {"review_count": product["published_count"], "average_rating": product["average_rating"],
                "rating_histogram": {str(s): int(product["rating_histogram"].get(str(s), 0)) for s in range(1, 6)}}
    return own


def build_widget_doc(product_id: str, published: Iterable[Mapping[str, Any]],
                     product: Optional[Mapping[str, Any]], key: Optional[signing.SigningKey] = None) -> Dict[str, Any]:
    """One widget document from a product's published records and its ``products/`` record; with
    ``key``, also its signed ``manifest`` (:func:`pipeline.signing.sign_manifest`)."""
    records = [as_dict(p) for p in published]
    reviews = most_recent_first(display_review(p) for p in records)
    product = as_dict(product) if product is not None else {}
    doc = {
        "doc_version": DOC_VERSION,
        "product_id": product_id,
        "run_id": product.get("run_id") or (records[0]["provenance"].get("run_id") if records else None),
        "aggregate": _aggregate(reviews, product),
        "withheld": {"count": product.get("withheld_count", 0),
                     "by_reason": dict(sorted((product.get("withheld_by_reason") or {}).items()))},
        "moderation": _moderation(records, product.get("run_id")),
        "reviews": reviews,
        "json_ld": build_json_ld(product_id, reviews, product),
    }
    if key is not None:
        doc["manifest"] = signing.sign_manifest(product_id, doc["run_id"], records, doc["withheld"],
                                                doc["moderation"], key)
    return doc


def totals_of(records: List[Mapping[str, Any]]) -> Dict[str, Any]:
    """A product record's running totals (``products/`` fields) computed from published records."""
    summary = summarise_reviews(records)
    site = summarise_reviews([r for r in records if not is_syndicated(r)])
    return {"published_count": summary["review_count"], "average_rating": summary["average_rating"],
            "rating_histogram": summary["rating_histogram"], "site_review_count": site["review_count"],
            "site_average_rating": site["average_rating"]}


def build_widget_doc_within(product_id: str, published: Iterable[Mapping[str, Any]],
                            product: Optional[Mapping[str, Any]], max_bytes: int) -> Dict[str, Any]:
    """:func:`build_widget_doc` (unsigned) carrying as many of the most recent reviews as fit in
    ``max_bytes`` of JSON (at least one). A streaming document is one Pub/Sub message, and real
    Pub/Sub refuses messages over 10 MB: 200 reviews of 20,000 emoji each would be 16 MB. Fewer
    reviews change only the list a widget pages through: the aggregate and the JSON-LD rating count
    the product's running totals, or, when its record is missing or behind, every review given here."""
    records = most_recent_first([as_dict(p) for p in published])
    known = totals_of(records)
    if product is None or (product.get("published_count") or 0) < known["published_count"]:
        product = {**(product or {}), **known}
    keep = len(records)
    while True:
        doc = build_widget_doc(product_id, records[:keep], product)
        size = len(safe_json(doc).encode("utf-8"))
        if size <= max_bytes or keep <= 1:
            return doc
        keep = max(1, min(keep - 1, int(keep * max_bytes / size * 0.95)))


def safe_json(obj: Any, **kwargs: Any) -> str:
    """JSON with ``<``, ``>`` and ``&`` written as ``\\u003c``, ``\\u003e``, ``\\u0026``: the same
    document to any JSON parser, and safe to place as is inside ``<script type="application/ld+json">``
    (no ``</script>`` or ``<!--`` can appear). Widget documents and the widget server use it; the
    review text itself is already free of tag openers (``pipeline.text.clean``), so a page that
    re-encodes the JSON-LD with a plain JSON encoder stays safe too."""
    text = json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"), **kwargs)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def star_bucket(rating) -> str:
    """The histogram bar of a rating: a half star counts in the bar below (4.5 → "4")."""
    return str(min(5, max(1, math.floor(rating))))

