"""Duplicates turned against honest reviews (principle 1: honest negative reviews are never suppressed).

The attack: an honest 1-star review is reposted by other accounts, so that near-duplicate
detection holds the original (a "campaign" of 5 held its first posting), or a copy claims an
earlier ``created_at`` (2001) to become the "first posting" and get the original treated as the
copy. The defence: the first posting is the first *received* (platform ``received_at``, else first
seen: signature store, then input order), and similarity is evidence against the copiers, never
against the first poster, unless its own author is part of the pattern.
"""
from __future__ import annotations

import dataclasses

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipeline.dedup import clusters as cl
from pipeline.dedup.config import DedupConfig
from pipeline.dedup.signatures import Signer
from pipeline.dedup.store import from_row, to_row
from pipeline.policy import DEFAULT_POLICY
from pipeline.transforms.dedup import DetectNearDuplicates
from schemas.records import InputRef, Item, Review, Signal

CFG = DedupConfig()
SIGNER = Signer()
HONEST = ("Broke after three days, the handle cracked and the lid stopped closing, support never "
          "answered my emails, I would not buy this kettle again")
HONEST_AT = "2025-03-01T10:00:00Z"
EARLY = "2001-01-01T00:00:00Z"  # what a copier claims


def texts(n: int) -> list:
    """n long texts unrelated to each other (random words), one per simulated attack."""
    import random
    rng = random.Random(20)
    return [" ".join(f"w{rng.randrange(10**6)}" for _ in range(30)) for _ in range(n)]


def fp(review_id, text=HONEST, created=HONEST_AT, author="honest", product="p", line=1, received=None,
       stored=False, arrival=None):
    row = {"review_id": review_id, "created_at": created, "author_id": author, "product_id": product,
           "channel": None, "partner": None, "text": text, "language": "en", "received_at": received,
           "uri": "in.jsonl", "line": line}
    out = cl.fingerprints([row], CFG, SIGNER)[0]._replace(stored=stored)
    return out._replace(arrival_ts=arrival) if arrival is not None else out


def decide(values: dict, review_id: str, rating=1):
    item = Item(review=Review(review_id=review_id, product_id="p", author_id="a", rating=rating, body=HONEST,
                              created_at=HONEST_AT), ref=InputRef("in.jsonl", 1), ingested_at="t",
                clean_body=HONEST, language="en", signals={"near_duplicate": Signal("scored", "v", values)})
    return DEFAULT_POLICY.decide(item)


def attack(n_copiers: int, copies_early: bool, same_copier: bool, original_line: int = 1):
    """The original at ``original_line``, n copies after it (lines ≥ 2, maybe dated 2001)."""
    members = [fp("orig", line=original_line)]
    for i in range(n_copiers):
        members.append(fp(f"copy{i}", text=HONEST + ("!" * i), created=EARLY if copies_early else HONEST_AT,
                          author="copier" if same_copier else f"copier{i}", line=original_line + 1 + i))
    return cl.describe_cluster(members, CFG)


@pytest.mark.parametrize("n_copiers", [1, 2, 3, 4, 5, 8, 12, 20])
@pytest.mark.parametrize("copies_early", [False, True])
@pytest.mark.parametrize("same_copier", [False, True])
def test_the_first_posting_is_published_whatever_the_copiers_do(n_copiers, copies_early, same_copier):
    out = attack(n_copiers, copies_early, same_copier)
    orig = out["orig"]
    assert orig["is_canonical"] and orig["canonical_review_id"] == "orig"
    assert orig["cluster_size"] == n_copiers + 1 and not orig["author_repeats"]
    outcome = decide(orig, "orig")
    assert outcome.decision == "publish", (n_copiers, copies_early, same_copier, outcome)
    assert outcome.reasons == ("copied_by_others",)  # published, and queued for a look
    for i in range(n_copiers):
        copy = out[f"copy{i}"]
        assert not copy["is_canonical"] and copy["evidence"]
        assert decide(copy, f"copy{i}").decision in ("hold_for_review", "reject")
    if n_copiers + 1 >= 5:
        assert all(decide(out[f"copy{i}"], "c").decision == "reject" for i in range(n_copiers))


