"""The minimal policy: publishes valid reviews, labels disclosures, never reads the rating."""
from __future__ import annotations

import dataclasses

from hypothesis import given, settings, strategies as st

from pipeline.policy import DEFAULT_POLICY, labels_from_metadata
from schemas.records import InputRef, Item, Review, Source


def item(**review_changes) -> Item:
    base = dict(review_id="r", product_id="p", author_id="a", rating=1, body="Broke in a week.",
                created_at="2025-01-01T00:00:00Z")
    base.update(review_changes)
    return Item(review=Review(**base), ref=InputRef("f", 1), ingested_at="t", clean_body=base["body"],
                language="en")


def test_labels_come_only_from_metadata():
    review = item(verified_purchase=True, incentivized=True, author_relationship="employee",
                  source=Source(channel="syndicated", partner="Acme")).review
    assert labels_from_metadata(review) == ({"code": "verified_purchase"}, {"code": "incentivized"},
                                            {"code": "syndicated", "partner": "Acme"}, {"code": "employee"})
    assert labels_from_metadata(item().review) == ()


def test_decisions():
    assert DEFAULT_POLICY.decide(item()).decision == "publish"
    labelled = DEFAULT_POLICY.decide(item(incentivized=True))
    assert labelled.decision == "publish_with_label" and labelled.reasons == ("disclosure_label",)
    assert DEFAULT_POLICY.decide(item(verified_purchase=True)).decision == "publish"
    redacted = DEFAULT_POLICY.decide(dataclasses.replace(item(), redactions={"email": 1}))
    assert redacted.decision == "publish" and redacted.reasons == ("personal_data_redacted",)
    empty = DEFAULT_POLICY.decide(dataclasses.replace(item(), clean_body=""))
    assert empty.decision == "reject" and empty.reasons == ("empty_after_cleaning",)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([x / 2 for x in range(2, 11)]), st.sampled_from([x / 2 for x in range(2, 11)]),
       st.booleans(), st.booleans(), st.sampled_from([None, "employee", "brand_partner", "none"]),
       st.sampled_from(["", "Broke.", "Great!"]), st.dictionaries(st.sampled_from(["email", "phone"]), st.integers(1, 3)))
def test_changing_only_the_rating_never_changes_the_outcome(r1, r2, verified, incentivized, rel, body, redactions):
    a = dataclasses.replace(item(rating=r1, verified_purchase=verified, incentivized=incentivized,
                                 author_relationship=rel), clean_body=body, redactions=redactions)
    b = dataclasses.replace(a, review=dataclasses.replace(a.review, rating=r2))
    assert DEFAULT_POLICY.decide(a) == DEFAULT_POLICY.decide(b)
