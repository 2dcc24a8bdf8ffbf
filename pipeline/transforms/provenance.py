"""Provenance stage: every decision gets its provenance; every published review is signed.

Outputs the audit record (:class:`Decision`) for every item, the display record
(:class:`Published`) for publish and publish_with_label, and the restricted copy of the original
text for items whose text was redacted.
"""
from __future__ import annotations

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipeline import signing
from pipeline.context import RunContext
from pipeline.transforms.common import failure_to_dead_letter
from pipeline.transforms.decide import Decided
from pipeline.transforms.normalize import restricted_original
from schemas import codes
from schemas.codes import PUBLISH_DECISIONS
from schemas.records import Decision, Packer, Published

STAGE = "provenance"
PUBLISHED = "published"
RESTRICTED = "restricted"
QUEUE = "review_queue"
CLUSTER_MEMBER = "cluster_member"
MAX_NEIGHBOURS = 20


def build_provenance(decided: Decided, ctx: RunContext, key: signing.SigningKey) -> dict:
    item = decided.item
    review = item.review
    source = review.source
    prov = {
        "pipeline": ctx.pipeline_dict(),
        "run_id": ctx.run_id,
        "policy": ctx.policy_dict(),
        "detectors": [{"id": name, "version": sig.version, "status": sig.status}
                      for name, sig in sorted(item.signals.items())],
        "checks": [{"id": cid, "version": ver} for cid, ver in ctx.checks],
        "input": item.ref.to_dict(),
        "ingested_at": item.ingested_at,
        "decided_at": decided.decided_at,
        "source": {"channel": source.channel if source else None,
                   "partner": source.partner if source else None,
                   "url": source.url if source else None},
        "verified_purchase": review.verified_purchase,
        "incentivized": review.incentivized,
        "author_relationship": review.author_relationship,
        "language_source": item.language_source,
        "language_given": item.language_given,
        "received_at": review.received_at,
        "created_at_given": item.created_at_given,
        "content_sha256": item.content_sha256,
        "override": ({k: decided.outcome.override.get(k) for k in ("moderator", "note", "decided_at")}
                     if decided.outcome.override else None),
        "signature_scheme": signing.scheme(key),
    }
    if item.review_id_conflict is not None:  # only then, so other records' provenance is unchanged
        prov["review_id_given"] = item.review_id_conflict
    return prov


def to_records(decided: Decided, ctx: RunContext, key: signing.SigningKey):
    """Decided → (Decision, Published or None)."""
    item, outcome = decided.item, decided.outcome
    review = item.review
    provenance = build_provenance(decided, ctx, key)
    decision = Decision(
        review_id=review.review_id, product_id=review.product_id, author_id=review.author_id,
        rating=review.rating, created_at=review.created_at, language=item.language,
        decision=outcome.decision, reasons=outcome.reasons, labels=outcome.labels,
        redactions=dict(item.redactions),
        signals={name: sig.to_dict() for name, sig in sorted(item.signals.items())},
        provenance=provenance)
    if outcome.decision not in PUBLISH_DECISIONS:
        return decision, None
    unsigned = dict(review_id=review.review_id, product_id=review.product_id, rating=review.rating,
                    title=item.clean_title, body=item.clean_body, language=item.language,
                    created_at=review.created_at, labels=[dict(x) for x in outcome.labels],
                    provenance=provenance)
    published = Published(**{**unsigned, "labels": tuple(outcome.labels)},
                          signature=signing.sign(unsigned, key))
    return decision, published


def queue_entry(decided: Decided, decision: Decision) -> dict:
    """What a moderator needs to decide a held review (the text is the published, redacted text;
    originals of redacted reviews are in restricted/)."""
    item = decided.item
    return {"review_id": decision.review_id, "product_id": decision.product_id, "author_id": decision.author_id,
            "rating": decision.rating, "created_at": decision.created_at, "language": decision.language,
            "title": item.clean_title, "body": item.clean_body, "decision": decision.decision,
            "reasons": list(decision.reasons), "labels": [dict(x) for x in decision.labels],
            "redactions": dict(decision.redactions), "signals": decision.signals,
            "source": item.ref.to_dict(), "policy": decision.provenance["policy"],
            "run_id": decision.provenance["run_id"], "neighbours": []}


