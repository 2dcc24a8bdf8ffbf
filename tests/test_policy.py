"""The decision policy: sentiment-neutral grounds only, proven by counterfactuals; overrides."""
from __future__ import annotations

import dataclasses

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from pipeline.policy import (DEFAULT_POLICY, Policy, PolicyError, PolicyInputs, apply_override,
                             labels_from_metadata, parse_overrides, policy_inputs)
from schemas.records import InputRef, Item, Review, Signal, Source


def item(rating=1, body="Broke in a week.", dup=None, clf=None, redactions=None, grp=None, vel=None, burst=None,
         **review) -> Item:
    base = dict(review_id="r", product_id="p", author_id="a", rating=rating, body=body,
                created_at="2025-01-01T00:00:00Z")
    base.update(review)
    signals = {}
    if dup is not None:
        signals["near_duplicate"] = Signal("scored", "v", dup)
    if clf is not None:
        signals["fake_classifier"] = Signal("scored", "v", clf)
    for name, values in (("coordinated_group", grp), ("author_velocity", vel), ("product_burst", burst)):
        if values is not None:
            signals[name] = Signal("scored", "v", values)
    return Item(review=Review(**base), ref=InputRef("f", 1), ingested_at="t", clean_body=body, language="en",
                redactions=redactions or {}, signals=signals)


def dup(pattern, canonical=False, size=2, evidence=None, author_repeats=None, site=None):
    return {"pattern": pattern, "is_canonical": canonical, "cluster_size": size,
            "site_members": size if site is None else site,
            "evidence": pattern in ("campaign", "author_repeat") if evidence is None else evidence,
            "author_repeats": pattern == "author_repeat" if author_repeats is None else author_repeats}


def test_policy_inputs_cannot_see_rating_text_or_sentiment():
    names = {f.name for f in dataclasses.fields(PolicyInputs)}
    assert names == {"review_id", "has_text", "redacted", "labels", "near_duplicate", "fake_classifier",
                     "coordinated_group", "author_velocity", "product_burst", "created_at_adjusted",
                     "review_id_conflict"}
    assert not any(word in name for name in names for word in ("rating", "star", "sentiment", "body", "title", "text_"))
    assert "rating" not in repr(policy_inputs(item(rating=1)))


def test_labels_come_only_from_metadata():
    review = item(verified_purchase=True, incentivized=True, author_relationship="employee",
                  source=Source(channel="syndicated", partner="Acme")).review
    assert labels_from_metadata(review) == ({"code": "verified_purchase"}, {"code": "incentivized"},
                                            {"code": "syndicated", "partner": "Acme"}, {"code": "employee"})
    assert labels_from_metadata(item().review) == ()