def test_without_the_defence_the_attack_would_work():
    """Guards the test itself: ordering by created_at (the old rule) made the 2001 copy canonical."""
    out = attack(4, copies_early=True, same_copier=False)
    members = [fp("orig")] + [fp(f"copy{i}", text=HONEST + ("!" * i), created=EARLY, author=f"copier{i}")
                              for i in range(4)]
    by_created = min(members, key=lambda m: (m.created_ts, m.review_id))
    assert by_created.review_id != "orig" and out["orig"]["is_canonical"]


def test_received_at_decides_over_input_order_and_created_at():
    # The copy comes first in the file and claims 2001, but the platform received it after the original.
    members = [fp("copy", text=HONEST + " !", created=EARLY, author="copier", line=1, received="2025-03-02T00:00:00Z"),
               fp("orig", line=2, received="2025-03-01T10:00:05Z")]
    out = cl.describe_cluster(members, CFG)
    assert out["orig"]["is_canonical"] and out["orig"]["canonical_by"] == "received_at"
    assert decide(out["orig"], "orig").decision == "publish"


def test_a_first_posting_whose_author_repeats_the_text_is_part_of_the_pattern():
    members = [fp("orig", author="spammer", line=1), fp("again", text=HONEST + " !", author="spammer", line=2)]
    members += [fp(f"c{i}", text=HONEST + "?" * i, author=f"acct{i}", line=3 + i) for i in range(4)]
    out = cl.describe_cluster(members, CFG)
    assert out["orig"]["is_canonical"] and out["orig"]["author_repeats"] and out["orig"]["pattern"] == "campaign"
    assert decide(out["orig"], "orig").decision == "hold_for_review"


def test_the_first_posting_by_store_first_seen_beats_a_backdated_copy_in_a_later_run():
    # Run 1 stored the original (first seen then); run 2 brings copies dated 2001.
    stored = from_row(to_row(fp("orig"), [], "run-1", "2026-12-01T02:00:00+00:00"))
    assert stored.stored and stored.arrival_ts < float("inf")
    members = [stored] + [fp(f"copy{i}", text=HONEST + "!" * i, created=EARLY, author=f"c{i}", line=i + 1)
                          for i in range(6)]
    out = cl.describe_cluster(members, CFG)
    assert out["orig"]["is_canonical"] and out["orig"]["members_from_earlier_runs"] == 1
    assert all(decide(out[f"copy{i}"], "c").decision == "reject" for i in range(6))


def test_the_decision_on_the_first_posting_does_not_depend_on_its_rating():
    out = attack(6, copies_early=True, same_copier=False)
    assert {decide(out["orig"], "orig", rating=r).decision for r in (1, 1.5, 2, 3, 4, 5)} == {"publish"}


def _item(review_id, body, author, created, line, received=None):
    return Item(review=Review(review_id=review_id, product_id="p", author_id=author, rating=1, body=body,
                              created_at=created, received_at=received),
                ref=InputRef("gs://b/in/day.jsonl", line), ingested_at="t", clean_body=body, language="en")


def test_batch_transform_many_attacks_at_once():
    """One Beam run, one cluster per variant: 2..20 copiers, backdated or not, one or many copier accounts."""
    variants = [(n, early, same) for n in (2, 4, 5, 9, 20) for early in (False, True) for same in (False, True)]
    items, line = [], 0
    for v, ((n, early, same), text) in enumerate(zip(variants, texts(len(variants)))):
        line += 1
        items.append(_item(f"v{v}-orig", text, f"honest{v}", HONEST_AT, line))
        for i in range(n):
            line += 1
            items.append(_item(f"v{v}-copy{i}", text + " " + "x" * (i % 3), f"v{v}-copier" if same else f"v{v}-c{i}",
                               EARLY if early else HONEST_AT, line))
    items.reverse()  # the order elements arrive in a PCollection must not matter, only (uri, line)

    def verdict(it):
        values = it.signals["near_duplicate"].values
        decision = DEFAULT_POLICY.decide(it).decision
        return it.review.review_id.split("-")[0], it.review.review_id.endswith("orig"), values.get("is_canonical"), \
            decision in ("publish", "publish_with_label")

    with BeamTestPipeline() as p:
        out, _ = p | beam.Create(items) | DetectNearDuplicates(CFG)
        got = out | beam.Map(verdict) | beam.Distinct()
        expected = []
        for v in range(len(variants)):
            expected += [(f"v{v}", True, True, True), (f"v{v}", False, False, False)]
        assert_that(got, equal_to(expected))