def neighbour(decided: Decided, decision: Decision) -> dict:
    values = decision.signals["near_duplicate"]["values"]
    body = decided.item.clean_body or ""
    return {"review_id": decision.review_id, "author_id": decision.author_id, "product_id": decision.product_id,
            "created_at": decision.created_at, "decision": decision.decision,
            "is_canonical": values.get("is_canonical"), "similarity_to_canonical": values.get("similarity_to_canonical"),
            "text": body[:280] + ("…" if len(body) > 280 else "")}


# Queue entries and cluster neighbours wait in a grouping by cluster packed (one bytes object each where
# the DirectRunner holds them), deflated with a dictionary of their keys and common values.
PACKER = Packer([{"review_id": "", "author_id": "", "product_id": "", "created_at": "2026-01-01T00:00:00Z",
                  "decision": "publish", "is_canonical": False, "similarity_to_canonical": 0.0, "text": ""}])


def _with_neighbours(keyed):
    """(cluster_id, {"queue": [packed entries], "members": [packed neighbours]}) → entries with their neighbours."""
    cluster, grouped = keyed
    members = sorted((PACKER.unpack(m) for m in grouped["members"]), key=lambda m: (m["created_at"], m["review_id"]))
    for entry in grouped["queue"]:
        entry = PACKER.unpack(entry)
        others = [m for m in members if m["review_id"] != entry["review_id"]]
        yield dict(entry, neighbours=others[:MAX_NEIGHBOURS], neighbours_total=len(others))


class BuildReviewQueue(beam.PTransform):
    """(cluster_id or None, packed entry) + (cluster_id, packed neighbour) → review-queue entries with
    cluster neighbours (values packed with ``PACKER``)."""

    def expand(self, pcolls):
        queue, members = pcolls
        clustered = queue | "Clustered" >> beam.Filter(lambda kv: kv[0] is not None)
        alone = queue | "NotClustered" >> beam.FlatMap(lambda kv: [PACKER.unpack(kv[1])] if kv[0] is None else [])
        joined = ({"queue": clustered, "members": members} | "JoinCluster" >> beam.CoGroupByKey()
                  | "AttachNeighbours" >> beam.FlatMap(_with_neighbours))
        return (joined, alone) | "AllQueued" >> beam.Flatten()


class _ProvenanceFn(beam.DoFn):
    def __init__(self, ctx: RunContext, key_file, require_key: bool):
        self._ctx = ctx
        self._key_file = key_file
        self._require = require_key

    def setup(self):
        self._key = signing.load_signing_key(self._key_file, self._require)

    def process(self, decided: Decided):
        decision, published = to_records(decided, self._ctx, self._key)
        Metrics.counter("decisions", decision.decision).inc()
        yield decision
        if published is not None:
            yield beam.pvalue.TaggedOutput(PUBLISHED, published)
        if decided.item.redactions:
            yield beam.pvalue.TaggedOutput(RESTRICTED, restricted_original(decided.item))
        cluster = decision.signals.get("near_duplicate", {}).get("values", {}).get("cluster_id")
        if cluster:
            yield beam.pvalue.TaggedOutput(CLUSTER_MEMBER, (cluster, PACKER.pack(neighbour(decided, decision))))
        if decision.decision == "hold_for_review" or codes.COPIED_BY_OTHERS in decision.reasons:
            # held reviews wait for a person; a copied first posting is published and looked at after
            yield beam.pvalue.TaggedOutput(QUEUE, (cluster, PACKER.pack(queue_entry(decided, decision))))


class AttachProvenance(beam.PTransform):
    """PCollection[Decided] → (decisions, published, restricted originals, dead letters, review queue)."""

    def __init__(self, ctx: RunContext, signing_key_file=None, require_signing_key=False):
        super().__init__()
        self._ctx = ctx
        self._key_file = signing_key_file
        self._require = require_signing_key

    def expand(self, decided):
        out = decided | "SignAndRecord" >> beam.ParDo(
            _ProvenanceFn(self._ctx, self._key_file, self._require)).with_outputs(
                PUBLISHED, RESTRICTED, QUEUE, CLUSTER_MEMBER, main="decisions").with_exception_handling()
        dead = out.bad | "ProvenanceFailures" >> beam.Map(failure_to_dead_letter(STAGE, self._ctx.run_id))
        queue = (out[QUEUE], out[CLUSTER_MEMBER]) | "BuildReviewQueue" >> BuildReviewQueue()
        return out.decisions, out[PUBLISHED], out[RESTRICTED], dead, queue
