"""Normalise stage: clean text (NFKC, controls, HTML → text, whitespace), identify the language,
redact personal data, hash the published text.

Detectors and the widget only ever see the cleaned text. The original text of a review whose
text was redacted is written only to the restricted audit output (``restricted/originals/``).
"""
from __future__ import annotations

import hashlib
from typing import Optional

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipeline.text import clean, langid, pii
from pipeline.transforms.common import safe_map
from schemas.records import Item

STAGE = "normalize"


def content_sha256(title: Optional[str], body: str) -> str:
    """SHA-256 (hex) of the published text: UTF-8 of ``title + "\\n" + body`` (title "" when absent)."""
    return hashlib.sha256(f"{title or ''}\n{body}".encode("utf-8")).hexdigest()


def normalize_item(item: Item) -> Item:
    review = item.review
    title = clean.clean_text(review.title) if review.title else None
    body = clean.clean_text(review.body)
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
        title, found = pii.redact(title, language)
        redactions.update(found)
    body, found = pii.redact(body, language)
    for kind, n in found.items():
        redactions[kind] = redactions.get(kind, 0) + n
    return item.replace(clean_title=title or None, clean_body=body, language=language,
                        language_source=language_source, language_given=language_given, redactions=redactions,
                        content_sha256=content_sha256(title or None, body))


class NormalizeReviews(beam.PTransform):
    """PCollection[Item] → (normalised items, dead letters for records the stage failed on)."""

    def __init__(self, run_id: str):
        super().__init__()
        self._run_id = run_id

    def expand(self, items):
        return safe_map(items, "Normalize", normalize_item, STAGE, self._run_id)


def restricted_original(item: Item) -> dict:
    """The audit-only copy of a redacted review's original text (never published)."""
    return {"review_id": item.review.review_id, "source": item.ref.to_dict(),
            "title": item.review.title, "body": item.review.body,
            "redactions": dict(item.redactions)}