def test_batch_transform_first_seen_in_the_store_is_the_first_posting():
    stored_orig = from_row(to_row(fp("orig"), [], "run-1", "2026-12-01T02:00:00+00:00"))
    copies = [_item(f"copy{i}", HONEST + " " + "y" * (i % 2), f"copier{i}", EARLY, i + 1) for i in range(4)]
    with BeamTestPipeline() as p:
        stored = p | "Store" >> beam.Create([stored_orig])
        out, _ = p | "Run2" >> beam.Create(copies) | DetectNearDuplicates(CFG, stored)
        got = out | beam.Map(lambda it: (it.signals["near_duplicate"].values["canonical_review_id"],
                                         it.signals["near_duplicate"].values["cluster_size"],
                                         DEFAULT_POLICY.decide(it).decision))
        assert_that(got, equal_to([("orig", 5, "reject")] * 4))


# -- streaming: the first processed (or first received) is the first posting -----------------------

def _stream_item(review_id, body, author, created, event_day, line, received=None):
    import datetime as dt
    from apache_beam.transforms.window import TimestampedValue
    ts = dt.datetime.fromisoformat(event_day + "T00:00:00+00:00").timestamp()
    item = dataclasses.replace(_item(review_id, body, author, created, line, received),
                               ref=InputRef("projects/p/subscriptions/s", line))
    return TimestampedValue(item, ts)


@pytest.mark.slow
@pytest.mark.parametrize("n_copiers", [2, 4, 9])
def test_streaming_backdated_copies_never_become_the_first_posting(n_copiers):
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
    from apache_beam.testing.test_stream import TestStream
    from pipeline.transforms.dedup_stream import StreamingNearDuplicates

    stream = TestStream().add_elements([_stream_item("orig", HONEST, "honest", HONEST_AT, "2025-03-01", 1)])
    for i in range(n_copiers):  # each copy later in the stream, claiming 2001 (event time clamped by the stream)
        stream = stream.add_elements([_stream_item(f"copy{i}", HONEST + " !" * (i % 2), f"copier{i}", EARLY,
                                                   "2025-03-02", 2 + i)])
    stream = stream.advance_watermark_to_infinity()
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    p = beam.Pipeline(options=options)
    got = (p | stream | StreamingNearDuplicates(CFG)
           | beam.Map(lambda it: (it.review.review_id, it.signals["near_duplicate"].values.get("canonical_review_id"),
                                  DEFAULT_POLICY.decide(it).decision in ("publish", "publish_with_label"))))
    expected = [("orig", "orig", True)] + [(f"copy{i}", "orig", False) for i in range(n_copiers)]
    assert_that(got, equal_to(expected))
    p.run().wait_until_finish()


def test_a_store_written_before_arrival_ts_existed_falls_back_to_when_it_was_stored():
    from pipeline.dedup.store import first_seen
    from pipeline.timestamps import epoch_seconds
    stored_at = "2026-11-01T02:00:00+00:00"
    assert first_seen({"arrival_ts": None, "stored_at": stored_at}) == epoch_seconds(stored_at)
    assert first_seen({"arrival_ts": float("nan"), "stored_at": stored_at}) == epoch_seconds(stored_at)
    assert first_seen({"arrival_ts": 1700000000.0, "stored_at": stored_at}) == 1700000000.0
    # a review with received_at keeps it in the store; one without is first seen when its run stored it
    with_received = to_row(fp("r", received="2025-03-01T10:00:05Z"), [], "run", stored_at)
    assert from_row(with_received).arrival_ts == epoch_seconds("2025-03-01T10:00:05Z")
    assert from_row(to_row(fp("r"), [], "run", stored_at)).arrival_ts == epoch_seconds(stored_at)


def test_in_streaming_the_publish_time_orders_reviews_without_received_at():
    from pipeline.transforms.dedup import dedup_row
    item = _item("r", HONEST, "a", EARLY, 3)
    assert dedup_row(item)["received_at"] is None  # a file: input order
    published = item.replace(receipt_at="2025-03-01T10:00:00.250000Z")
    assert dedup_row(published)["received_at"] == "2025-03-01T10:00:00.250000Z"
    stamped = dataclasses.replace(item.review, received_at="2025-03-01T09:59:59Z")
    platform = dataclasses.replace(published, review=stamped)
    assert dedup_row(platform)["received_at"] == "2025-03-01T09:59:59Z"  # the review's own stamp wins


