"""Near-duplicate detection: signatures equal datasketch's, LSH and clusters, the short-text rule."""
from __future__ import annotations

import apache_beam as beam
import numpy as np
import pytest
import xxhash
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to
from datasketch import MinHash
from hypothesis import given, settings, strategies as st

from pipeline.dedup import clusters as cl
from pipeline.dedup.config import DedupConfig
from pipeline.dedup.shingles import script_language, shingles
from pipeline.dedup.signatures import Signer, exact_jaccard
from pipeline.transforms.dedup import DetectNearDuplicates
from schemas.records import InputRef, Item, Review, Source

CFG = DedupConfig()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.frozensets(st.text(min_size=1, max_size=8), max_size=40), min_size=1, max_size=30),
       st.sampled_from([16, 64, 128, 256]), st.integers(0, 2**31 - 1))
def test_signatures_are_bit_identical_to_datasketch(docs, num_perm, seed):
    signer = Signer(num_perm=num_perm, seed=seed)
    ours = signer.signatures(docs, chunk_tokens=37)  # odd chunking exercises the chunk boundaries
    theirs = [m.hashvalues for m in MinHash.bulk([[s.encode() for s in d] for d in docs], num_perm=num_perm,
                                                  seed=seed, hashfunc=xxhash.xxh32_intdigest)]
    for a, b in zip(ours, theirs):
        assert a.dtype == np.uint32 and np.array_equal(a, b)
    # and datasketch's per-token update() agrees too
    m = MinHash(num_perm=num_perm, seed=seed, hashfunc=xxhash.xxh32_intdigest)
    for s in docs[0]:
        m.update(s.encode())
    assert np.array_equal(ours[0], m.hashvalues)


@settings(max_examples=100, deadline=None)
@given(st.frozensets(st.text(max_size=5), max_size=30), st.frozensets(st.text(max_size=5), max_size=30))
def test_exact_jaccard_on_hashes_matches_sets(a, b):
    _, (ha, hb) = Signer().sign([a, b])
    expected = len(a & b) / len(a | b) if a | b else 1.0
    assert exact_jaccard(ha, hb) == pytest.approx(expected)


def test_lsh_parameters_are_derived_once_from_the_threshold():
    assert CFG.bands_rows == (16, 8)
    assert DedupConfig(threshold=0.9).bands_rows != CFG.bands_rows
    with pytest.raises(ValueError):
        DedupConfig(threshold=1.5)


def test_shingles_by_language():
    assert script_language("配送が早い", None) == "ja"
    assert script_language("배송이 빨라요", None) == "ko"
    assert script_language("质量很好", None) == "zh"
    assert script_language("Great kettle", None) == "words"
    assert shingles("Great, GREAT kettle!!", "en") == frozenset({"great", "kettle"})
    assert shingles("배송이 빨라요", "ko") == frozenset({"배송", "송이", "이빨", "빨라", "라요"})
    # re-cased and re-punctuated copies have the same shingles
    assert shingles("Best kettle ever. Buy it!", "en") == shingles("best KETTLE ever buy it", "en")


def fp(review_id, text="", created="2025-01-01T00:00:00Z", author="a", product="p", channel=None, partner=None,
       language="en", stored=False, signer=Signer()):
    row = {"review_id": review_id, "created_at": created, "author_id": author, "product_id": product,
           "channel": channel, "partner": partner, "text": text, "language": language}
    return cl.fingerprints([row], CFG, signer)[0]._replace(stored=stored)


LONG = ("This is hands down the best kettle I have ever owned, amazing quality, super fast shipping "
        "and the seller is so helpful, everyone in my family wants one now")


def test_short_text_is_never_evidence():
    for text, lang in [("Great!", "en"), ("Love it, works well", "en"), ("굿", "ko"), ("재밌어요", "ko"),
                       ("최고의 영화", "ko"), ("最高でした", "ja")]:
        assert not cl.eligible(fp("x", text, language=lang), CFG), text
    assert cl.eligible(fp("x", LONG), CFG)


