"""Batch detection joins every detector's signal to the items in one grouping (issue #23): the
signals are the ones each detector gives alone, the band-bucket shortcut finds the same buckets,
and packed values come back unchanged."""
from __future__ import annotations

import json
from collections import defaultdict

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipeline.behaviour.config import BehaviourConfig
from pipeline.dedup import clusters as cl
from pipeline.dedup.clusters import Fingerprint
from pipeline.dedup.config import DedupConfig
from pipeline.transforms import dedup as dd
from pipeline.transforms.behaviour import DetectBehaviour
from pipeline.transforms.classify import ClassifyReviews
from pipeline.transforms.detect import DetectFakes, mark_not_run
from schemas.records import Client, InputRef, Item, Packer, Review, Signal, pack, unpack

CFG = DedupConfig()
LONG = ("This is hands down the best kettle I have ever owned, amazing quality, super fast shipping "
        "and the seller is so helpful, everyone in my family wants one now")
DAY = 86400


def item(review_id, body, author, product, day=0, language="en", device=None):
    created = f"2025-01-{1 + day:02d}T00:00:00Z"
    review = Review(review_id=review_id, product_id=product, author_id=author, rating=1 + len(review_id) % 5,
                    body=body, created_at=created, client=Client(device_id=device) if device else None)
    return Item(review=review, ref=InputRef("f.jsonl", len(review_id)), ingested_at="t", clean_body=body,
                language=language)


def corpus():
    items = [item(f"camp{a}-{p}", LONG + f" {'!' * a} {p}", f"acct{a}", f"prod{p}", day=p) for a in range(5)
             for p in range(3)]  # copies by five accounts on three products within days: both detectors fire
    items += [item(f"short{i}", "재밌어요", f"k{i}", f"m{i}", language="ko") for i in range(6)]
    items += [item(f"own{i}", f"The lid cracked after {i + 2} days and support sent three form emails, no fix",
                   f"owner{i}", "kettle", day=i) for i in range(4)]
    items += [item("dev1", "Fine for the price, a bit loud when it boils water", "d1", "kettle", device="x"),
              item("dev2", "Loud but quick, and the handle stays cool to the touch", "d2", "kettle", device="x")]
    return items


def view(it):
    return it.review.review_id, json.dumps({k: s.to_dict() for k, s in sorted(it.signals.items())}, sort_keys=True)


def _same_signals(items, stored=None):
    with TestPipeline() as p:
        source = p | beam.Create(items)
        store = p | "Store" >> beam.Create(stored) if stored else None
        joined, _, _ = source | DetectFakes(dedup=CFG, stored=store, behaviour=BehaviourConfig())
        alone, _ = source | "Alone" >> dd.DetectNearDuplicates(CFG, store)
        alone, _ = alone | "AloneBehaviour" >> DetectBehaviour(BehaviourConfig(), store)
        alone = alone | "NotRun" >> beam.Map(mark_not_run)
        both = ({"joined": joined | "V1" >> beam.Map(view), "alone": alone | "V2" >> beam.Map(view)}
                | beam.CoGroupByKey()
                | beam.Map(lambda kv: (kv[0], len(kv[1]["joined"]), kv[1]["joined"] == kv[1]["alone"])))
        assert_that(both, equal_to([(it.review.review_id, 1, True) for it in items]))


def test_one_join_gives_each_detectors_own_signals():
    _same_signals(corpus())


def test_one_join_gives_each_detectors_own_signals_with_a_signature_store():
    store = [Fingerprint(f"old{a}", 1735689600.0 + a * DAY, f"acct{a}", "prod9", None, None, "words", 10, b"", b"",
                         True) for a in range(5)]
    _same_signals(corpus(), store)


def test_shared_buckets_by_member_set_are_the_band_buckets_that_can_make_a_pair():
    signer = CFG.signer()
    rows = [{"review_id": it.review.review_id, "created_at": it.review.created_at, "author_id": it.review.author_id,
             "product_id": it.review.product_id, "text": it.clean_body, "language": it.language} for it in corpus()]
    fps = [f for f in cl.fingerprints(rows, CFG, signer) if cl.eligible(f, CFG)]
    by_band = defaultdict(set)
    for f in fps:
        for key in signer.band_keys(f.sig()):
            by_band[key].add(f.review_id)
    expected = {frozenset(ids) for ids in by_band.values() if len(ids) > 1}
    fn = dd._BandIdsFn(CFG)
    fn.setup()
    concat = dd._ConcatFn()
    shards = defaultdict(concat.create_accumulator)
    for f in fps:
        for shard, entry in fn.process(f):
            shards[shard] = concat.add_input(shards[shard], entry)
    by_set = defaultdict(set)
    for shard, acc in shards.items():
        for review_id, key in dd._shared_bucket_members((shard, concat.extract_output(acc))):
            by_set[key].add(review_id)
    assert expected and {frozenset(ids) for ids in by_set.values()} == expected


def test_packed_values_come_back_unchanged_and_smaller_with_samples():
    signal = Signal("scored", "behaviour-1.0.0", {"evidence": False, "reason": "review rate within the population's range"})
    packer = Packer([("behaviour", {"author_velocity": signal})])
    value = ("behaviour", {"author_velocity": Signal("scored", "behaviour-1.0.0", {"evidence": True, "reason": "x"})})
    assert packer.unpack(packer.pack(value)) == value
    assert len(packer.pack(("behaviour", {"author_velocity": signal}))) < len(pack(("behaviour", {"author_velocity": signal}))) / 4
    it = corpus()[0]
    assert unpack(pack(it)) == it and Packer().unpack(Packer().pack(it)) == it


def test_keyed_classifier_signals_match_the_item_signals():
    items = [item("en1", "Bought this for my dad's workshop. The clamp slipped twice on the first day, so I filed "
                         "the jaw a bit and since then it has held fine.", "a", "p"),
             item("en2", "Great product, works as described. Would recommend to anyone looking for a good product.",
                  "b", "p"),
             item("en3", "Great product, works as described. Would recommend to anyone looking for a good product.",
                  "c", "p"),
             item("s1", "Works.", "d", "p"), item("j1", "とても良かったです。", "e", "p", language="ja")]
    with TestPipeline() as p:
        source = p | beam.Create(items)
        keyed = source | ClassifyReviews(max_batch_size=8, keyed_signals=True) | "Parts" >> beam.Flatten()
        whole = source | "Items" >> ClassifyReviews(max_batch_size=8)
        both = ({"keyed": keyed | "K" >> beam.Map(lambda kv: (kv[0], json.dumps(kv[1].to_dict(), sort_keys=True))),
                 "item": whole | "I" >> beam.Map(lambda it: (it.review.review_id, json.dumps(
                     it.signals["fake_classifier"].to_dict(), sort_keys=True)))}
                | beam.CoGroupByKey()
                | beam.Map(lambda kv: (kv[0], len(kv[1]["keyed"]), kv[1]["keyed"] == kv[1]["item"])))
        assert_that(both, equal_to([(it.review.review_id, 1, True) for it in items]))
