"""Streaming widget documents carry a signed streaming manifest (pipeline/signing.py
``sign_stream_manifest``): every review published for the product so far (an order-free 2,048-bit
digest, not only the 200 the document carries), the numbers it shows, and a sequence; and
``python -m pipeline.verify`` checks each product's newest document against the published records a
streaming job wrote, so a complaint deleted from ``published/``, a forged number or an older document
put in place of the newest is reported (principle 3: every served number is verifiable)."""
from __future__ import annotations

import json
import random
import threading

import apache_beam as beam
import pytest
from apache_beam.testing.test_stream import TestStream
from apache_beam.transforms.window import TimestampedValue

from pipeline import signing, verify
from pipeline.transforms.widget_docs import StreamingWidgetDocs, WidgetDocFn
from schemas.records import ProductDoc
from tests.test_stream import T0, iso, streaming_pipeline
from tests.test_widget_docs import TEST_KEY, assert_valid_doc, make_product, make_published

pytestmark = pytest.mark.slow


def test_the_review_set_digest_is_order_free_and_moves_with_any_change():
    records = [make_published(f"r{i}", "p", 1 + i % 5, iso(T0 + i)) for i in range(50)]
    digest = signing.ReviewSetDigest.of(records)
    shuffled = records[:]
    random.Random(1).shuffle(shuffled)
    assert signing.ReviewSetDigest.of(shuffled).hex() == digest.hex() and digest.count == 50
    assert len(digest.hex()) == 512
    grown = signing.ReviewSetDigest(digest.count, digest.total).add(make_published("r50", "p", 1, iso(T0)))
    assert grown.count == 51 and grown.hex() != digest.hex()
    without_one = signing.ReviewSetDigest.of(records[1:])
    assert without_one.hex() != digest.hex()
    altered = dict(records[0], signature="0" * 64)
    assert signing.ReviewSetDigest.of([altered] + records[1:]).hex() != digest.hex()
    # a multiset: the same review twice is not the same as once
    assert signing.ReviewSetDigest.of(records + records[:1]).hex() != digest.hex()


_COLLECTED, _LOCK = [], threading.Lock()


def _collect(doc):
    with _LOCK:
        _COLLECTED.append(json.loads(json.dumps(doc)))


def stream_docs(published, products, batches=1):
    """Runs StreamingWidgetDocs over ``published`` (one second apart, in ``batches`` bundles) then the
    ``products`` records, and returns every document it emitted, in emission order."""
    _COLLECTED.clear()
    stream = TestStream()
    size = -(-len(published) // batches)
    for start in range(0, len(published), size):
        stream = (stream.add_elements([TimestampedValue(("published", r), T0 + start + i)
                                       for i, r in enumerate(published[start:start + size])])
                  .advance_watermark_to(T0 + start + size))
    stream = (stream.add_elements([TimestampedValue(("product", ProductDoc(**p)), T0 + len(published)) for p in products])
              .advance_watermark_to_infinity())
    p = streaming_pipeline()
    both = p | stream
    records = both | "Records" >> beam.FlatMap(lambda kv: [kv[1]] if kv[0] == "published" else [])
    product_docs = both | "Products" >> beam.FlatMap(lambda kv: [kv[1]] if kv[0] == "product" else [])
    docs = (records, product_docs) | StreamingWidgetDocs(key=TEST_KEY)
    docs | beam.Map(_collect)
    p.run().wait_until_finish()
    return list(_COLLECTED)


def newest_by_product(docs):
    newest = {}
    for doc in docs:
        held = newest.get(doc["product_id"])
        if held is None or doc["manifest"]["sequence"] > held["manifest"]["sequence"]:
            newest[doc["product_id"]] = doc
    return newest


def test_every_streaming_document_is_signed_and_vouches_for_every_review_not_only_those_it_carries():
    big = [make_published(f"big-{i:03d}", "big", 1 + i % 5, iso(T0 + i)) for i in range(WidgetDocFn.MAX_REVIEWS + 30)]
    small = [make_published(f"small-{i}", "small", 1 + i % 2, iso(T0 + i)) for i in range(3)]
    docs = stream_docs(big + small, [make_product("big", big), make_product("small", small)])
    assert docs
    for doc in docs:
        assert_valid_doc(doc)
        assert signing.verify_stream_manifest(doc["manifest"], TEST_KEY)
        assert not signing.verify_manifest(doc["manifest"], TEST_KEY)   # never mistaken for a batch manifest
    newest = newest_by_product(docs)
    for product_id, records in (("big", big), ("small", small)):
        manifest = newest[product_id]["manifest"]
        digest = signing.ReviewSetDigest.of(records)
        assert manifest["review_count"] == len(records) and manifest["reviews_sum"] == digest.hex()
        assert manifest["aggregate"] == newest[product_id]["aggregate"]
        assert manifest["aggregate"]["review_count"] == len(records)
    # the big product's document carries the newest 200 and still vouches for all 230
    assert len(newest["big"]["reviews"]) == WidgetDocFn.MAX_REVIEWS
    assert newest["big"]["manifest"]["carried_sha256"] == signing.reviews_digest(newest["big"]["reviews"])
    sequences = [d["manifest"]["sequence"] for d in docs if d["product_id"] == "big"]
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)
    # a number edited in the signed manifest breaks its signature
    forged = json.loads(json.dumps(newest["big"]["manifest"]))
    forged["aggregate"]["average_rating"] = 4.9
    assert not signing.verify_stream_manifest(forged, TEST_KEY)