def test_bucket_edges_all_pairs_and_no_self_pairs():
    a, b, c = fp("a", LONG), fp("b", LONG + " really"), fp("c", "completely different words about a toaster that broke")
    edges, overflow = cl.bucket_edges([a, b, c, a._replace(stored=True)], CFG)
    assert edges == [("a", "b")] and overflow == 0
    # two members that were both in the store were compared by an earlier run
    assert cl.bucket_edges([a._replace(stored=True), b._replace(stored=True)], CFG)[0] == []


def test_hot_bucket_costs_linear_time_and_keeps_copies_together():
    members = [fp(f"r{i:04d}", LONG, created=f"2025-01-01T00:{i // 60:02d}:{i % 60:02d}Z", author=f"u{i}")
               for i in range(500)]
    edges, overflow = cl.bucket_edges(members, CFG)
    assert len(edges) == 499 and overflow == 0  # every member joins the first (its leader): a star
    roots = cl.components(edges)
    assert len(set(roots.values())) == 1


def test_components_union_find():
    roots = cl.components([("a", "b"), ("c", "d"), ("b", "c"), ("x", "y")])
    assert roots["a"] == roots["b"] == roots["c"] == roots["d"] != roots["x"] == roots["y"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30)), max_size=60), st.integers(1, 5), st.randoms())
def test_spanning_edges_and_merged_union_find_give_the_same_components(pairs, parts, rnd):
    """What the job does (a spanning forest per bucket, union-find maps merged in any order and
    split) against union-find over every edge at once: the same representative for every review."""
    from pipeline.transforms.dedup import _ComponentsFn
    edges = [(f"r{a:02d}", f"r{b:02d}") for a, b in pairs if a != b]
    expected = cl.components(edges)
    forest = cl.spanning_edges(edges)
    assert len(forest) <= max(0, len(expected) - 1) and cl.components(forest) == expected
    fn = _ComponentsFn()
    rnd.shuffle(edges)
    accs = [fn.create_accumulator() for _ in range(parts)]
    for i, e in enumerate(edges):
        fn.add_input(accs[i % parts], e)
    rnd.shuffle(accs)
    assert fn.extract_output(fn.merge_accumulators(accs)) == expected


def test_cluster_semantics():
    # canonical = earliest created_at, then review_id; similarity to canonical; campaign
    camp = [fp("c2", LONG, created="2025-01-01T00:00:00Z", author="u2"),
            fp("c1", LONG, created="2025-01-01T00:00:00Z", author="u1"),
            fp("c3", LONG + " yes", created="2024-12-31T23:00:00-02:00", author="u3")]
    out = cl.describe_cluster(camp, CFG)
    assert {v["canonical_review_id"] for v in out.values()} == {"c1"}
    assert out["c1"]["is_canonical"] and out["c1"]["similarity_to_canonical"] == 1.0
    assert 0.8 <= out["c3"]["similarity_to_canonical"] < 1.0
    assert {v["pattern"] for v in out.values()} == {"campaign"} and out["c2"]["evidence"]
    assert out["c1"]["cluster_size"] == 3 and out["c1"]["cluster_id"] == cl.cluster_id("c1")
    # one author pasting across products
    rep = cl.describe_cluster([fp(f"r{i}", LONG, author="same", product=f"p{i}") for i in range(4)], CFG)
    assert {v["pattern"] for v in rep.values()} == {"author_repeat"}
    # declared syndication is provenance, not fraud
    syn = cl.describe_cluster([fp("orig", LONG, author="u1"),
                               fp("syn1", LONG, author="p1", channel="syndicated", partner="PartnerMart"),
                               fp("syn2", LONG, author="p2", channel="syndicated", partner="OtherShop")], CFG)
    assert syn["orig"]["pattern"] == "syndication_source" and syn["syn1"]["pattern"] == "syndicated_copy"
    assert not any(v["evidence"] for v in syn.values())
    assert syn["orig"]["cluster_size"] == 3 and syn["orig"]["site_members"] == 1
    # a syndicated claim without a partner is not a declaration
    undeclared = cl.describe_cluster([fp("o", LONG, author="u1"), fp("s", LONG, author="u2", channel="syndicated")], CFG)
    assert undeclared["s"]["pattern"] == "campaign"


