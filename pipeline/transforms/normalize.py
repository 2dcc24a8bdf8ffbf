"""Normalise stage: clean text (NFKC, controls, HTML → text, whitespace), identify the language,
redact personal data, hash the published text.

Detectors and the widget only ever see the cleaned text. The original text of a review whose
text was redacted is written only to the restricted audit output (``restricted/originals/``).
Every published field that can carry personal data is redacted here: title, body, and the
review's ``source.partner`` (shown in the "Originally posted on …" badge) and ``source.url``
(published in provenance; credentials and token-carrying paths/queries dropped, scheme and host
kept). The original source is kept with the original text in ``restricted/originals/``.
"""
from __future__ import annotations

import dataclasses
import hashlib
from typing import Dict, Optional, Tuple

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipeline.text import clean, langid, pii
from pipeline.transforms.common import TextTooLarge, safe_map
from pipeline.transforms.parse import DEFAULT_MAX_TEXT_CHARS
from schemas.records import Item, Source

STAGE = "normalize"


def content_sha256(title: Optional[str], body: str) -> str:
    """SHA-256 (hex) of the published text: UTF-8 of ``title + "\\n" + body`` (title "" when absent)."""
    return hashlib.sha256(f"{title or ''}\n{body}".encode("utf-8")).hexdigest()


def _add(total: Dict[str, int], found: Dict[str, int]) -> None:
    for kind, n in found.items():
        total[kind] = total.get(kind, 0) + n


def redact_source(source: Optional[Source], language: Optional[str]) -> Tuple[Optional[Source], Dict[str, int]]:
    """The review's source with personal data out of ``partner`` (free text, shown in a badge) and
    ``url`` (credentials and tokens dropped); the same object when nothing was found."""
    if source is None:
        return None, {}
    found: Dict[str, int] = {}
    partner, url = source.partner, source.url
    if partner:
        partner, hits = pii.redact(partner, language)
        _add(found, hits)
    if url:
        url, hits = pii.redact_url(url)
        _add(found, hits)
    if not found:
        return source, {}
    return dataclasses.replace(source, partner=partner, url=url), found


def display_source(source: Optional[Source]) -> Optional[Source]:
    """The source as it may be displayed: ``partner`` (badge text) plain text, ``url`` an http(s)
    link without markup or nothing; the same object when both already are."""
    if source is None:
        return None
    partner, url = clean.plain_label(source.partner), clean.safe_http_url(source.url)
    if (partner, url) == (source.partner, source.url):
        return source
    return dataclasses.replace(source, partner=partner, url=url)


def normalize_item(item: Item, max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
                   public: Optional[pii.PublicContacts] = None) -> Item:
    review = item.review
    title = clean.clean_text(review.title) if review.title else None
    body = clean.clean_text(review.body)
    for name, value in (("title", title), ("body", body)):
        if value and len(value) > max_text_chars:
            raise TextTooLarge(f"{name} has {len(value)} characters after normalisation; the limit is "
                               f"{max_text_chars} (--max_text_chars)")
    language_given = None
    if review.language:  # author-controlled: a confident detection that disagrees overrules it
        language, language_source, language_given = langid.reconcile(review.language, f"{title or ''} {body}".strip())
        if language_given is not None:
            Metrics.counter(STAGE, "language_given_overruled").inc()
    else:
        language = langid.detect_language(f"{title or ''} {body}".strip())
        language_source = "detected" if language else "undetermined"
    redactions = {}
    if title:
        title, found = pii.redact(title, language, public)
        redactions.update(found)
    body, found = pii.redact(body, language, public)
    _add(redactions, found)
    source, found = redact_source(display_source(review.source), language)
    _add(redactions, found)
    # Most texts come out unchanged: then the item holds one string, not two equal ones, so a
    # pickled item (between stages, and in memory where the runner groups) carries the text once.
    if body == review.body:
        body = review.body
    if title and title == review.title:
        title = review.title
    changes = {}
    if source is not review.source:
        changes = {"review": dataclasses.replace(review, source=source), "original_source": review.source}
    return item.replace(clean_title=title or None, clean_body=body, language=language,
                        language_source=language_source, language_given=language_given, redactions=redactions,
                        content_sha256=content_sha256(title or None, body), **changes)


class NormalizeReviews(beam.PTransform):
    """PCollection[Item] → (normalised items, dead letters for records the stage failed on)."""

    def __init__(self, run_id: str, max_text_chars: int = DEFAULT_MAX_TEXT_CHARS, public_contacts=()):
        super().__init__()
        self._run_id = run_id
        self._max = max_text_chars
        self._public = pii.PublicContacts.parse(public_contacts) if public_contacts else None

    def expand(self, items):
        limit, public = self._max, self._public
        return safe_map(items, "Normalize", lambda item: normalize_item(item, limit, public), STAGE, self._run_id)


def restricted_original(item: Item) -> dict:
    """The audit-only copy of a redacted review's original text (never published)."""
    out = {"review_id": item.review.review_id, "source": item.ref.to_dict(),
           "title": item.review.title, "body": item.review.body,
           "redactions": dict(item.redactions)}
    if item.original_source is not None:
        src = item.original_source
        out["review_source"] = {"channel": src.channel, "partner": src.partner, "url": src.url}
    return out