# -- a component joins texts through chains: what a member is, is decided by what it matches itself ----

def chain(start: str, end: str, step: int = 2):
    """Texts morphing ``start``'s word set into ``end``'s, ``step`` words swapped at a time: each
    matches the next (word shingles), so they bridge two texts that share nothing."""
    src, dst = list(dict.fromkeys(start.lower().split())), list(dict.fromkeys(end.lower().split()))
    remove, add = [w for w in src if w not in dst], [w for w in dst if w not in src]
    current, out = list(src), []
    while remove or add:
        gone, remove = remove[:step], remove[step:]
        new, add = add[:step], add[step:]
        current = [w for w in current if w not in gone] + new
        if set(current) == set(dst):
            break
        out.append(" ".join(current))
    return out


def bridged(members, start_text, end_text, first_line, author="bridger"):
    """The bridges as accounts ``author0..2``, checked to link start to end without start matching end."""
    steps = chain(start_text, end_text)
    out = [fp(f"bridge{i:02d}", text=t, author=f"{author}{i % 3}", line=first_line + i) for i, t in enumerate(steps)]
    texts_ = [start_text] + steps + [end_text]
    fps = [fp(f"t{i}", text=t) for i, t in enumerate(texts_)]
    assert all(cl.exact_jaccard(x.hashes(), y.hashes()) >= CFG.threshold for x, y in zip(fps, fps[1:]))
    assert cl.exact_jaccard(fps[0].hashes(), fps[-1].hashes()) < 0.2
    return members + out


UNRELATED = texts(1)[0]
ELSEWHERE = ("Arrived quickly and the colour is exactly as pictured, the strap feels sturdy and the zip runs "
             "smoothly, my daughter takes it to school every single day now")


def test_a_chain_of_edited_copies_cannot_make_an_honest_review_a_copy_of_an_earlier_one():
    """An attacker posts an unrelated review, then (after the honest 1-star review) bridges that
    morph its words into the honest review's: one component of 2 + bridges, whose earliest member
    shares no text with the honest review. It used to be rejected as a copy of it (similarity 0.04)."""
    members = bridged([fp("early", text=UNRELATED, author="attacker", line=1), fp("orig", line=2)],
                      UNRELATED, HONEST, first_line=3)
    out = cl.describe_cluster(members, CFG)
    orig = out["orig"]
    assert orig["cluster_size"] == len(members) and orig["is_canonical"] and orig["canonical_review_id"] == "orig"
    assert decide(orig, "orig").decision == "publish"
    assert all(not out[m.review_id]["is_canonical"] for m in members if m.review_id.startswith("bridge"))
    assert all(decide(out[m.review_id], m.review_id).decision != "publish" for m in members
               if m.review_id.startswith("bridge"))


def test_a_chain_between_two_different_reviews_of_one_author_is_not_the_author_repeating_itself():
    """Bridges link an honest author's two unrelated reviews (two products): the author then had
    two members in the component, which made the first posting withholdable ("author repeats")."""
    members = [fp("orig", line=1), fp("orig2", text=ELSEWHERE, product="p2", line=2)]
    members = bridged(members, HONEST, ELSEWHERE, first_line=3)
    out = cl.describe_cluster(members, CFG)
    for rid in ("orig", "orig2"):
        assert out[rid]["is_canonical"] and not out[rid]["author_repeats"]
        assert decide(out[rid], rid).decision == "publish"
    syndicated = [m._replace(channel="syndicated", partner="brand.example") if m.review_id.startswith("bridge") else m
                  for m in members]
    out = cl.describe_cluster(syndicated, CFG)   # the same bridges declared syndicated
    for rid in ("orig", "orig2"):
        assert not out[rid]["evidence"] and decide(out[rid], rid).decision == "publish"