@pytest.mark.parametrize("kwargs, decision, reasons", [
    ({}, "publish", ()),
    ({"verified_purchase": True}, "publish", ()),
    ({"incentivized": True}, "publish_with_label", ("disclosure_label",)),
    ({"redactions": {"email": 1}}, "publish", ("personal_data_redacted",)),
    ({"body": ""}, "reject", ("empty_after_cleaning",)),
    ({"dup": dup("none", evidence=False)}, "publish", ()),
    ({"dup": dup("syndicated_copy")}, "publish", ()),
    ({"dup": dup("common_phrase")}, "publish", ()),
    ({"dup": dup("author_repeat", canonical=True)}, "publish", ()),
    ({"dup": dup("author_repeat")}, "reject", ("duplicate_spam",)),
    ({"dup": dup("campaign", canonical=True, size=2)}, "publish", ("copied_by_others",)),
    # the first posting is never withheld on duplicate evidence alone, whatever the cluster size ...
    ({"dup": dup("campaign", canonical=True, size=40)}, "publish", ("copied_by_others",)),
    ({"dup": dup("campaign", canonical=True, size=5), "redactions": {"email": 1}}, "publish",
     ("copied_by_others", "personal_data_redacted")),
    # ... unless its own author is part of the pattern
    ({"dup": dup("campaign", canonical=True, size=40, author_repeats=True)}, "hold_for_review", ("suspected_duplicate",)),
    ({"dup": dup("campaign", canonical=True, size=2, author_repeats=True)}, "hold_for_review", ("suspected_duplicate",)),
    # the classifier still speaks for itself, but duplicate evidence does not escalate it on a first posting
    ({"clf": {"band": "above_upper"}, "dup": dup("campaign", canonical=True, size=9)}, "hold_for_review", ("suspected_fake",)),
    ({"dup": dup("campaign", size=3)}, "hold_for_review", ("suspected_duplicate",)),
    ({"dup": dup("campaign", size=5)}, "reject", ("duplicate_spam",)),
    ({"clf": {"band": "below_lower"}}, "publish", ()),
    ({"clf": {"band": "between"}}, "hold_for_review", ("suspected_fake",)),
    ({"clf": {"band": "above_upper"}}, "hold_for_review", ("suspected_fake",)),
    ({"clf": {"band": "above_upper"}, "dup": dup("campaign", size=2)}, "reject", ("suspected_fake", "suspected_duplicate")),
    ({"dup": dup("campaign", size=9), "redactions": {"phone": 1}}, "reject", ("duplicate_spam", "personal_data_redacted")),
    # behavioural evidence: a burst never withholds, velocity alone publishes (1.2.0: it held heavy
    # raters unevenly by star on NSMC), a group holds and rejects together with duplicate or
    # classifier evidence
    ({"burst": {"burst": True, "evidence": False, "ratio": 30.0}}, "publish", ()),
    ({"vel": {"evidence": True, "per_day": 40}}, "publish", ()),
    ({"vel": {"evidence": True}, "dup": dup("author_repeat", canonical=True)}, "publish", ()),
    ({"grp": {"evidence": False, "links": 1}}, "publish", ()),
    ({"grp": {"evidence": True, "group_authors": 5}}, "hold_for_review", ("coordinated_accounts",)),
    ({"grp": {"evidence": False, "shared_client": {"evidence": True}}}, "hold_for_review", ("unusual_activity",)),
    ({"grp": {"evidence": True}, "burst": {"burst": True}}, "hold_for_review", ("coordinated_accounts",)),
    ({"grp": {"evidence": True}, "dup": dup("campaign", size=2)}, "reject", ("coordinated_accounts", "suspected_duplicate")),
    ({"grp": {"evidence": True}, "clf": {"band": "above_upper"}}, "reject", ("coordinated_accounts", "suspected_fake")),
    ({"grp": {"evidence": True}, "clf": {"band": "between"}}, "hold_for_review", ("suspected_fake", "coordinated_accounts")),
])
def test_default_policy_decisions(kwargs, decision, reasons):
    outcome = DEFAULT_POLICY.decide(item(**kwargs))
    assert (outcome.decision, outcome.reasons) == (decision, reasons)


def test_a_policy_file_cannot_withhold_a_first_posting_on_duplicate_evidence():
    spec = yaml.safe_load(open("pipeline/policies/default.yaml"))
    for key in ("canonical", "large_canonical"):
        with pytest.raises(PolicyError, match="campaign"):
            Policy({**spec, "duplicates": {**spec["duplicates"], "campaign": {**spec["duplicates"]["campaign"],
                                                                               key: "hold_for_review"}}})
    strict = Policy({**spec, "duplicates": {**spec["duplicates"], "campaign": {
        **spec["duplicates"]["campaign"], "large_from_cluster_size": 2, "copies": "reject",
        "canonical_author_repeats": "reject"}}})
    assert strict.decide(item(dup=dup("campaign", canonical=True, size=20))).decision == "publish"
    assert strict.decide(item(dup=dup("campaign", canonical=True, size=20, author_repeats=True))).decision == "reject"


def test_post_moderation_can_be_turned_off_but_never_into_a_hold():
    spec = yaml.safe_load(open("pipeline/policies/default.yaml"))
    quiet = Policy({**spec, "duplicates": {**spec["duplicates"], "campaign": {**spec["duplicates"]["campaign"],
                                                                               "post_moderation": False}}})
    outcome = quiet.decide(item(dup=dup("campaign", canonical=True, size=12)))
    assert (outcome.decision, outcome.reasons) == ("publish", ())


def test_an_adjusted_created_at_is_recorded_and_never_withholds():
    it = dataclasses.replace(item(), created_at_adjustment="after_receipt", created_at_given="2099-01-01T00:00:00Z")
    outcome = DEFAULT_POLICY.decide(it)
    assert (outcome.decision, outcome.reasons) == ("publish", ("created_at_adjusted",))


def test_detectors_that_did_not_run_or_do_not_apply_never_withhold():
    it = dataclasses.replace(item(), signals={"near_duplicate": Signal("not_applicable", "v", {"shingles": 2}),
                                              "fake_classifier": Signal("not_run", None)})
    assert DEFAULT_POLICY.decide(it).decision == "publish"


ratings = st.sampled_from([x / 2 for x in range(2, 11)])
dup_values = st.none() | st.builds(dup, st.sampled_from(["none", "campaign", "author_repeat", "syndicated_copy",
                                                         "syndication_source", "common_phrase"]),
                                   st.booleans(), st.integers(2, 50), st.none(), st.none() | st.booleans())
grp_values = st.none() | st.builds(lambda e, n, sc: {"evidence": e, "group_authors": n, "links": n,
                                                    "shared_client": {"evidence": sc, "accounts": n}},
                                   st.booleans(), st.integers(0, 30), st.booleans())