def write_stream_output(prefix, published, docs, links=True):
    """The folders of a streaming job's windowed files that verification reads: published records and
    widget documents in two window files each (newest rows in the first: order must not matter), and,
    with ``links``, the signed index chaining the two document files (as ChainStreamIndexFn writes it)."""
    names = {}
    for name, rows in (("published", published), ("widget_updates", docs)):
        (prefix / name).mkdir(parents=True, exist_ok=True)
        half = len(rows) // 2
        for part, chunk in (("part-b.jsonl", rows[:half]), ("part-a.jsonl", rows[half:])):
            (prefix / name / part).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in chunk),
                                              encoding="utf-8")
            names.setdefault(name, []).append((part, chunk))
    if links:
        (prefix / signing.STREAM_INDEX_DIR).mkdir(exist_ok=True)
        previous = None
        for n, (part, chunk) in enumerate(names["widget_updates"], 1):
            link = signing.sign_stream_index_entry("widget-test", n, previous, part, [
                (d["product_id"], d["manifest"]["sequence"], d["manifest"]["signature"]) for d in chunk], TEST_KEY)
            (prefix / signing.STREAM_INDEX_DIR / f"{n:012d}.json").write_text(json.dumps(link))
            previous = link["signature"]


def remove_docs(prefix, keep):
    """Rewrites the widget_updates files keeping only the documents ``keep(doc)`` accepts (the
    signed index left as it was)."""
    for path in (prefix / "widget_updates").glob("*.jsonl"):
        docs = [json.loads(x) for x in path.read_text().splitlines()]
        path.write_text("".join(json.dumps(d) + "\n" for d in docs if keep(d)))


def verified_report(prefix, capsys):
    code = verify.main([str(prefix)])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("attack", ["none", "delete_complaint", "older_document", "edited_number",
                                    "another_runs_record", "forged_document", "rolled_back", "no_index",
                                    "link_removed"])
