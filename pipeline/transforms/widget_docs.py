"""Per-product widget documents: what a storefront review widget shows for one product.

    (published: PCollection[Published], products: PCollection[ProductDoc])
      → BuildWidgetDocs → PCollection[dict]  (one per product, ``schemas/widget.schema.json``)
      → WriteWidgetDocs → PREFIX/widget/<file name>.json, then PREFIX/run_index.json (signed: every
        product's manifest signature, the run id, when it was signed), written after the documents

The documents' content (display fields, aggregate, JSON-LD, file names) is built by the pure
functions of ``pipeline/display.py``; this module groups and writes them, in batch
(:class:`WriteWidgetDocs`) and streaming (:class:`StreamingWidgetDocs`).
"""
from __future__ import annotations


import contextlib
import hashlib
import time
import uuid
from typing import Optional

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.transforms import window
from apache_beam.transforms.userstate import BagStateSpec, ReadModifyWriteStateSpec
from apache_beam.utils.windowed_value import WindowedValue

from pipeline import signing
from pipeline.files import base_name, read_json_lines
from pipeline.display import (WIDGET_DIR, as_dict, build_widget_doc, build_widget_doc_within, doc_file_name,
                              most_recent_first, safe_json)
from pipeline.transforms.common import KEYED, stage_failed
from schemas.records import Packer


class _WidgetDocFn(beam.DoFn):
    """(product id, grouped records) → the product's document with its signed manifest."""

    def __init__(self, signing_key_file: Optional[str], require_signing_key: bool,
                 key: Optional[signing.SigningKey] = None, packer: Packer = Packer()):
        self._key_file = signing_key_file
        self._require = require_signing_key
        self._key = key
        self._packer = packer
        self._docs = Metrics.counter("widget", "documents")

    def setup(self):
        if self._key is None:
            self._key = signing.load_signing_key(self._key_file, self._require)

    def process(self, kv):
        product_id, grouped = kv
        products_of = list(grouped["product"])
        self._docs.inc()
        published = [self._packer.unpack(data) for data in grouped["published"]]
        yield build_widget_doc(product_id, published, products_of[0] if products_of else None, self._key)


_DISPLAY_FIELDS = ("review_id", "rating", "title", "body", "language", "created_at", "labels", "signature")
_PROVENANCE_FIELDS = ("run_id", "policy", "detectors")


def widget_fields(record):
    """(product id, what a widget document reads of a published record): the display fields, the
    signature, and of the provenance only run, policy and detectors. The whole record (provenance
    is most of it) grouped by product was the largest thing a batch run held in memory."""
    r = as_dict(record)
    provenance = r.get("provenance") or {}
    return r["product_id"], {**{k: r.get(k) for k in _DISPLAY_FIELDS},
                             "provenance": {k: provenance.get(k) for k in _PROVENANCE_FIELDS if k in provenance}}


# What the packing dictionary is made of (schemas.records.Packer): the keys and the repeated provenance
# of a published record's widget fields; it changes sizes, never values.
_SAMPLE = {**{k: None for k in _DISPLAY_FIELDS}, "rating": 5, "language": "en", "created_at": "2026-01-01T00:00:00Z",
           "labels": [], "signature": "0" * 64,
           "provenance": {"run_id": "run-20260101T000000Z-000000",
                          "policy": {"id": "review-integrity-default", "version": "1.2.0"},
                          "detectors": [{"id": d, "version": None, "status": s} for d, s in (
                              ("author_velocity", "scored"), ("coordinated_group", "scored"),
                              ("fake_classifier", "not_applicable"), ("near_duplicate", "scored"),
                              ("product_burst", "scored"))]}}


class BuildWidgetDocs(beam.PTransform):
    """(published, products) → PCollection[dict], one widget document per product, each with the
    product's manifest signed by the key that signs the published reviews."""

    def __init__(self, signing_key_file: Optional[str] = None, require_signing_key: bool = False,
                 key: Optional[signing.SigningKey] = None):
        super().__init__()
        self._key_file = signing_key_file
        self._require = require_signing_key
        self._key = key   # given directly (tests, tools); else loaded on the worker like AttachProvenance's

    def expand(self, pcolls):
        published, products = pcolls

        packer = Packer([_SAMPLE])  # grouped values packed: one bytes object each where the DirectRunner holds them

        def keyed_fields(record):
            product_id, fields = widget_fields(record)
            return product_id, packer.pack(fields)

        keyed_published = published | "KeyPublished" >> beam.Map(keyed_fields)
        keyed_products = products | "KeyProducts" >> beam.Map(lambda r: (as_dict(r)["product_id"], as_dict(r)))
        return ({"published": keyed_published, "product": keyed_products}
                | "GroupByProduct" >> beam.CoGroupByKey()
                | "ToWidgetDoc" >> beam.ParDo(_WidgetDocFn(self._key_file, self._require, self._key, packer)))