def test_a_declared_syndicated_copy_received_first_does_not_make_the_site_review_a_copy():
    """The honest review was syndicated to a partner feed that arrived first; one attacker copy then
    made the site's own review a 'copy' of the syndicated one (held; rejected with three)."""
    synd = fp("synd", line=1, received="2025-03-01T09:00:00Z")._replace(channel="syndicated", partner="brand.example")
    members = [synd, fp("orig", line=2, received="2025-03-01T10:00:00Z")]
    members += [fp(f"copy{i}", text=HONEST + "!" * i, author=f"copier{i}", line=3 + i, received="2025-03-02T00:00:00Z")
                for i in range(3)]
    out = cl.describe_cluster(members, CFG)
    assert out["orig"]["is_canonical"] and decide(out["orig"], "orig").decision == "publish"
    # the copies wait for a person: the site's own members are 4, under the large-cluster rule's 5
    # (policy 1.3.0: the partner copy is not counted)
    assert out["orig"]["site_members"] == 4 and out["orig"]["cluster_size"] == 5
    assert all(decide(out[f"copy{i}"], "c").decision == "hold_for_review" for i in range(3))
    assert out["synd"]["pattern"] == "syndicated_copy"


def test_copies_with_a_received_at_do_not_outrank_an_earlier_review_without_one():
    """The honest review came through a channel without received_at (infinity: after everything
    stamped); copies posted two days later with a received_at became the first posting. With a
    member of this run lacking one, this run's members go by input order."""
    members = [fp("orig", line=1)]
    members += [fp(f"copy{i}", text=HONEST + "!" * i, author=f"copier{i}", line=2 + i, received="2025-03-03T00:00:00Z")
                for i in range(4)]
    out = cl.describe_cluster(members, CFG)
    assert out["orig"]["is_canonical"] and out["orig"]["canonical_by"] == "first_seen"
    assert decide(out["orig"], "orig").decision == "publish"
    assert all(not out[f"copy{i}"]["is_canonical"] for i in range(4))


def test_a_campaign_of_lightly_edited_copies_has_one_first_posting():
    """Copies of one template, three words changed in each, share ~0.7 with each other (under the
    clustering threshold; each ~0.85 with the unposted template): one component, and every copy
    after the first must still be a copy (a first posting is published). Matching only at the
    clustering threshold made a quarter of them first postings."""
    import random
    rng = random.Random(0)
    template = [f"w{rng.randrange(10**6)}" for _ in range(40)]
    members = []
    for i in range(60):
        words = list(template)
        for _ in range(3):
            words[rng.randrange(40)] = f"x{rng.randrange(10**6)}"
        members.append(fp(f"c{i:02d}", text=" ".join(words), author=f"acct{i % 12}", line=i + 1))
    pairs = [cl.exact_jaccard(a.hashes(), b.hashes()) for a, b in zip(members, members[1:])]
    assert sum(p < CFG.threshold for p in pairs) > len(pairs) / 2   # most copies do not match each other
    edges = [(a.review_id, b.review_id) for i, a in enumerate(members) for b in members[i + 1:]
             if cl.exact_jaccard(a.hashes(), b.hashes()) >= CFG.threshold]
    assert len(set(cl.components(edges).values())) == 1            # but one component
    out = cl.describe_cluster(members, CFG)
    assert [rid for rid, v in out.items() if v["is_canonical"]] == ["c00"]
    assert all(decide(out[f"c{i:02d}"], "c").decision == "reject" for i in range(1, 60))


def test_a_component_with_two_first_postings_is_counted_once_in_the_run_summary():
    """A chain component has first postings beside its cluster's own: the summary's cluster-size
    histogram counts the cluster once (at the member its id comes from), not once per first posting."""
    from pipeline.transforms.summary import _decision_keys
    from schemas.records import Decision
    members = bridged([fp("early", text=UNRELATED, author="attacker", line=1), fp("orig", line=2)],
                      UNRELATED, HONEST, first_line=3)
    out = cl.describe_cluster(members, CFG)
    assert sum(v["is_canonical"] for v in out.values()) == 2
    sizes = []
    for rid, values in out.items():
        d = Decision(review_id=rid, product_id="p", author_id="a", rating=1, created_at="t", language="en",
                     decision="publish", reasons=(), labels=(), redactions={}, provenance={},
                     signals={"near_duplicate": {"status": "scored", "values": values}})
        sizes += [k for (kind, k), _ in _decision_keys(d) if kind == "dup_cluster_size"]
    assert sizes == ["10-49"]