vel_values = st.none() | st.builds(lambda e, d: {"evidence": e, "per_day": d, "per_hour": None},
                                   st.booleans(), st.integers(1, 60))
burst_values = st.none() | st.builds(lambda b, r: {"burst": b, "evidence": False, "ratio": r},
                                     st.booleans(), st.floats(0, 100))
clf_values = st.none() | st.builds(lambda b, p: {"band": b, "probability": p},
                                   st.sampled_from(["below_lower", "between", "above_upper"]), st.floats(0, 1))


@settings(max_examples=400, deadline=None)
@given(ratings, ratings, st.sampled_from(["", "Broke.", "Great!", "Worst kettle ever, it burned my hand. 1/10"]),
       dup_values, clf_values, st.dictionaries(st.sampled_from(["email", "phone"]), st.integers(1, 3)),
       st.booleans(), st.booleans(), st.sampled_from([None, "employee", "brand_partner", "none"]),
       grp_values, vel_values, burst_values)
def test_changing_only_the_rating_never_changes_the_decision_or_reasons(r1, r2, body, d, c, redactions, verified,
                                                                        incentivized, rel, g, v, b):
    a = item(rating=r1, body=body, dup=d, clf=c, redactions=redactions, verified_purchase=verified,
             incentivized=incentivized, author_relationship=rel, grp=g, vel=v, burst=b)
    b = dataclasses.replace(a, review=dataclasses.replace(a.review, rating=r2))
    assert DEFAULT_POLICY.decide(a) == DEFAULT_POLICY.decide(b)


@settings(max_examples=200, deadline=None)
@given(burst_values, vel_values, grp_values, dup_values, clf_values)
def test_a_burst_never_withholds_and_velocity_never_rejects(b, v, g, d, c):
    """Whatever else is present, a product burst changes nothing, and velocity alone holds at most."""
    with_burst = DEFAULT_POLICY.decide(item(burst=b, vel=v, grp=g, dup=d, clf=c))
    without = DEFAULT_POLICY.decide(item(vel=v, grp=g, dup=d, clf=c))
    assert with_burst == without
    alone = DEFAULT_POLICY.decide(item(vel=v, burst=b))
    assert alone.decision in ("publish", "hold_for_review")


def test_older_policy_files_without_behaviour_rules_still_load():
    spec = yaml.safe_load(open("pipeline/policies/default.yaml"))
    spec.pop("behaviour")
    assert Policy(spec).decide(item(grp={"evidence": True}, vel={"evidence": True})).decision == "publish"
    with pytest.raises(PolicyError, match="behaviour"):
        Policy({**spec, "behaviour": {"coordinated_group": "hold_for_review", "coordinated_group_with_other_evidence": "reject",
                                      "author_velocity": "reject", "shared_client": "hold_for_review"}})


def test_policy_file_is_validated():
    spec = yaml.safe_load(open("pipeline/policies/default.yaml"))
    assert Policy(spec).version == "1.3.0"
    with pytest.raises(PolicyError, match="duplicates"):
        Policy({**spec, "duplicates": {**spec["duplicates"], "campaign": {**spec["duplicates"]["campaign"],
                                                                           "canonical": "delete"}}})
    with pytest.raises(PolicyError, match="Additional properties"):
        Policy({**spec, "min_rating_to_publish": 3})  # no way to express a rating rule


def test_overrides_take_precedence_and_are_recorded():
    overrides = parse_overrides("review_id,decision,moderator,note,reasons\n"
                                "r,reject,mod-7,personal attack on staff,abuse\n"
                                "x,publish,mod-2,appeal upheld: original text,\n")
    held = DEFAULT_POLICY.decide(item(dup=dup("campaign", size=3)))
    out = apply_override(DEFAULT_POLICY.decide(item()), overrides["r"])
    assert out.decision == "reject" and out.reasons == ("abuse", "moderator_override")
    assert out.override["moderator"] == "mod-7"
    appeal = apply_override(held, overrides["x"])
    assert appeal.decision == "publish" and appeal.reasons == ("moderator_override",)
    with pytest.raises(PolicyError, match="decision"):
        parse_overrides('{"review_id": "r", "decision": "delete", "moderator": "m"}')
    with pytest.raises(PolicyError, match="unknown reason"):
        parse_overrides('{"review_id": "r", "decision": "reject", "moderator": "m", "reasons": ["too negative"]}')
    later = parse_overrides('{"review_id": "r", "decision": "reject", "moderator": "m"}\n'
                            '{"review_id": "r", "decision": "publish", "moderator": "appeals"}\n')
    assert later["r"]["decision"] == "publish"
    # a moderator's note may hold U+2028 or NEL: one line is one override, never a crash
    noted = parse_overrides('{"review_id": "r", "decision": "publish", "moderator": "m", "note": "a\u2028b\x85c"}\n')
    assert noted["r"]["note"] == "a\u2028b\x85c"
    with pytest.raises(PolicyError, match="line 2: not JSON"):
        parse_overrides('{"review_id": "r", "decision": "publish", "moderator": "m"}\n{broken\n')