class _WriteDocFn(beam.DoFn):
    """One document → ``<dir>/<doc_file_name(product_id)>``, written under a temp name and renamed.

    One file per product, written directly: Beam's ``fileio.WriteToFiles`` with one destination per
    product listed its temp directory again for every destination, which made writing quadratic in
    the number of products (30% of a 160,000-review run's CPU in ``match_files``). The name depends
    only on the product id, so a retried bundle rewrites the same file."""

    def __init__(self, directory: str):
        self._dir = directory
        self._files = Metrics.counter("widget", "files_written")

    def process(self, doc):
        _write_replacing(self._dir, doc_file_name(doc["product_id"]), safe_json(doc))
        self._files.inc()
        yield doc["product_id"], (doc.get("manifest") or {}).get("signature"), doc.get("run_id")


def _write_replacing(directory: str, name: str, text: str) -> str:
    """``text`` → ``directory/name``, written under a temp name and renamed (a retry replaces it)."""
    final = FileSystems.join(directory, name)
    temp = FileSystems.join(directory, f".tmp-{uuid.uuid4().hex}-{name}.part")   # never matches *.json
    with FileSystems.create(temp, mime_type="application/json") as handle:
        handle.write(text.encode("utf-8") + b"\n")
    try:
        FileSystems.rename([temp], [final])
    except Exception:  # noqa: BLE001 -- a retry left the final file: replace it
        FileSystems.delete([final])
        FileSystems.rename([temp], [final])
    return final


class _WriteRunIndexFn(beam.DoFn):
    """Every written document's (product id, manifest signature, run id) → ``PREFIX/run_index.json``,
    signed (:func:`pipeline.signing.sign_run_index`). It runs once the documents are written, so an
    index never lists a document that is not there yet."""

    def __init__(self, output: str, run_id: Optional[str], signing_key_file: Optional[str],
                 require_signing_key: bool, key: Optional[signing.SigningKey]):
        self._output, self._run_id = output, run_id
        self._key_file, self._require, self._key = signing_key_file, require_signing_key, key

    def setup(self):
        if self._key is None:
            self._key = signing.load_signing_key(self._key_file, self._require)

    def process(self, written):
        run_ids = sorted({run_id for _, _, run_id in written if run_id})
        run_id = self._run_id or (run_ids[0] if run_ids else None)
        if any(r != run_id for r in run_ids):
            raise ValueError(f"widget documents of several runs in one output: {run_ids[:5]}")
        index = signing.sign_run_index(run_id, {pid: sig for pid, sig, _ in written if sig}, self._key)
        yield _write_replacing(self._output, signing.RUN_INDEX_FILE, safe_json(index))


class WriteWidgetDocs(beam.PTransform):
    """(published, products) → ``PREFIX/widget/<doc_file_name(product_id)>``, then the signed
    ``PREFIX/run_index.json`` listing them; returns the documents."""

    def __init__(self, output: str, signing_key_file: Optional[str] = None, require_signing_key: bool = False,
                 key: Optional[signing.SigningKey] = None, run_id: Optional[str] = None):
        super().__init__()
        self._key_file = signing_key_file
        self._require = require_signing_key
        self._key = key
        self._run_id = run_id
        self._output = output.rstrip("/")
        self._dir = FileSystems.join(self._output, WIDGET_DIR)

    def expand(self, pcolls):
        docs = pcolls | "BuildWidgetDocs" >> BuildWidgetDocs(self._key_file, self._require, self._key)
        (docs
         | "WriteWidgetFiles" >> beam.ParDo(_WriteDocFn(self._dir))
         | "AllWritten" >> beam.combiners.ToList()
         | "WriteRunIndex" >> beam.ParDo(_WriteRunIndexFn(self._output, self._run_id, self._key_file,
                                                          self._require, self._key)))
        return docs


# -- streaming ----------------------------------------------------------------------------------

