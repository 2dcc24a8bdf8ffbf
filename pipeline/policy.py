"""Decision policy: signals → publish | publish_with_label | hold_for_review | reject, with reasons.

This is the minimal policy of the foundation: it publishes every valid review, with personal data
redacted and the disclosure labels its metadata declares. A versioned YAML policy replaces it
(see the decision-policy issue); whatever replaces it keeps the same rule:

    Rating and sentiment are never inputs to hold or reject, directly or through a derived feature.

``decide`` below receives the review but reads only sentiment-neutral fields (cleaned text
emptiness, redactions, disclosure metadata, detector signals); tests/test_policy.py proves that
changing only the rating never changes the outcome.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Tuple

from schemas import codes
from schemas.records import Item, Label, Review


@dataclass(frozen=True)
class Outcome:
    decision: str
    reasons: Tuple[str, ...]
    labels: Tuple[Label, ...]


def labels_from_metadata(review: Review) -> Tuple[Label, ...]:
    """Badges declared by the input, never inferred: verified purchase, incentivized, syndicated,
    employee, brand partner."""
    labels: List[Dict] = []
    if review.verified_purchase is True:
        labels.append({"code": "verified_purchase"})
    if review.incentivized is True:
        labels.append({"code": "incentivized"})
    if review.source is not None and review.source.channel == "syndicated":
        labels.append({"code": "syndicated", "partner": review.source.partner})
    if review.author_relationship in ("employee", "brand_partner"):
        labels.append({"code": review.author_relationship})
    return tuple(labels)


DISCLOSURES = {"incentivized", "syndicated", "employee", "brand_partner"}


class MinimalPolicy:
    """Publishes every valid review; labels disclosures; rejects only text that cleaning emptied."""

    id = "minimal-publish-all"
    version = "0.1.0"

    def decide(self, item: Item) -> Outcome:
        labels = labels_from_metadata(item.review)
        reasons: List[str] = []
        if not item.clean_body:
            return Outcome("reject", (codes.EMPTY_AFTER_CLEANING,), labels)
        decision = "publish"
        if any(label["code"] in DISCLOSURES for label in labels):
            decision = "publish_with_label"
            reasons.append(codes.DISCLOSURE_LABEL)
        if item.redactions:
            reasons.append(codes.PERSONAL_DATA_REDACTED)
        return Outcome(decision, tuple(reasons), labels)


DEFAULT_POLICY = MinimalPolicy()