def test_an_override_pinned_to_an_author_does_not_follow_the_id_to_another_review():
    """Session 20's attack: an override written against a forged record's id decided the honest
    review that came under that id in a later run. With ``author_id`` it applies to that author's
    review only; without it, it follows the id as before."""
    from pipeline.policy import override_for, parse_overrides
    pinned = parse_overrides('{"review_id": "R1", "decision": "reject", "moderator": "m", "note": "spam link", '
                             '"author_id": "attacker"}\n')
    loose = parse_overrides("review_id,decision,moderator,note\nR1,reject,m,spam link\n")
    honest, forged = item(review_id="R1").review, dataclasses.replace(item(review_id="R1").review, author_id="attacker")
    assert override_for(pinned, honest) is None and override_for(pinned, forged)["decision"] == "reject"
    assert override_for(loose, honest)["decision"] == "reject"
    # one override per author under one id: the honest author's appeal does not cancel the other's
    # reject, and it follows the honest review to the conflict id it was decided under
    from schemas.records import conflict_id
    both = parse_overrides('{"review_id": "R1", "author_id": "attacker", "decision": "reject", "moderator": "m"}\n'
                           '{"review_id": "R1", "author_id": "Cafe\\u0301", "decision": "publish", "moderator": "m"}\n')
    cafe = dataclasses.replace(honest, author_id="Caf\u00e9")
    assert override_for(both, forged)["decision"] == "reject"
    assert override_for(both, cafe)["decision"] == "publish"
    assert override_for(both, dataclasses.replace(cafe, review_id=conflict_id("R1", "Caf\u00e9")))["decision"] == "publish"
    assert override_for(both, honest) is None


def test_an_override_written_against_a_conflict_id_follows_the_review_and_the_latest_line_wins():
    """Helper round 3: a moderator copies the id a review was decided under (``R1#conflict-…``); in a
    later run the review comes alone as R1 and the override was ignored. And a later appeal
    without author_id did not replace an earlier line that named the author."""
    from pipeline.policy import override_for, parse_overrides
    from schemas.records import conflict_id
    honest = item(review_id="R1").review   # author "a"
    cid = conflict_id("R1", "a")
    for line in ('{"review_id": "%s", "author_id": "a", "decision": "hold_for_review", "moderator": "m"}' % cid,
                 '{"review_id": "%s", "decision": "hold_for_review", "moderator": "m"}' % cid):
        ov = parse_overrides(line + "\n")
        assert override_for(ov, honest)["decision"] == "hold_for_review", line
        assert override_for(ov, dataclasses.replace(honest, review_id=cid))["decision"] == "hold_for_review"
        assert override_for(ov, dataclasses.replace(honest, author_id="other")) is None
    appeal = parse_overrides('{"review_id": "R1", "author_id": "a", "decision": "reject", "moderator": "m"}\n'
                             '{"review_id": "R1", "decision": "publish", "moderator": "m", "note": "appeal"}\n')
    assert override_for(appeal, honest)["decision"] == "publish"


def test_one_author_in_two_unicode_forms_is_one_review_under_either_id():
    """Helper round 3: José (NFD) decided under R1's conflict id in one run and resent as José (NFC)
    in the next was not recognised as the same review (held as a copy of itself)."""
    from schemas.records import conflict_id, review_identity
    nfd, nfc = "Jose\u0301", "Jos\u00e9"
    assert review_identity(conflict_id("R1", nfd), nfc) == review_identity("R1", nfd) == ("R1", nfc)


def test_declared_syndicated_copies_do_not_make_a_cluster_large():
    """A popular review's partner copies are provenance, not a campaign: a copy held in a cluster of
    two site reviews and six declared syndicated copies stays held, not rejected (session 23,
    round 12 noted that three partner copies turned a hold into a reject)."""
    policy = Policy(yaml.safe_load(open("pipeline/policies/default.yaml")))
    large = policy.spec["duplicates"]["campaign"]["large_from_cluster_size"]
    held = policy.decide(item(dup=dup("campaign", size=large + 6, site=2)))
    assert (held.decision, held.reasons) == ("hold_for_review", ("suspected_duplicate",))
    rejected = policy.decide(item(dup=dup("campaign", size=large, site=large)))
    assert (rejected.decision, rejected.reasons) == ("reject", ("duplicate_spam",))