def test_common_phrase_across_unrelated_authors_and_products_is_not_evidence():
    phrase = "Works great, fast shipping, would buy again"  # 7 words: eligible but short
    members = [fp(f"r{i}", phrase, author=f"u{i}", product=f"p{i}") for i in range(8)]
    out = cl.describe_cluster(members, CFG)
    assert {v["pattern"] for v in out.values()} == {"common_phrase"}
    assert not any(v["evidence"] for v in out.values())
    # the same short text from many accounts on two products is a campaign
    members = [fp(f"r{i}", phrase, author=f"u{i}", product=f"p{i % 2}") for i in range(8)]
    assert {v["pattern"] for v in cl.describe_cluster(members, CFG).values()} == {"campaign"}


def item(review_id, body, author="u", product="p", created="2025-01-01T00:00:00Z", channel=None, partner=None,
         language="en"):
    return Item(review=Review(review_id=review_id, product_id=product, author_id=author, rating=1, body=body,
                              created_at=created, source=Source(channel=channel, partner=partner) if channel else None),
                ref=InputRef("f", 1), ingested_at="t", clean_body=body, language=language)


def test_detect_near_duplicates_transform():
    items = ([item(f"camp{i}", LONG + f" {'!' * i}", author=f"acct{i}", product=f"p{i % 2}") for i in range(5)]
             + [item(f"short{i}", "재밌어요", author=f"k{i}", product=f"m{i}", language="ko") for i in range(30)]
             + [item("alone", "The lid cracked after nine days and support sent three form emails, no fix")]
             + [item("syn", LONG, author="partner", channel="syndicated", partner="PartnerMart")])
    with BeamTestPipeline() as p:
        out, fps = p | beam.Create(items) | DetectNearDuplicates(CFG)
        summary = out | beam.Map(lambda it: (it.review.review_id[:4], it.signals["near_duplicate"].status,
                                             it.signals["near_duplicate"].values.get("pattern"),
                                             it.signals["near_duplicate"].values.get("evidence")))
        assert_that(summary | "Distinct" >> beam.Distinct(), equal_to([
            ("camp", "scored", "campaign", True), ("shor", "not_applicable", None, None),
            ("alon", "scored", "none", False), ("syn", "scored", "syndicated_copy", False)]))
        assert_that(fps | beam.combiners.Count.Globally(), equal_to([len(items)]), label="fingerprints")


def test_a_clustered_review_keeps_its_cluster_signal_whatever_order_its_signals_arrive_in():
    """Every review gets the signal of a review in no cluster at once; a clustered one also gets its
    cluster's, which must win in either order (the join does not order values)."""
    from pipeline.transforms.dedup import choose_signal, dedup_signal
    rows = [{"review_id": f"r{i}", "created_at": "2026-01-01T00:00:00Z", "author_id": "a", "product_id": "p",
             "channel": None, "partner": None, "text": "the same long review text about this product " * 3,
             "language": "en"} for i in range(2)]
    fps = cl.fingerprints(rows, CFG, CFG.signer())
    alone = dedup_signal(fps[0], None, CFG, CFG.version)
    clustered = dedup_signal(fps[0], cl.describe_cluster(fps, CFG)["r0"], CFG, CFG.version)
    assert clustered.values["cluster_id"] is not None and alone.values["cluster_id"] is None
    assert choose_signal([alone, clustered]) == clustered and choose_signal([clustered, alone]) == clustered
    assert choose_signal([alone]) == alone