def test_pipeline_verify_checks_the_newest_streaming_document_against_the_published_records(
        tmp_path, keyed, capsys, attack):
    records = [make_published(f"r{i:02d}", "p", 5 if i % 3 else 1, iso(T0 + i),
                              body="Broke in a week." if i % 3 == 0 else "Great.") for i in range(12)]
    other = [make_published("o1", "q", 4, iso(T0))]
    docs = stream_docs(other + records, [make_product("p", records), make_product("q", other)], batches=2)
    newest = newest_by_product(docs)
    assert {d["manifest"]["review_count"] for d in docs if d["product_id"] == "p"} == {6, 12}
    published = records + other
    if attack == "delete_complaint":
        published = [r for r in published if r["review_id"] != "r03"]          # a 1-star review removed
    elif attack == "older_document":
        docs = [d for d in docs if d["product_id"] != "p" or d["manifest"]["review_count"] < 12]   # a stale one left
    elif attack == "edited_number":
        newest["p"]["aggregate"]["average_rating"] = 4.9                       # the document, not the manifest
    elif attack == "another_runs_record":
        published = published + [make_published("r99", "p", 5, iso(T0 + 99), run_id="another-run")]
    elif attack == "forged_document":
        fake = json.loads(json.dumps(newest["p"]))
        fake["manifest"]["sequence"] += 1000
        fake["manifest"]["review_count"] = 11
        docs = docs + [fake]
    if attack == "rolled_back":
        # the product as it stood before its last six reviews: those records and every later document
        # of it removed, consistently (what a manifest alone cannot catch; the signed index does)
        published = [r for r in published if r["review_id"] < "r06" or r["product_id"] != "p"]
    write_stream_output(tmp_path, published, docs, links=attack != "no_index")
    if attack == "rolled_back":
        remove_docs(tmp_path, lambda d: d["product_id"] != "p" or d["manifest"]["review_count"] <= 6)
    elif attack == "link_removed":
        (tmp_path / signing.STREAM_INDEX_DIR / f"{1:012d}.json").unlink()
    code, report = verified_report(tmp_path, capsys)
    stream = report["stream_manifests"]
    if attack in ("no_index", "link_removed"):   # nothing binds the documents: every product reported
        assert code == 1 and any(m["product_id"] is None for m in stream["mismatched"]), stream
        return
    assert "manifests" not in report and stream["products"] >= 2
    if attack == "none":
        assert code == 0 and stream["valid"] == 2 and stream["mismatched"] == [], report
        return
    assert code == 1, report
    assert {m["product_id"] for m in stream["mismatched"]} == {"p"}, stream
    assert stream["valid"] >= 1   # the other product is still vouched for


def test_a_batch_output_is_still_checked_the_batch_way(tmp_path, keyed, capsys):
    """A prefix with a run index is a batch run: its widget/ manifests, never the streaming check."""
    from tests.test_widget_docs import write_run
    records = [make_published("r1", "p", 1, iso(T0))]
    write_run(tmp_path, records, [make_product("p", records)])
    code, report = verified_report(tmp_path, capsys)
    assert code == 0 and "manifests" in report and "stream_manifests" not in report, report


@pytest.mark.parametrize("attack", ["none", "delete_complaint", "older_document", "forged_document"])
def test_the_widget_server_serves_a_streaming_output_only_as_its_signed_manifests_vouch(tmp_path, attack):
    """widget.serve on a streaming job's output: each product's newest signed document must vouch for
    exactly its verified records, else 409 for that product only; what is served is recomputed from
    the records (all of them, not only the 200 a document carries)."""
    from widget.serve import load_stream_catalog
    from tests.test_widget_docs import assert_valid_doc as valid
    records = [make_published(f"r{i:02d}", "p", 5 if i % 3 else 1, iso(T0 + i)) for i in range(12)]
    other = [make_published("o1", "q", 4, iso(T0))]
    docs = stream_docs(other + records, [make_product("p", records), make_product("q", other)], batches=2)
    published = records + other
    if attack == "delete_complaint":
        published = [r for r in published if r["review_id"] != "r03"]
    elif attack == "older_document":
        docs = [d for d in docs if d["product_id"] != "p" or d["manifest"]["review_count"] < 12]
    elif attack == "forged_document":
        fake = json.loads(json.dumps(newest_by_product(docs)["p"]))
        fake["manifest"]["sequence"] += 1000
        docs = docs + [fake]
    write_stream_output(tmp_path, published, docs)
    catalog = load_stream_catalog(str(tmp_path), {TEST_KEY.key_id: TEST_KEY.secret})
    assert "q" in catalog.docs and catalog.docs["q"]["aggregate"]["review_count"] == 1
    if attack != "none":
        assert "p" not in catalog.docs and "p" in catalog.unavailable, catalog.unavailable
        return
    served = catalog.docs["p"]
    valid(served)
    assert served["aggregate"]["review_count"] == 12 and served["aggregate"]["rating_histogram"]["1"] == 4
    assert served["verification"]["sequence"] == newest_by_product(docs)["p"]["manifest"]["sequence"]
    assert catalog.unavailable == {}


