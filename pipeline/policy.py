"""Decision policy: sentiment-neutral signals → publish | publish_with_label | hold_for_review | reject.

    Rating and sentiment are never inputs to hold or reject, directly or through a derived feature.

That rule is enforced by construction, not by care: a policy decides from :class:`PolicyInputs`,
built by :func:`policy_inputs` from the item *without* its rating, its text or anything computed
from either beyond "is there readable text left". ``tests/test_policy.py`` checks that the
inputs have no such field and, property-based, that changing only the rating never changes a
decision or its reasons.

The rules live in a versioned YAML file (``pipeline/policies/default.yaml``, validated against
``schemas/policy.schema.json``); ``--policy FILE`` selects another. Moderator overrides
(``--overrides FILE``) take precedence over the policy and are recorded in provenance.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Dict, List, Mapping, Optional, Tuple

import yaml

import schemas
from schemas import codes
from schemas.records import Item, Label, Review, conflict_id, review_identity

DEFAULT_POLICY_FILE = "policies/default.yaml"


@dataclass(frozen=True)
class Outcome:
    decision: str
    reasons: Tuple[str, ...]
    labels: Tuple[Label, ...]
    override: Optional[Mapping[str, Any]] = None  # the moderator override applied, if any


@dataclass(frozen=True)
class PolicyInputs:
    """Everything a policy may look at. No rating, no text, no sentiment: only neutral grounds."""

    review_id: str
    has_text: bool
    redacted: Tuple[str, ...]
    labels: Tuple[Label, ...]
    near_duplicate: Mapping[str, Any] = field(default_factory=dict)  # {"status", "values"}
    fake_classifier: Mapping[str, Any] = field(default_factory=dict)
    # behavioural signals (pipeline/behaviour/): who, what and when only, never the rating or text
    coordinated_group: Mapping[str, Any] = field(default_factory=dict)
    author_velocity: Mapping[str, Any] = field(default_factory=dict)
    product_burst: Mapping[str, Any] = field(default_factory=dict)  # seen, never a ground to withhold
    created_at_adjusted: bool = False  # parsing clamped an implausible created_at (recorded, never withholds)
    review_id_conflict: bool = False  # another author used the same review_id (recorded, never withholds)


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


def _signal(item: Item, name: str) -> Mapping[str, Any]:
    sig = item.signals.get(name)
    return {"status": sig.status, "values": dict(sig.values)} if sig is not None else {}


def policy_inputs(item: Item) -> PolicyInputs:
    return PolicyInputs(review_id=item.review.review_id, has_text=bool(item.clean_body),
                        redacted=tuple(sorted(item.redactions)), labels=labels_from_metadata(item.review),
                        near_duplicate=_signal(item, "near_duplicate"),
                        fake_classifier=_signal(item, "fake_classifier"),
                        coordinated_group=_signal(item, "coordinated_group"),
                        author_velocity=_signal(item, "author_velocity"),
                        product_burst=_signal(item, "product_burst"),
                        created_at_adjusted=item.created_at_adjustment is not None,
                        review_id_conflict=item.review_id_conflict is not None)


def _scored(sig: Mapping[str, Any]) -> Mapping[str, Any]:
    return sig.get("values", {}) if sig.get("status") == "scored" else {}


def behaviour_grounds(rules: Optional[Mapping[str, Any]], x: PolicyInputs, other_evidence: bool
                      ) -> List[Tuple[str, str]]:
    """(decision, reason) from the behavioural signals. A product burst is never a ground; velocity
    and a shared client hold at most (the schema allows nothing stronger); group membership holds,
    and rejects together with duplicate or classifier evidence. ``models/evaluate_behaviour.py``
    measures this same function."""
    if not rules:
        return []
    out: List[Tuple[str, str]] = []
    group = _scored(x.coordinated_group)
    if group.get("evidence"):
        decision = rules["coordinated_group_with_other_evidence"] if other_evidence else rules["coordinated_group"]
        if decision in ("reject", "hold_for_review"):
            out.append((decision, codes.COORDINATED_ACCOUNTS))
    if (group.get("shared_client") or {}).get("evidence") and rules["shared_client"] == "hold_for_review":
        out.append(("hold_for_review", codes.UNUSUAL_ACTIVITY))
    if _scored(x.author_velocity).get("evidence") and rules["author_velocity"] == "hold_for_review":
        out.append(("hold_for_review", codes.UNUSUAL_ACTIVITY))
    return out


class PolicyError(ValueError):
    pass


class Policy:
    """A validated policy file, applied to :class:`PolicyInputs`."""

    def __init__(self, spec: Mapping[str, Any], source: str = "<dict>"):
        errors = sorted(schemas.validator("policy.schema.json").iter_errors(spec), key=lambda e: list(e.path))
        if errors:
            where = "/".join(str(p) for p in errors[0].absolute_path) or "(top level)"
            raise PolicyError(f"policy {source} is invalid at {where}: {errors[0].message}")
        self.spec = spec
        self.id = spec["id"]
        self.version = spec["version"]
        self.source = source

    @classmethod
    def load(cls, path: Optional[str] = None) -> "Policy":
        """The policy at ``path`` (local or gs://), or the packaged default."""
        if path is None:
            text = resources.files("pipeline").joinpath(DEFAULT_POLICY_FILE).read_text(encoding="utf-8")
            return cls(yaml.safe_load(text), DEFAULT_POLICY_FILE)
        from apache_beam.io.filesystems import FileSystems
        with FileSystems.open(path, mime_type="text/plain") as handle:
            return cls(yaml.safe_load(handle.read().decode("utf-8")), path)

    def decide(self, item: Item) -> Outcome:
        return self.decide_inputs(policy_inputs(item))

    def decide_inputs(self, x: PolicyInputs) -> Outcome:
        spec = self.spec
        if not x.has_text:
            return Outcome(spec["empty_text"], (codes.EMPTY_AFTER_CLEANING,), x.labels)
        withheld: List[Tuple[str, str]] = []  # (decision, reason)
        dup = x.near_duplicate.get("values", {}) if x.near_duplicate.get("status") == "scored" else {}
        # Similarity is evidence against the copiers, never against the first poster: the first
        # posting (first received) counts it only when its own author is part of the pattern.
        first_posting = bool(dup.get("evidence")) and bool(dup.get("is_canonical"))
        own_pattern = dup.get("pattern") == "author_repeat" or bool(dup.get("author_repeats"))
        dup_evidence = bool(dup.get("evidence")) and (not first_posting or own_pattern)
        copied_first_posting = first_posting and not own_pattern
        if dup.get("evidence"):
            role = "canonical" if dup.get("is_canonical") else "copies"
            rule = spec["duplicates"].get(dup.get("pattern"), {})
            # "large" counts the site's own members: declared syndicated copies of a popular review
            # are not a campaign, and must not turn a hold into a reject (policy 1.3.0)
            if "large_from_cluster_size" in rule and dup.get("site_members", 0) >= rule["large_from_cluster_size"]:
                role = "large_" + role
            if first_posting and own_pattern and "canonical_author_repeats" in rule:
                role = "canonical_author_repeats"
            decision = rule.get(role, "publish")
            if copied_first_posting:
                decision = "publish"  # whatever the cluster size (the policy schema cannot say otherwise)
            if decision in ("reject", "hold_for_review"):
                withheld.append((decision, codes.DUPLICATE_SPAM if decision == "reject" else codes.SUSPECTED_DUPLICATE))
        clf = x.fake_classifier.get("values", {}) if x.fake_classifier.get("status") == "scored" else {}
        band = clf.get("band")
        if band == "above_upper":
            rule = "above_upper_with_duplicate_evidence" if dup_evidence else "above_upper"
            decision = spec["classifier"][rule]
            if decision in ("reject", "hold_for_review"):
                withheld.append((decision, codes.SUSPECTED_FAKE))
        elif band == "between":
            decision = spec["classifier"]["between"]
            if decision in ("reject", "hold_for_review"):
                withheld.append((decision, codes.SUSPECTED_FAKE))
        withheld += behaviour_grounds(spec.get("behaviour"), x, dup_evidence or band == "above_upper")
        extra = ((codes.PERSONAL_DATA_REDACTED,) if x.redacted else ()) + (
            (codes.CREATED_AT_ADJUSTED,) if x.created_at_adjusted else ()) + (
            (codes.REVIEW_ID_CONFLICT,) if x.review_id_conflict else ())
        if copied_first_posting and spec["duplicates"]["campaign"].get("post_moderation", True):
            extra = (codes.COPIED_BY_OTHERS,) + extra  # published, and queued for a moderator's look
        if withheld:
            decision = "reject" if any(d == "reject" for d, _ in withheld) else "hold_for_review"
            # the reason that decided comes first: products/ count withheld reviews by it
            ordered = [r for d, r in withheld if d == decision] + [r for d, r in withheld if d != decision]
            extra = tuple(r for r in extra if r != codes.COPIED_BY_OTHERS)  # it says "published"
            return Outcome(decision, tuple(dict.fromkeys(ordered)) + extra, x.labels)
        disclosed = set(spec["labels"]["disclose"])
        if any(label["code"] in disclosed for label in x.labels):
            return Outcome("publish_with_label", (codes.DISCLOSURE_LABEL,) + extra, x.labels)
        return Outcome("publish", extra, x.labels)


# -- moderator overrides -------------------------------------------------------------------------

OVERRIDE_FIELDS = ("review_id", "decision", "moderator", "note")


def parse_overrides(text: str, source: str = "<overrides>") -> Dict[str, Dict[str, Any]]:
    """Overrides from JSON Lines or CSV with columns review_id, decision, moderator, note
    (optional: reasons, separated by ';', from the closed reason list; decided_at; author_id, which
    pins the override to that author's review, see :func:`override_for`). Keyed by review_id, or by
    (review_id, author in NFC) when pinned. A later line for the same key wins (an appeal after an
    earlier override)."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        rows = []
        for n, line in enumerate(text.split("\n"), 1):   # not splitlines: U+2028 or NEL in a note is text
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError as exn:
                    raise PolicyError(f"{source} line {n}: not JSON ({exn})") from exn
    else:
        rows = list(csv.DictReader(io.StringIO(text)))
    out: Dict[str, Dict[str, Any]] = {}
    for n, row in enumerate(rows, 1):
        missing = [f for f in OVERRIDE_FIELDS[:3] if not row.get(f)]
        if missing:
            raise PolicyError(f"{source} entry {n}: missing {', '.join(missing)}")
        if row["decision"] not in codes.DECISIONS:
            raise PolicyError(f"{source} entry {n}: decision {row['decision']!r} is not one of {', '.join(codes.DECISIONS)}")
        reasons = row.get("reasons") or []
        if isinstance(reasons, str):
            reasons = [r.strip() for r in reasons.split(";") if r.strip()]
        unknown = [r for r in reasons if r not in codes.REASON_CODES]
        if unknown:
            raise PolicyError(f"{source} entry {n}: unknown reason codes {unknown}")
        author = row.get("author_id") or None
        # pinned: under the id as given, also when the moderator copied the conflict id it was decided under
        key = review_identity(row["review_id"], author) if author else row["review_id"]
        out[key] = {"decision": row["decision"], "moderator": row["moderator"], "note": row.get("note") or "",
                    "reasons": list(reasons), "decided_at": row.get("decided_at") or None, "author_id": author,
                    "line": n}
    return out


def override_for(overrides: Mapping[Any, Mapping[str, Any]], review: Review) -> Optional[Mapping[str, Any]]:
    """The override of ``review``: of the lines that match it, the latest (an appeal after an
    earlier override). A line that names the author (``author_id``) matches that author's review
    under either of its ids (the review_id as given, or the conflict id it was decided under when
    another author delivered that id first: :func:`schemas.records.review_identity`), and never
    another author's. A line without an author matches by id: the review's own, or the conflict id
    this author's review would have (the id a moderator copied from an earlier run's outputs); so
    it can also decide another author's review delivered under that id in another run."""
    if not overrides:   # the usual case: nothing to hash for every review
        return None
    given, author = review_identity(review.review_id, review.author_id)
    keys = [(given, author), review.review_id, conflict_id(given, review.author_id)]
    found = [overrides[k] for k in keys if k in overrides]
    return max(found, key=lambda o: o.get("line", 0)) if found else None


def load_overrides(path: Optional[str]) -> Dict[str, Dict[str, Any]]:
    if not path:
        return {}
    from apache_beam.io.filesystems import FileSystems
    with FileSystems.open(path, mime_type="text/plain") as handle:
        return parse_overrides(handle.read().decode("utf-8"), path)


def apply_override(outcome: Outcome, override: Optional[Mapping[str, Any]]) -> Outcome:
    """A moderator's decision replaces the policy's; its reasons (if any) and moderator_override are recorded."""
    if not override:
        return outcome
    reasons = tuple(override.get("reasons") or ()) + (codes.MODERATOR_OVERRIDE,)  # its own grounds first
    if override["decision"] in ("publish", "publish_with_label") and codes.PERSONAL_DATA_REDACTED in outcome.reasons:
        reasons += (codes.PERSONAL_DATA_REDACTED,)  # redaction still applies to what is published
    return Outcome(override["decision"], tuple(dict.fromkeys(reasons)), outcome.labels, override=dict(override))


DEFAULT_POLICY = Policy.load()