class WidgetDocFn(beam.DoFn):
    """Keyed by product_id: the product's widget document (the same builder as batch), kept current
    with every published review and every product update, emitted once per product per bundle.

    State per product: the latest product aggregate and its ``MAX_REVIEWS`` most recent published
    records (a widget pages through recent reviews; the aggregate counts all of them). A document is
    one Pub/Sub message: it carries only as many of them as fit in ``MAX_BYTES`` of JSON (real
    Pub/Sub refuses messages over 10 MB; 200 reviews of 20,000 emoji would be 16 MB).

    A document carries up to 200 reviews (~85 KB of JSON): building, encoding and publishing one
    after each of a product's events cost ~5 ms a time, twice per published review (its record, then
    its product update). Within a bundle only the last state of each product is built and emitted
    (``finish_bundle``), at the time of the product's latest event in the bundle: a widget cache
    still ends on the product's current document, one bundle behind at most.

    Each document carries a signed streaming manifest (:func:`pipeline.signing.sign_stream_manifest`):
    the digest of *every* review published for the product so far (state ``REVIEWS``: count, the
    2,048-bit sum, and the update sequence), not only of the 200 it carries, so the numbers it shows
    can be checked against the published records (``python -m pipeline.verify``)."""

    PUBLISHED = BagStateSpec("published", PickleCoder())
    PRODUCT = ReadModifyWriteStateSpec("product", PickleCoder())
    REVIEWS = ReadModifyWriteStateSpec("reviews_digest", PickleCoder())
    MAX_REVIEWS = 200
    MAX_BYTES = 1 << 20

    def __init__(self, signing_key_file: Optional[str] = None, require_signing_key: bool = False,
                 key: Optional[signing.SigningKey] = None):
        self._key_file, self._require, self._key = signing_key_file, require_signing_key, key
        self._docs = Metrics.counter("widget", "stream_documents")
        self._trimmed = Metrics.counter("widget", "stream_documents_trimmed_to_byte_budget")
        self._coalesced = Metrics.counter("widget", "stream_updates_coalesced")

    def setup(self):
        if self._key is None:
            self._key = signing.load_signing_key(self._key_file, self._require)

    def start_bundle(self):
        self._latest = {}

    def process(self, keyed, ts=beam.DoFn.TimestampParam, win=beam.DoFn.WindowParam,
                published=beam.DoFn.StateParam(PUBLISHED), product=beam.DoFn.StateParam(PRODUCT),
                reviews=beam.DoFn.StateParam(REVIEWS)):
        product_id, (kind, record) = keyed
        try:
            self._update(product_id, kind, as_dict(record), ts, win, published, product, reviews)
        except Exception as exn:  # noqa: BLE001 - decisions are already out; one update is not
            stage_failed("widget_documents", exn, product_id)

    def _update(self, product_id, kind, record, ts, win, published, product, reviews):
        count, total, sequence = reviews.read() or (0, 0, 0)
        digest = signing.ReviewSetDigest(count, total)
        if kind == "published":
            digest.add(record)   # every published review, also those the 200 below push out
        sequence += 1
        reviews.write((digest.count, digest.total, sequence))
        if kind == "product":
            product.write(record)
            current = list(published.read())
        else:
            current = [r for r in published.read() if r["review_id"] != record["review_id"]] + [record]
            if len(current) > self.MAX_REVIEWS:
                recent = {r["review_id"] for r in most_recent_first(current)[:self.MAX_REVIEWS]}
                current = [r for r in current if r["review_id"] in recent]
                published.clear()
                for r in current:
                    published.add(r)
            else:
                published.add(record)
        latest_product = product.read()
        if not current and latest_product is None:
            return
        earlier = self._latest.get((product_id, win))
        if earlier is not None:
            self._coalesced.inc()
            ts = max(ts, earlier[2])
        self._latest[(product_id, win)] = (current, latest_product, ts, digest, sequence)

    def finish_bundle(self):
        latest, self._latest = self._latest, {}
        for (product_id, win), (current, latest_product, ts, digest, sequence) in latest.items():
            try:
                doc = build_widget_doc_within(product_id, current, latest_product, self.MAX_BYTES)
                doc["manifest"] = signing.sign_stream_manifest(
                    product_id, doc["run_id"], sequence, digest, doc["reviews"], doc["aggregate"], doc["withheld"],
                    doc["moderation"], self._key)
            except Exception as exn:  # noqa: BLE001 - one product's document, not the others'
                stage_failed("widget_documents", exn, product_id)
                continue
            self._docs.inc()
            if len(doc["reviews"]) < len(current):
                self._trimmed.inc()
            yield WindowedValue(doc, ts, [win])


class StreamingWidgetDocs(beam.PTransform):
    """(published records, product documents) → widget documents, kept current per product (the
    latest per product and bundle), each with its signed streaming manifest."""

    def __init__(self, signing_key_file: Optional[str] = None, require_signing_key: bool = False,
                 key: Optional[signing.SigningKey] = None):
        super().__init__()
        self._key_file, self._require, self._key = signing_key_file, require_signing_key, key

    def expand(self, pcolls):
        published, products = pcolls
        return ((published | "KeyPublished" >> beam.Map(lambda r: (as_dict(r)["product_id"], ("published", r))).with_output_types(KEYED),
                 products | "KeyProducts" >> beam.Map(lambda r: (r.product_id, ("product", r))).with_output_types(KEYED))
                | "Both" >> beam.Flatten()
                | "CurrentDoc" >> beam.ParDo(WidgetDocFn(self._key_file, self._require, self._key)))


