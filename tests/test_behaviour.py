"""Behavioural detectors (pipeline/behaviour/): coordinated groups, velocity, bursts, shared clients.
Beam-free, fast."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from pipeline.behaviour.config import DAY, BehaviourConfig
from pipeline.behaviour.detect import Event, analyse, co_review_pairs, k_core_groups, scores

T0 = 1_700_006_400.0  # a midnight UTC


def campaign(k=5, m=3, start=T0, spread_days=6, prefix="c"):
    out = []
    for a in range(k):
        for p in range(m):
            ts = start + ((a + p) % (spread_days + 1)) * DAY
            out.append(Event(f"{prefix}-{a}-{p}", f"{prefix}-acct{a}", f"{prefix}-prod{p}", ts))
    return out


def background(n_auth=200, n_prod=50, per_author=3, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for a in range(n_auth):
        for k in range(per_author):
            out.append(Event(f"b-{a}-{k}", f"user{a}", f"prod{rng.integers(n_prod)}",
                             T0 + float(rng.integers(0, 365)) * DAY))
    return out


def test_event_cannot_carry_rating_or_text():
    names = set(Event._fields)
    assert names == {"review_id", "author_id", "product_id", "ts", "client_prefix", "device_id", "context", "trusted",
                     "seen"}
    assert not any(w in n for n in names for w in ("rating", "star", "body", "title", "sentiment"))


def test_coordinated_group_found_and_only_its_reviews_carry_evidence():
    honest_history = [Event(f"h-{k}", "c-acct0", f"old{k}", T0 - (100 + k) * DAY) for k in range(20)]
    events = campaign()
    res = analyse(events + background() + honest_history)
    first = {min((e for e in events if e.product_id == f"c-prod{p}"), key=lambda e: e.ts).review_id for p in range(3)}
    for a in range(5):
        for p in range(3):
            v = res.coordinated_group[f"c-{a}-{p}"]
            if f"c-{a}-{p}" in first:   # the group's first review of its product: the others came after it
                assert not v["evidence"] and v["group_id"] and "first review" in v["reason"]
            else:
                assert v["evidence"] and v["group_authors"] == 5 and v["group_products"] == 3
    assert len(res.groups) == 1 and res.groups[0]["authors"] == 5
    assert not any(res.coordinated_group[f"h-{k}"]["evidence"] for k in range(20))  # history stays clean
    assert not any(v["evidence"] for r, v in res.coordinated_group.items() if r.startswith("b-"))


def test_group_spread_beyond_the_window_is_not_a_group():
    res = analyse(campaign(spread_days=30))  # each pair of co-reviews >7 days apart somewhere
    far = [Event(f"f-{a}-{p}", f"acct{a}", f"prod{p}", T0 + p * 20 * DAY + a * 3600) for a in range(5) for p in range(3)]
    res = analyse(far)
    assert not any(v["evidence"] for v in res.coordinated_group.values())


def test_small_groups_and_pairs_are_not_evidence():
    res = analyse(campaign(k=3, m=5))  # 3 accounts < min_group_authors
    assert not any(v["evidence"] for v in res.coordinated_group.values())
    res = analyse(campaign(k=6, m=2))  # 2 products < min_shared_products
    assert not any(v["evidence"] for v in res.coordinated_group.values())


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 7), st.integers(0, 4), st.integers(0, 20)), min_size=2, max_size=80),
       st.integers(2, 4), st.integers(1, 6))
def test_pairs_of_authors_with_few_products_are_left_out_and_nothing_else(rows, min_products, max_neighbours):
    """The filter that keeps a million reviews' pairs in memory drops exactly the pairs that could
    never make a link, and the neighbour limit picks the same pairs as without it."""
    a = np.array([r[0] for r in rows]); p = np.array([r[1] for r in rows]); t = np.array([r[2] * DAY / 3 for r in rows])
    every = {tuple(x) for x in co_review_pairs(a, p, t, 2 * DAY, max_neighbours).tolist()}
    kept = {tuple(x) for x in co_review_pairs(a, p, t, 2 * DAY, max_neighbours, min_products).tolist()}
    products_of = {x: len({q for y, q in zip(a.tolist(), p.tolist()) if y == x}) for x in set(a.tolist())}
    assert kept == {(i, j) for i, j in every if products_of[a[i]] >= min_products and products_of[a[j]] >= min_products}


def test_co_review_pairs_and_k_core():
    a = np.array([0, 1, 2, 0])
    p = np.array([0, 0, 0, 1])
    t = np.array([0.0, DAY, 10 * DAY, 0.0])
    pairs = {tuple(sorted(x)) for x in co_review_pairs(a, p, t, 7 * DAY, 10).tolist()}
    assert pairs == {(0, 1)}
    # a triangle plus a pendant: the pendant is peeled
    groups = k_core_groups(np.array([0, 0, 1, 2]), np.array([1, 2, 2, 3]), 2, 3)
    assert [sorted(g.tolist()) for g in groups] == [[0, 1, 2]]


def test_velocity_against_population_and_day_resolution_note():
    evs = background()
    evs += [Event(f"v-{k}", "speedy", f"prod{k % 50}", T0 + 400 * DAY) for k in range(20)]
    res = analyse(evs)
    v = res.author_velocity["v-0"]
    assert v["evidence"] and v["per_day"] == 20 and v["per_hour"] is None and "day resolution" in v["note"]
    assert not res.author_velocity["b-0-0"]["evidence"]
    # sub-day timestamps: 8 reviews in 20 minutes is evidence per hour even below the daily floor
    evs = [e._replace(ts=e.ts + 3600 * 5) for e in background()]
    evs += [Event(f"q-{k}", "quick", f"prod{k}", T0 + 3600 * 3 + 150 * k) for k in range(8)]
    res = analyse(evs)
    assert res.author_velocity["q-0"]["evidence"] and res.author_velocity["q-0"]["per_hour"] == 8


def test_product_burst_is_an_alert_never_evidence():
    evs = [Event(f"s-{k}", f"u{k}", "steady", T0 + k * 7 * DAY) for k in range(60)]  # one a week
    evs += [Event(f"w-{k}", f"angry{k}", "steady", T0 + 300 * DAY + (k % 3) * DAY) for k in range(30)]
    res = analyse(evs)
    assert res.product_burst["w-0"]["burst"] and res.product_burst["w-0"]["evidence"] is False
    assert not res.product_burst["s-3"]["burst"]
    assert len(res.product_alerts) == 1
    alert = res.product_alerts[0]
    assert alert["product_id"] == "steady" and alert["reviews_in_burst"] in (30, 31) and "regardless of rating" in alert["note"]
    # thirty first-time accounts: no group, no velocity: nothing that could withhold
    assert not any(v["evidence"] for v in res.coordinated_group.values())
    assert not any(v["evidence"] for v in res.author_velocity.values())


def test_shared_client_needs_several_accounts_on_a_shared_product():
    evs = [Event(f"d-{k}", f"acct{k}", "p1", T0 + k * 3600, device_id="dev-1") for k in range(4)]
    evs += [Event("lone", "solo", "p2", T0, device_id="dev-2")]
    res = analyse(evs)
    assert res.shared_client["d-3"]["evidence"] and res.shared_client["d-3"]["accounts"] == 4
    # the first review of the product through the device is not evidence (the others came after it)
    assert not res.shared_client["d-0"]["evidence"] and "first review" in res.shared_client["d-0"]["reason"]
    assert not res.shared_client["lone"]["evidence"]
    assert "d-0" not in analyse([e._replace(device_id=None) for e in evs]).shared_client
    # a campus network: many accounts on one prefix is a shared network, never evidence
    campus = [Event(f"n-{k}", f"student{k}", "cafe" if k < 6 else f"shop{k}", T0 + k * 600, client_prefix="net-1")
              for k in range(60)]
    res = analyse(campus)
    assert not res.shared_client["n-0"]["evidence"] and "shared network" in res.shared_client["n-0"]["reason"]
    assert analyse(campus[:10]).shared_client["n-3"]["evidence"]


def test_accounts_that_join_an_honest_reviewers_network_do_not_make_its_review_evidence():
    """Attack on principle 1: three accounts come onto an honest reviewer's hashed network prefix
    (or claim its device id) and review its product after it. Before, all four reviews were
    evidence (4 accounts on one key and product) and the honest complaint was held
    (``unusual_activity``); now only the accounts that came after it are."""
    for attr in ("client_prefix", "device_id"):
        honest = Event("honest", "longtime", "p1", T0 + 37, **{attr: "key-1"})
        gatherers = [Event(f"g-{k}", f"sock{k}", "p1", T0 + (k + 1) * 3600, **{attr: "key-1"}) for k in range(3)]
        res = analyse([honest] + gatherers)
        assert not res.shared_client["honest"]["evidence"], attr
        assert all(res.shared_client[f"g-{k}"]["evidence"] for k in (1, 2)), attr
        # accounts on one key posting one product's reviews at one instant are a campaign: a tie
        # counts (session 20's attack: six tied accounts escaped when it did not)
        campaign = [Event(f"c-{k}", f"sock{k}", "p2", T0 + 37, **{attr: "key-2"}) for k in range(6)]
        assert all(v["evidence"] for k, v in analyse(campaign).shared_client.items()), attr
        # back-dated accounts (no received_at: created_at is the author's) are evidence too
        backdated = [g._replace(ts=T0 + 36) for g in gatherers] + [Event("g-3", "sock3", "p1", T0 + 36, **{attr: "key-1"})]
        res = analyse([honest] + backdated)
        assert all(res.shared_client[e.review_id]["evidence"] for e in backdated), attr


def test_deterministic_and_order_independent():
    evs = campaign() + background()
    a = analyse(evs)
    b = analyse(list(reversed(evs)))
    assert a.coordinated_group == b.coordinated_group and a.groups == b.groups
    assert a.product_alerts == b.product_alerts


def test_scores_match_analyse():
    evs = campaign() + background()
    ids = {}
    author = np.array([ids.setdefault(e.author_id, len(ids)) for e in evs])
    pids = {}
    product = np.array([pids.setdefault(e.product_id, len(pids)) for e in evs])
    t = np.array([e.ts for e in evs])
    s = scores(author, product, t)
    res = analyse(evs)
    assert [res.coordinated_group[e.review_id]["evidence"] for e in evs] == s["group_evidence"].tolist()


def test_config_is_validated():
    with pytest.raises(ValueError):
        BehaviourConfig(min_shared_products=1)
    assert BehaviourConfig().version.startswith("behaviour-1.0.0")
    assert dataclasses.replace(BehaviourConfig(), window_days=3).version != BehaviourConfig().version


def test_evaluate_behaviour_runs_on_any_file_of_the_format(tmp_path):
    from models.evaluate_behaviour import evaluate
    rng = np.random.default_rng(1)
    lines = []
    for k in range(4000):
        user = int(rng.integers(5000, 6500))
        lines.append(f"{user}\t{int(rng.integers(0, 300))}\t{float(rng.integers(1, 6))}\t{-1 if user % 7 == 0 else 1}\t"
                     f"20{10 + int(rng.integers(0, 4))}-0{1 + int(rng.integers(0, 9))}-1{int(rng.integers(0, 9))}")
    path = tmp_path / "meta.tsv"
    path.write_text("\n".join(lines) + "\n")
    out = evaluate(str(path), repeats=1)
    for key in ("n", "auc_by_signal", "auc_combined", "auc_baseline_review_count", "injected_recall",
                "flag_rate_recommended", "withheld_by_star_recommended"):
        assert key in out
    assert out["n"] == 4000 and set(out["withheld_by_star_recommended"]) == {"1", "2", "3", "4", "5"}
    assert out["injected_recall"] >= 0.9
    assert out["withhold_rule"]["group=False,velocity=False"] == "publish"


def _item(review_id, author, product, day, rating=1, device=None):
    from schemas.records import Client, InputRef, Item, Review
    ts = np.datetime64(int(T0 + day * DAY), "s").astype(str) + "Z"
    review = Review(review_id=review_id, product_id=product, author_id=author, rating=rating, body="Broke in a week.",
                    created_at=ts, client=Client(device_id=device) if device else None)
    return Item(review=review, ref=InputRef("f", 1), ingested_at="t", clean_body="Broke in a week.", language="en")


def test_beam_stage_sets_three_signals_on_every_item_with_store_context_and_alerts():
    import apache_beam as beam
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from pipeline.dedup.clusters import Fingerprint
    from pipeline.policy import DEFAULT_POLICY
    from pipeline.transforms.detect import DetectFakes

    # a campaign whose first two products were reviewed in an earlier run (signature store)
    current, stored = [], []
    for a in range(5):
        for pi in range(3):
            if pi < 2:
                stored.append(Fingerprint(f"c{a}{pi}", T0 + pi * DAY, f"acct{a}", f"prod{pi}", None, None,
                                          "words", 10, b"", b"", True))
            else:
                current.append(_item(f"c{a}{pi}", f"acct{a}", f"prod{pi}", 2, rating=5))
    current += [_item(f"w{k}", f"angry{k}", "kettle", 50 + k % 2) for k in range(12)]  # a complaint wave
    current += [_item(f"s{k}", f"calm{k}", "kettle", 42 - 7 * k) for k in range(30)]  # one a week before
    with TestPipeline() as p:
        store = p | "Store" >> beam.Create(stored)
        out, _, alerts = p | beam.Create(current) | DetectFakes(stored=store, behaviour=BehaviourConfig())
        got = out | beam.Map(lambda it: (it.review.review_id, it.signals["coordinated_group"].status,
                                         it.signals["coordinated_group"].values.get("evidence"),
                                         it.signals["product_burst"].values.get("burst"),
                                         DEFAULT_POLICY.decide(it).decision))
        expected = [(f"c{a}2", "scored", True, False, "hold_for_review") for a in range(5)]
        expected += [(f"w{k}", "scored", False, True, "publish") for k in range(12)]
        assert_that(got | beam.Filter(lambda r: r[0][0] in "cw"), equal_to(expected), label="signals")
        assert_that(alerts | beam.Map(lambda a: (a["product_id"], a["reviews_in_this_run"] >= 12)),
                    equal_to([("kettle", True)]), label="alerts")


def test_streaming_behaviour_flags_the_campaign_not_the_complaint_wave():
    import apache_beam as beam
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that

    from pipeline.policy import DEFAULT_POLICY
    from pipeline.transforms.detect import DetectFakes

    items = [_item(f"c{a}{pi}", f"acct{a}", f"prod{pi}", pi + a % 2, rating=5) for a in range(6) for pi in range(3)]
    items += [_item(f"w{k}", f"angry{k}", "kettle", 60 + k % 2) for k in range(14)]
    items += [_item(f"s{k}", f"calm{k}", "kettle", 59 - 7 * k) for k in range(12)]

    def only_kettle(products):
        assert products and set(products) == {"kettle"}, products  # one alert per burst entry, the wave's product

    def check(rows):
        by_id = {r[0]: r for r in rows}
        assert len(by_id) == len(items)
        assert all(r[1] == ("scored", "scored", "scored") for r in rows)
        flagged = {rid for rid, _, ev, _, _ in rows if ev}
        assert flagged and all(rid.startswith("c") for rid in flagged)
        assert all(by_id[rid][4] == "hold_for_review" for rid in flagged)
        assert all(r[4] == "publish" for r in rows if r[0][0] in "ws")  # a complaint wave stays visible
        assert any(r[3] for r in rows if r[0].startswith("w"))  # … and is seen as a burst

    with TestPipeline() as p:
        out, _, alerts = p | beam.Create(items) | DetectFakes(streaming=True, behaviour=BehaviourConfig())
        assert_that(alerts | "AlertProducts" >> beam.Map(lambda a: a["product_id"]), only_kettle, label="alerts")
        rows = out | beam.Map(lambda it: (it.review.review_id,
                                          tuple(it.signals[n].status for n in ("coordinated_group", "author_velocity",
                                                                               "product_burst")),
                                          it.signals["coordinated_group"].values.get("evidence"),
                                          it.signals["product_burst"].values.get("burst"),
                                          DEFAULT_POLICY.decide(it).decision))
        assert_that(rows | beam.combiners.ToList(), lambda got: check(got[0]))


def test_streaming_local_group_matches_the_batch_rule_on_a_clique():
    from pipeline.transforms.behaviour_stream import local_group
    cfg = BehaviourConfig()
    own = [(T0 + p * DAY, f"r{p}", f"prod{p}") for p in range(3)]
    co = [(f"prod{p}", f"acct{a}", T0 + (p + 1) * DAY) for a in range(1, 5) for p in range(3)]
    group, links = local_group("acct0", own, co, cfg)
    assert group == {f"acct{a}" for a in range(5)} and links["acct1"] == {"prod0", "prod1", "prod2"}
    group, _ = local_group("acct0", own, co[:6], cfg)  # two other accounts: 3 < min_group_authors
    assert group == set()


def test_evaluate_behaviour_survives_tiny_files(tmp_path):
    from models.evaluate_behaviour import evaluate
    path = tmp_path / "tiny.tsv"
    path.write_text("1\t10\t5.0\t1\t2014-01-01\n2\t10\t1.0\t-1\t2014-01-02\n3\t11\t4.0\t1\t2014-01-03\n")
    out = evaluate(str(path), repeats=1)
    assert out["n"] == 3 and out["injected_recall"] is None  # too few products for any campaign
    path.write_text("1\t10\t5.0\t1\t2014-01-01\n")
    assert evaluate(str(path), repeats=1)["auc_combined"] is None  # one class: no AUC


def test_events_are_collected_whole_across_chunks_and_merges():
    """The packed collector gives every event back, whatever the chunking and merge order."""
    from pipeline.behaviour.detect import Event
    from pipeline.transforms.behaviour import CollectEventsFn
    fn = CollectEventsFn()
    events = [Event(f"r{i}", f"a{i % 7}", f"p{i % 5}", float(i), None if i % 3 else "10.0.0", None, i % 11 == 0)
              for i in range(3 * fn.CHUNK + 17)]
    parts = []
    for start in range(0, len(events), 5000):
        acc = fn.create_accumulator()
        for e in events[start:start + 5000]:
            acc = fn.add_input(acc, e)
        parts.append(fn.compact(acc) if start % 2 else acc)
    out = fn.extract_output(fn.merge_accumulators(parts[::-1]))
    assert sorted(out) == sorted(events) and all(isinstance(e, Event) for e in out)
    assert fn.extract_output(fn.create_accumulator()) == []


def test_accounts_that_gather_after_an_honest_reviewer_do_not_make_its_reviews_evidence():
    """An honest account reviews three products; three accounts review the same three products
    days later (within the window), dating their reviews back into it. With received_at (the
    platform's time) the honest account's reviews come first on every product: not evidence; the
    gatherers' are. Without received_at the backdated created_at put them first."""
    from pipeline.transforms.behaviour import to_event
    from schemas.records import InputRef, Item, Review

    def item(rid, author, product, created_day, received_day):
        iso = lambda d: np.datetime64(int(T0 + d * DAY), "s").astype(str) + "Z"
        review = Review(review_id=rid, product_id=product, author_id=author, rating=1, body="Broke in a week.",
                        created_at=iso(created_day), received_at=iso(received_day))
        return Item(review=review, ref=InputRef("f", 1), ingested_at="t", clean_body="Broke in a week.", language="en")

    honest = [item(f"v{p}", "victim", f"prod{p}", p, p) for p in range(3)]
    gathered = [item(f"a{a}-{p}", f"att{a}", f"prod{p}", p - 1, p + 3 + a * 0.1) for a in range(3) for p in range(3)]
    res = analyse([to_event(i) for i in honest + gathered])
    assert res.groups, "the four accounts form a group"
    assert not any(res.coordinated_group[f"v{p}"]["evidence"] for p in range(3))
    assert all(res.coordinated_group[f"a{a}-{p}"]["evidence"] for a in range(3) for p in range(3))


def test_a_campaign_that_gives_its_reviews_one_time_is_still_evidence():
    """Session 20's attack: with "a tie is not before" (session 19), accounts that give a product's
    reviews one identical time (to the second) were each "the first review" and escaped. A tie
    counts again. (Session 19 had made ties not count so that accounts copying an honest review's
    public created_at could not make it evidence; but back-dating one second more does the same, so
    without received_at only the platform's time protects the honest review: docs/behaviour.md.)"""
    start = T0 + 3 * 3600 + 17 * 60 + 41   # times to the second
    tied = [Event(f"a{a}-{p}", f"att{a}", f"prod{p}", start + p * DAY) for a in range(4) for p in range(3)]
    res = analyse(tied)
    assert res.groups, "the four accounts form a group"
    assert all(v["evidence"] for v in res.coordinated_group.values())
    day = analyse([e._replace(ts=T0 + p * DAY) for e, p in zip(tied, [0, 1, 2] * 4)])
    assert all(v["evidence"] for v in day.coordinated_group.values())   # day resolution: the same


def test_times_the_author_sets_never_come_before_the_platforms():
    """Session 20's attack: an honest reviewer's reviews carry the platform's received_at; three
    accounts without it (a partner feed, an import) date theirs an hour earlier. Their author-set
    times counted as "before", so the honest reviews were the group's later ones, evidence, held. An
    author-set time no longer counts as before a platform time; among author-set times it still
    does, so the accounts' own reviews stay evidence."""
    start = T0 + 10 * 3600
    honest = [Event(f"v{p}", "victim", f"prod{p}", start + p * DAY, trusted=True) for p in range(3)]
    early = [Event(f"a{a}-{p}", f"att{a}", f"prod{p}", start + p * DAY - 3600 + a) for a in range(3) for p in range(3)]
    res = analyse(honest + early)
    assert res.groups, "the four accounts form a group"
    assert not any(res.coordinated_group[f"v{p}"]["evidence"] for p in range(3))
    assert all(res.coordinated_group[f"a{a}-{p}"]["evidence"] for a in (1, 2) for p in range(3))
    # the same times, all set by authors: the order is theirs, and the victim's reviews are evidence
    untrusted = analyse([e._replace(trusted=False) for e in honest] + early)
    assert all(untrusted.coordinated_group[f"v{p}"]["evidence"] for p in range(3))


def test_back_dating_without_received_at_does_not_make_an_earlier_seen_review_evidence():
    """Session 21, principle 1: neither side has received_at. Three accounts review an honest
    reviewer's products after it (later in the input) but copy or back-date its created_at. By
    created_at alone they came "no later", so the honest reviews were a group's later ones
    (``coordinated_group``) or a device's (``shared_client``), and held. Between author-set times a
    review must now also have been seen no later (earlier run, then input file and line)."""
    start = T0 + 10 * 3600
    seen = lambda line: (math.inf, "gs://in/day.jsonl", line)   # noqa: E731
    honest = [Event(f"v{p}", "victim", f"prod{p}", start + p * DAY, seen=seen(p)) for p in range(3)]
    for back in (0, 3600):   # a copied created_at, and one dated an hour earlier
        late = [Event(f"a{a}-{p}", f"att{a}", f"prod{p}", start + p * DAY - back, seen=seen(10 + 3 * a + p))
                for a in range(3) for p in range(3)]
        res = analyse(honest + late)
        assert res.groups, "the four accounts form a group"
        assert not any(res.coordinated_group[f"v{p}"]["evidence"] for p in range(3)), back
        # the accounts after the first one are still evidence (seen after it, dated no later)
        assert all(res.coordinated_group[f"a{a}-{p}"]["evidence"] for a in (1, 2) for p in range(3)), back
        # the same through one device id
        dev = analyse([e._replace(device_id="dev-1") for e in honest + late])
        assert not any(dev.shared_client[f"v{p}"]["evidence"] for p in range(3)), back
        assert all(dev.shared_client[f"a{a}-{p}"]["evidence"] for a in (1, 2) for p in range(3)), back
    # the accounts come through a partner feed whose file name sorts before the store's own file:
    # two files of one run have no order, so across them an author-set time is never before
    partner = [e._replace(ts=e.ts - 3600, seen=(math.inf, "gs://in/0-partner.jsonl", e.seen[2])) for e in late]
    res = analyse(honest + partner)
    assert not any(res.coordinated_group[f"v{p}"]["evidence"] for p in range(3))
    assert all(res.coordinated_group[f"a{a}-{p}"]["evidence"] for a in (1, 2) for p in range(3))
    # without the order seen (the evaluation's arrays), created_at alone decides, as before
    assert all(analyse([e._replace(seen=None) for e in honest + late]).coordinated_group[f"v{p}"]["evidence"]
               for p in range(3))
    # an earlier run's stored review was seen before this run's reviews
    stored = [Event(f"a{a}-{p}", f"att{a}", f"prod{p}", start + p * DAY - 3600, context=True, seen=(start + 60, "", 0))
              for a in range(3) for p in range(3)]
    assert all(analyse(honest + stored).coordinated_group[f"v{p}"]["evidence"] for p in range(3))
    # the price, documented in came_no_later: a campaign without received_at that dates each later
    # review before the earlier ones looks first everywhere
    reverse = [Event(f"r{a}-{p}", f"rev{a}", f"q{p}", start + p * DAY - 60 * a, seen=seen(3 * a + p))
               for a in range(4) for p in range(3)]
    res = analyse(reverse)
    assert res.groups and not any(v["evidence"] for v in res.coordinated_group.values())


def test_a_resent_honest_review_keeps_where_it_was_first_seen():
    """Session 21 (helper): run 1 stored an honest reviewer's three reviews (and, in one case, three
    accounts' reviews of the same products after them in its file, with the same created_at); run 2
    stored such accounts; run 3 gets the honest reviews again (an export overlap). This run's copy
    replaced the stored one with this run's place, after every stored account, so the honest
    reviews became the group's later ones and were held. A resend keeps where it was first seen,
    and reviews stored by one run keep their input order."""
    from pipeline.dedup import store as st
    from pipeline.dedup.clusters import Fingerprint
    from pipeline.transforms.behaviour import _analyse_all, stored_event

    start = T0 + 10 * 3600

    def stored(rid, author, product, run, line):
        fp = Fingerprint(review_id=rid, created_ts=start + int(product[-1]) * DAY, author_id=author, product_id=product,
                         channel=None, partner=None, family="words", n_shingles=12, signature=b"", shingle_hashes=b"",
                         input_uri="gs://in/day.jsonl", input_line=line)
        row = st.to_row(fp, [], f"run{run}", np.datetime64(int(start + 5 * DAY + run * 3600), "s").astype(str) + "Z")
        return stored_event(st.from_row(row))

    victim = [stored(f"v{p}", "victim", f"prod{p}", 1, 1 + p) for p in range(3)]
    resend = [Event(e.review_id, "victim", e.product_id, e.ts, seen=(math.inf, "gs://in/day3.jsonl", 1 + p))
              for p, e in enumerate(victim)]
    for run in (1, 2):   # the accounts in run 1's file after the victim, or in run 2
        accounts = [stored(f"a{a}-{p}", f"att{a}", f"prod{p}", run, 10 + 3 * a + p) for a in range(3) for p in range(3)]
        out = dict(o.value for o in _analyse_all(victim + accounts + resend, BehaviourConfig()) if o.tag == "signals")
        assert set(out) == {f"v{p}" for p in range(3)}
        assert not any(out[f"v{p}"]["coordinated_group"].values["evidence"] for p in range(3)), run
        # at this run's place (the stored copy forgotten), the resent reviews would be evidence
        res = analyse(accounts + resend)
        assert all(res.coordinated_group[f"v{p}"]["evidence"] for p in range(3)), run
    # helper round 2: accounts that stored reviews of other products under ids in run 1 and now post
    # after the victim under those ids do not take run 1's place (a new review, not a resend)
    reserved = [stored(f"a{a}-{p}", f"att{a}", f"junk{a}", 1, 20 + 3 * a + p) for a in range(3) for p in range(3)]
    victim_now = [Event(f"v{p}", "victim", f"prod{p}", start + p * DAY, seen=(math.inf, "gs://in/day3.jsonl", 1 + p))
                  for p in range(3)]
    socks_now = [Event(f"a{a}-{p}", f"att{a}", f"prod{p}", start + p * DAY, seen=(math.inf, "gs://in/day3.jsonl", 10 + 3 * a + p))
                 for a in range(3) for p in range(3)]
    out = dict(o.value for o in _analyse_all(reserved + victim_now + socks_now, BehaviourConfig()) if o.tag == "signals")
    assert not any(out[f"v{p}"]["coordinated_group"].values["evidence"] for p in range(3))
    assert all(out[f"a{a}-{p}"]["coordinated_group"].values["evidence"] for a in (1, 2) for p in range(3))


def test_the_beam_stage_orders_author_set_times_by_input_line():
    """The batch stage gives each event its input file and line: the honest review on line 1 is
    published although three device-sharing accounts on lines 2-4 dated theirs a minute earlier."""
    import apache_beam as beam
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from pipeline.policy import DEFAULT_POLICY
    from pipeline.transforms.detect import DetectFakes
    from schemas.records import InputRef

    def at(item, line, minutes_earlier=0):
        ts = np.datetime64(int(T0 + 2 * DAY - 60 * minutes_earlier), "s").astype(str) + "Z"
        return item.replace(ref=InputRef("gs://in/day.jsonl", line),
                            review=dataclasses.replace(item.review, created_at=ts))

    items = [at(_item("honest", "longtime", "kettle", 2, device="dev-9"), 1)]
    items += [at(_item(f"g{k}", f"sock{k}", "kettle", 2, device="dev-9"), 2 + k, minutes_earlier=1) for k in range(3)]
    with TestPipeline() as p:
        out, _, _ = p | beam.Create(items) | DetectFakes(behaviour=BehaviourConfig())
        got = out | beam.Map(lambda it: (it.review.review_id,
                                         it.signals["coordinated_group"].values["shared_client"]["evidence"],
                                         DEFAULT_POLICY.decide(it).decision))
        # g0 is neither dated nor seen after another account: a first review (the rule's price)
        assert_that(got, equal_to([("honest", False, "publish"), ("g0", False, "publish")] +
                                  [(f"g{k}", True, "hold_for_review") for k in (1, 2)]))


def test_a_campaign_spread_over_daily_runs_is_evidence_through_the_store():
    """Helper round 3: four accounts, one a day, each run with its own --signature_store context,
    every review with the platform's received_at. Stored reviews came back at their created_at and
    untrusted, so none counted as "before" today's trusted review: the last account's reviews were
    published. A stored review now keeps the time its run used (received_at) and its trust."""
    from pipeline.dedup import store as st
    from pipeline.dedup.clusters import Fingerprint
    from pipeline.transforms.behaviour import stored_event

    def stored(author, product, day, received=True):
        fp = Fingerprint(review_id=f"{author}-{product}", created_ts=T0 + day * DAY - 7200, author_id=author,
                         product_id=product, channel=None, partner=None, family="words", n_shingles=12,
                         signature=b"", shingle_hashes=b"", arrival_ts=T0 + day * DAY + 5 if received else math.inf,
                         received=received)   # as clusters.fingerprints makes them: the store keeps the flag
        row = st.to_row(fp, [], f"run{day}", np.datetime64(int(T0 + day * DAY + 3600), "s").astype(str) + "Z")
        return stored_event(st.from_row(row))

    context = [stored(a, f"P{p}", d) for d, a in enumerate("ABC") for p in range(3)]
    assert all(e.trusted and e.ts == T0 + int(e.author_id == "B") * DAY + int(e.author_id == "C") * 2 * DAY + 5
               for e in context)
    today = [Event(f"D-P{p}", "D", f"P{p}", T0 + 3 * DAY + 5, trusted=True) for p in range(3)]
    res = analyse(context + today)
    assert all(res.coordinated_group[f"D-P{p}"]["evidence"] for p in range(3))
    # a stored review without received_at: its created_at, untrusted (as in its own run)
    plain = stored("E", "P0", 0, received=False)
    assert not plain.trusted and plain.ts == T0 - 7200