def test_widget_serve_main_serves_a_streaming_output_over_http(tmp_path, keyed):
    import subprocess
    import sys
    import urllib.request
    records = [make_published(f"r{i}", "p", 1 + i % 5, iso(T0 + i)) for i in range(3)]
    write_stream_output(tmp_path, records, stream_docs(records, [make_product("p", records)]))
    proc = subprocess.Popen([sys.executable, "-m", "widget.serve", "--output", str(tmp_path), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert first.startswith("serving http://"), (first, proc.stderr.read() if proc.poll() is not None else "")
        with urllib.request.urlopen(first.split()[1] + "api/reviews?product_id=p", timeout=10) as resp:
            doc = json.loads(resp.read())
        assert [r["review_id"] for r in doc["reviews"]] == ["r2", "r1", "r0"] and doc["aggregate"]["review_count"] == 3
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_job_chains_a_signed_index_link_for_every_widget_file_it_wrote(tmp_path, keyed, capsys):
    """StreamingWidgetIndex (the streaming job's last step): each widget_updates file written → a link
    numbered in order, naming the link before and listing the file's documents as read back; other
    folders' files are not indexed. pipeline.verify then passes on the output as written."""
    from pipeline.transforms.widget_docs import StreamingWidgetIndex
    records = [make_published(f"r{i}", "p", 1 + i % 5, iso(T0 + i)) for i in range(6)]
    docs = stream_docs(records, [make_product("p", records)], batches=3)
    write_stream_output(tmp_path, records, docs, links=False)
    paths = sorted(str(x) for x in (tmp_path / "widget_updates").glob("*.jsonl"))
    stream = (TestStream()
              .add_elements([TimestampedValue(paths[0], T0), TimestampedValue(str(tmp_path / "published" / "part-a.jsonl"), T0)])
              .advance_watermark_to(T0 + 60)
              .add_elements([TimestampedValue(paths[1], T0 + 60)])
              .advance_watermark_to_infinity())
    p = streaming_pipeline()
    p | stream | StreamingWidgetIndex(str(tmp_path), "widget-test", key=TEST_KEY)
    p.run().wait_until_finish()
    links = [json.loads(x.read_text()) for x in sorted((tmp_path / signing.STREAM_INDEX_DIR).glob("*.json"))]
    assert [link["sequence"] for link in links] == [1, 2]
    assert links[0]["previous"] is None and links[1]["previous"] == links[0]["signature"]
    assert all(signing.verify_stream_index_entry(link, TEST_KEY) for link in links)
    assert [link["file"] for link in links] == [x.rsplit("/", 1)[-1] for x in paths]
    assert sum(len(link["documents"]) for link in links) == len(docs)
    code, report = verified_report(tmp_path, capsys)
    assert code == 0 and report["stream_manifests"]["valid"] == 1, report


def test_the_widget_server_reads_a_growing_streaming_output_again(tmp_path):
    """``widget.serve --reload-s``: a streaming output keeps growing; the server reads and verifies it
    again and serves the newer state (a catalog swapped whole)."""
    import time

    from widget.serve import ReloadingCatalog, load_stream_catalog
    records = [make_published(f"r{i}", "p", 5, iso(T0 + i)) for i in range(3)]
    write_stream_output(tmp_path, records, stream_docs(records, [make_product("p", records)]))
    catalog = ReloadingCatalog(lambda: load_stream_catalog(str(tmp_path), {TEST_KEY.key_id: TEST_KEY.secret}), 0.2)
    assert catalog.docs["p"]["aggregate"]["review_count"] == 3
    more = records + [make_published("r3", "p", 1, iso(T0 + 3), body="Stopped working.")]
    write_stream_output(tmp_path, more, stream_docs(more, [make_product("p", more)]))   # the job moved on
    deadline = time.time() + 10
    while catalog.docs.get("p", {}).get("aggregate", {}).get("review_count") != 4 and time.time() < deadline:
        time.sleep(0.1)
    assert catalog.docs["p"]["aggregate"]["rating_histogram"]["1"] == 1