class ChainStreamIndexFn(beam.DoFn):
    """Keyed by one constant: each windowed ``widget_updates/`` file the streaming job wrote → the next
    link of its signed, chained index (:func:`pipeline.signing.sign_stream_index_entry`), written to
    ``PREFIX/widget_index/<run tag>-<sequence>.json``. The file is read back, so a link lists what the
    file holds (a read that fails ``READ_ATTEMPTS`` times signs a link saying so, listing nothing,
    which verification reports). One key: the links are numbered one after another; a retried bundle
    rewrites its link under the same name (the state moves on only when the bundle commits). The
    first link of a launch names a new chain and the newest link of every chain already in the
    prefix (an earlier job's), so that job's end cannot be cut once this one has started."""

    LAST = ReadModifyWriteStateSpec("last_link", PickleCoder())
    READ_ATTEMPTS = 3

    def __init__(self, output: str, run_id: Optional[str], signing_key_file: Optional[str] = None,
                 require_signing_key: bool = False, key: Optional[signing.SigningKey] = None):
        self._dir = FileSystems.join(output.rstrip("/"), signing.STREAM_INDEX_DIR)
        self._run_id = run_id
        # links are named by run (a later job writing to the same prefix starts a chain of its own)
        self._run_tag = hashlib.sha256(str(run_id).encode("utf-8")).hexdigest()[:12]
        self._key_file, self._require, self._key = signing_key_file, require_signing_key, key
        self._links = Metrics.counter("widget", "stream_index_links")
        self._unreadable = Metrics.counter("widget", "stream_index_unreadable_files")

    def setup(self):
        if self._key is None:
            self._key = signing.load_signing_key(self._key_file, self._require)

    def _documents(self, path: str):
        """The (product id, sequence, manifest signature) of each document in ``path``, or None when
        the file cannot be read whole after ``READ_ATTEMPTS`` tries."""
        for attempt in range(self.READ_ATTEMPTS):
            errors = []
            documents = [(d["product_id"], d["manifest"]["sequence"], d["manifest"]["signature"])
                         for d in read_json_lines(path, on_error=lambda *a: errors.append(a))
                         if isinstance(d.get("manifest"), dict) and "signature" in d["manifest"]]
            if not errors:
                return documents
            time.sleep(0.5 * (attempt + 1))
        return None

    def _chains_before(self):
        """[chain, run id, sequence, signature] of the newest signed link of each chain in the prefix."""
        newest = {}
        with contextlib.suppress(Exception):   # none yet, or unreadable: nothing to bind
            for record in read_json_lines(FileSystems.join(self._dir, "*.json"), on_error=lambda *a: None):
                if signing.verify_stream_index_entry(record, self._key):
                    held = newest.get(record.get("chain"))
                    if held is None or record["sequence"] > held[2]:
                        newest[record.get("chain")] = [record.get("chain"), record["run_id"], record["sequence"],
                                                       record["signature"]]
        return list(newest.values())

    def process(self, keyed, last=beam.DoFn.StateParam(LAST)):
        _, path = keyed
        try:
            documents = self._documents(path)
            state = last.read()
            if state is None:   # this launch's first link: a new chain, after every chain already there
                sequence, previous, chain, after = 0, None, uuid.uuid4().hex[:16], self._chains_before()
            else:
                (sequence, previous, chain), after = state, ()
            name = base_name(path)
            entry = signing.sign_stream_index_entry(self._run_id, sequence + 1, previous, name, documents or (),
                                                    self._key, chain=chain, after=after,
                                                    unreadable=documents is None)
            written = _write_replacing(self._dir, f"{self._run_tag}-{sequence + 1:012d}.json", safe_json(entry))
        except Exception as exn:  # noqa: BLE001 - the documents are out; verification reports the unlisted file
            stage_failed("widget_index", exn, path)
            return
        if documents is None:
            self._unreadable.inc()
        last.write((sequence + 1, entry["signature"], chain))
        self._links.inc()
        yield written


class StreamingWidgetIndex(beam.PTransform):
    """The windowed files the streaming job wrote → the signed chain of its widget-document files
    (``PREFIX/widget_index/``), one link per ``widget_updates/`` file; returns the links' paths."""

    def __init__(self, output: str, run_id: Optional[str], signing_key_file: Optional[str] = None,
                 require_signing_key: bool = False, key: Optional[signing.SigningKey] = None):
        super().__init__()
        self._fn = ChainStreamIndexFn(output, run_id, signing_key_file, require_signing_key, key)

    def expand(self, written_files):
        folder = f"/{signing.STREAM_DOCS_DIR}/"
        return (written_files
                | "WidgetFiles" >> beam.Filter(lambda path: folder in path.replace("\\", "/"))
                | "Global" >> beam.WindowInto(window.GlobalWindows())
                | "OneKey" >> beam.Map(lambda path: ("widget_index", path)).with_output_types(KEYED)
                | "Chain" >> beam.ParDo(self._fn))
