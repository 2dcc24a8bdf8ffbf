"""Serves a run's widget documents and the example storefront page, verifying every review first.

    python -m widget.serve --output PREFIX [--port 8000] [--host 127.0.0.1]
                           [--key-file F | $REVIEW_SIGNING_KEY] [--allow-demo-key] [--locale ja]
                           [--max-age-hours 48] [--state-file F] [--reload-s N]

``PREFIX`` is a pipeline output prefix (a directory or ``gs://`` prefix, read through Beam's
FileSystems). At start-up the server

1. reads ``PREFIX/published/*.jsonl`` and checks each record's HMAC signature with
   :func:`pipeline.signing.verify_published` and the keys it holds (``--key-file`` or
   ``$REVIEW_SIGNING_KEY``; the demo key only with ``--allow-demo-key``). Records that fail are
   logged (review id, product id) and dropped;
2. reads ``PREFIX/widget/*.json`` for each product's manifest, signed by the pipeline
   (:func:`pipeline.signing.sign_manifest`: review count, a hash of the review ids and signatures,
   withheld counts by reason, moderation). A product is served only when its manifest verifies and
   its verified published records are exactly the ones it lists; otherwise ``/api/reviews`` answers
   **409** with a JSON reason, the widget says reviews are unavailable, and the server logs it (a
   deleted, altered or added review, a forged manifest or none at all). Everything served is
   recomputed from the verified records (reviews, aggregate, histogram, JSON-LD) or taken from the
   signed manifest (withheld counts, moderation): nothing in the widget file is trusted. Each
   served document gets ``verification`` (``checked`` widget entries, ``verified`` records,
   ``not_verified`` entries ignored, and the run's ``signed_at``);
3. reads the run's signed index (``PREFIX/run_index.json``, :func:`pipeline.signing.sign_run_index`)
   and serves a product only when its manifest is the one the index lists, of the index's run: a
   product's files copied from another run (an older one, before honest negative reviews arrived)
   answer 409, and so does every product the index lists whose document is missing. Without a valid
   index nothing is served as verified; with ``--max-age-hours`` (48 by default, 0: off) neither is a
   run signed longer ago than that (a whole older run put in place of the current one). With
   ``--state-file F`` the server records the newest run it has served and refuses an older one
   after a restart, whatever its age.

A malformed line in ``published/`` or a malformed widget file is reported and skipped; every other
product is served.

A streaming job's output (``widget_updates/`` windowed files, no run index) is served the streaming
way (:func:`load_stream_catalog`): of each product, the newest document by signed ``sequence`` must
carry a streaming manifest (:func:`pipeline.signing.sign_stream_manifest`) that vouches for exactly
the product's verified published records (:func:`pipeline.verify.stream_doc_problem`), else 409; a
product with records or documents of several streaming runs is not served. The files are read at
start-up and, with ``--reload-s N``, read and verified again every N seconds (:class:`ReloadingCatalog`);
``--max-age-hours`` and ``--state-file`` do not apply.

The key never leaves this process: the browser gets only documents and static files.

Routes: ``/`` (→ ``/example.html``), ``/api/products``, ``/api/reviews?product_id=ID``,
``/healthz``, the files in ``widget/static/`` and the widget's message catalogues
``/i18n/<locale>.json`` (``widget/static/i18n/``). ``--locale`` sets ``data-locale`` on the example
page's widget element (without it the widget follows the page's ``<html lang>``, then the
browser's languages). The first line on stdout is ``serving http://HOST:PORT/`` (``--port 0``
picks a free port).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from dataclasses import dataclass, field
from http import HTTPStatus
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipeline import signing
from pipeline.files import read_json_lines
from pipeline import display
from pipeline.timestamps import parse_rfc3339

LOG = logging.getLogger("widget.serve")
STATIC_DIR = Path(__file__).resolve().parent / "static"
I18N_DIR = STATIC_DIR / "i18n"
LOCALES = ("en", "ja", "ko", "zh-Hans", "zh-Hant")   # one catalogue each in widget/static/i18n/
NOT_VERIFIED = "signature_not_verified"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".json": "application/json; charset=utf-8",
                 ".png": "image/png", ".svg": "image/svg+xml", ".ico": "image/x-icon"}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'")


@dataclass
class Catalog:
    """The verified, servable view of one run."""

    docs: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    unavailable: Dict[str, str] = field(default_factory=dict)   # product id → why it is not served (409)
    published_checked: int = 0
    published_invalid: List[Tuple[Optional[str], Optional[str]]] = field(default_factory=list)
    malformed: List[str] = field(default_factory=list)          # "path:line: message" of skipped input
    entries_dropped: int = 0
    run_id: Optional[str] = None                                # of the signed run index
    signed_at: Optional[str] = None

    def refuse(self, product_id: str, reason: str) -> None:
        """``product_id`` is not served (409): a second document of it does not bring it back."""
        self.unavailable.setdefault(product_id, reason)
        self.docs.pop(product_id, None)
        LOG.error("product NOT served as verified: product_id=%r: %s", product_id, reason)

    def product_list(self) -> List[Dict[str, Any]]:
        rows = [{"product_id": pid, "review_count": d["aggregate"]["review_count"],
                 "average_rating": d["aggregate"]["average_rating"], "withheld_count": d["withheld"]["count"]}
                for pid, d in self.docs.items()]
        return sorted(rows, key=lambda r: (-r["review_count"], r["product_id"]))


def newest_served(state_file: Optional[str]) -> Optional[dt.datetime]:
    """The ``signed_at`` of the newest run served before (``--state-file``, local or ``gs://``), or None."""
    if not state_file or not FileSystems.exists(state_file):
        return None
    with FileSystems.open(state_file, mime_type="application/json",
                          compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        return parse_rfc3339(json.loads(handle.read().decode("utf-8"))["newest_signed_at"])


def record_served(state_file: Optional[str], catalog: Catalog) -> None:
    """Remembers the run just loaded, if it is the newest served yet. A local file is written to a
    temporary name and renamed; a ``gs://`` object is replaced whole by one upload (a fleet of
    servers can share it: a server that restarts refuses what any of them has superseded)."""
    if not state_file or not catalog.signed_at:
        return
    before = newest_served(state_file)
    if before is None or parse_rfc3339(catalog.signed_at) > before:
        data = json.dumps({"newest_signed_at": catalog.signed_at, "run_id": catalog.run_id}).encode("utf-8")
        if "://" in state_file:
            with FileSystems.create(state_file, mime_type="application/json",
                                    compression_type=CompressionTypes.UNCOMPRESSED) as handle:
                handle.write(data)
            return
        path = Path(state_file)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)


def load_keys(key_file: Optional[str], allow_demo_key: bool) -> Dict[str, bytes]:
    """key id → secret: ``--key-file`` or ``$REVIEW_SIGNING_KEY``, plus the demo key if allowed.
    A key that is given but empty or short is an error (``signing.SigningKeyError``)."""
    keys: Dict[str, bytes] = {}
    key = signing.load_signing_key(key_file, require=False)
    if not key.is_demo:
        if allow_demo_key:   # anyone can sign with the public demo key: with a real key that is a hole
            raise ValueError("--allow-demo-key with a real key would also serve whatever the public demo key "
                             "signed: use one or the other")
        keys[key.key_id] = key.secret
    if allow_demo_key:
        keys[signing.DEMO_KEY_ID] = signing.DEMO_KEY
    return keys


def verify_doc(doc: Mapping[str, Any], records: List[Mapping[str, Any]],
               keys: Mapping[str, bytes]) -> Tuple[Optional[Dict[str, Any]], Optional[str], List[str]]:
    """(served document or None, why not, widget entries not bound to a verified record) for one product.

    Every number served is recomputed from ``records`` (the product's published records whose
    signatures verified) or taken from the product's signed manifest (withheld counts, moderation);
    nothing in the widget file itself is trusted. A product is not served when its manifest is
    missing or not signed by a known key, or its verified records differ from the manifest."""
    product_id = doc["product_id"]
    manifest = doc.get("manifest")
    if not signing.verify_manifest(manifest, keys):
        return None, "the product's manifest is missing or not signed by a known key", []
    if manifest["product_id"] != product_id:
        return None, f"the manifest is for product {manifest['product_id']!r}", []
    if manifest["review_count"] != len(records) or manifest["reviews_sha256"] != signing.reviews_digest(records):
        return None, (f"the published reviews do not match the signed manifest: it lists {manifest['review_count']} "
                      f"reviews, {len(records)} verified records were found (a review was deleted, altered or "
                      "added)"), []
    return served_doc(product_id, doc, records, manifest)


def served_doc(product_id: str, doc: Mapping[str, Any], records: List[Mapping[str, Any]],
               manifest: Mapping[str, Any]) -> Tuple[Dict[str, Any], None, List[str]]:
    """(what is served for a product whose records match its verified manifest, None, widget entries
    not bound to a verified record): recomputed from the records, withheld counts and moderation
    from the manifest."""
    reviews = display.most_recent_first(display.display_review(r) for r in records)
    # an entry counts only if it equals its own record (by id and signature: a review resent after the
    # redelivery retention is published twice under one id)
    by_key = {(r["review_id"], r["signature"]): r for r in reviews}
    entries = [e for e in (doc.get("reviews") or ()) if isinstance(e, dict)] if isinstance(doc.get("reviews"), list) else []
    dropped = [e.get("review_id") for e in entries if by_key.get((e.get("review_id"), e.get("signature"))) != e]
    served = {"doc_version": display.DOC_VERSION, "product_id": product_id,
              "run_id": manifest["run_id"], "aggregate": display.summarise_reviews(reviews),
              "withheld": manifest["withheld"], "moderation": manifest["moderation"], "reviews": reviews,
              "json_ld": display.build_json_ld(product_id, reviews),
              "verification": {"checked": len(entries), "verified": len(reviews), "not_verified": len(dropped)}}
    return served, None, dropped


def load_stream_catalog(prefix: str, keys: Mapping[str, bytes]) -> Catalog:
    """Reads and verifies a streaming job's output (``published/`` and ``widget_updates/`` windowed
    files), as it stands now: a product is served when its newest document (by signed ``sequence``)
    carries a streaming manifest that vouches for exactly its verified published records
    (:func:`pipeline.verify.stream_doc_problem`); a product with documents of several runs is not."""
    from pipeline import verify
    prefix = prefix.rstrip("/")
    catalog = Catalog()

    def malformed(path: str, line: int, message: str) -> None:
        catalog.malformed.append(f"{path}:{line}: {message}")
        LOG.error("malformed input skipped: %s line %d: %s", path, line, message)

    verified = _verified_records(prefix, keys, catalog, malformed)
    newest, problems, _, catalog.signed_at = verify.newest_stream_docs(prefix, keys, malformed)
    by_run = verify.records_by_run(verified)
    runs: Dict[str, set] = {}
    for product_id, run_id in set(newest) | set(by_run):
        runs.setdefault(product_id, set()).add(run_id)
    for product_id in sorted(runs, key=str):
        if len(runs[product_id]) > 1:
            catalog.refuse(product_id, f"records or documents of several streaming runs: {sorted(map(str, runs[product_id]))}")
            continue
        key = (product_id, next(iter(runs[product_id])))
        doc, records = newest.get(key), by_run.get(key, [])
        problem = verify.stream_doc_problem(doc, records)
        if problem:
            catalog.refuse(product_id, problem)
            continue
        served = served_doc(product_id, doc, records, doc["manifest"])[0]   # entries checked above
        served["verification"]["sequence"] = doc["manifest"]["sequence"]
        catalog.docs[product_id] = served
    for problem in problems:   # a forged, duplicated, unlisted or missing document: its product is not served
        if isinstance(problem["product_id"], str):
            catalog.refuse(problem["product_id"], problem["reason"])
    unbound = [p["reason"] for p in problems if p["product_id"] is None]
    if unbound:   # the signed index is missing or broken: nothing binds the products, none is served
        for product_id in list(catalog.docs):
            catalog.refuse(product_id, unbound[0])
    catalog.run_id = ",".join(sorted({str(r) for rs in runs.values() for r in rs})) or None
    LOG.info("loaded streaming output %s: %d products served, %d not served, %d published records checked, "
             "%d failed verification, %d malformed lines or files skipped", prefix, len(catalog.docs),
             len(catalog.unavailable), catalog.published_checked, len(catalog.published_invalid), len(catalog.malformed))
    return catalog


def _verified_records(prefix: str, keys: Mapping[str, bytes], catalog: Catalog, malformed) -> Dict[str, List[Dict[str, Any]]]:
    """product id → its published records under ``prefix`` whose signatures verify; the others are
    counted in ``catalog`` and logged."""
    verified: Dict[str, List[Dict[str, Any]]] = {}
    for record in read_json_lines(FileSystems.join(prefix, "published", "*.jsonl"), on_error=malformed):
        catalog.published_checked += 1
        if signing.verify_published(record, keys) and isinstance(record.get("product_id"), str):
            verified.setdefault(record["product_id"], []).append(record)
        else:
            catalog.published_invalid.append((record.get("review_id"), record.get("product_id")))
            LOG.warning("signature check FAILED, not served: review_id=%r product_id=%r key_id=%r",
                        record.get("review_id"), record.get("product_id"),
                        ((record.get("provenance") or {}).get("signature_scheme") or {}).get("key_id"))
    return verified


def load_catalog(prefix: str, keys: Mapping[str, bytes], max_age_hours: Optional[float] = None,
                 now: Optional[dt.datetime] = None, not_before: Optional[dt.datetime] = None) -> Catalog:
    """Reads and verifies one run's output (local path or gs:// prefix). Bad input costs only itself:
    a malformed line or document is reported and skipped, and every other product is served.
    A product is served only as its run's signed index lists it (``signing.read_run_index``)."""
    prefix = prefix.rstrip("/")
    catalog = Catalog()
    index, index_problem = signing.read_run_index(prefix, keys, max_age_hours, now, not_before)
    if index is None:
        LOG.error("no product served as verified: %s", index_problem)
    else:
        catalog.run_id, catalog.signed_at = index["run_id"], index["signed_at"]
    listed = index["products"] if index is not None else {}

    def malformed(path: str, line: int, message: str) -> None:
        catalog.malformed.append(f"{path}:{line}: {message}")
        LOG.error("malformed input skipped: %s line %d: %s", path, line, message)

    verified = _verified_records(prefix, keys, catalog, malformed)
    matches = FileSystems.match([FileSystems.join(prefix, display.WIDGET_DIR, "*.json")])[0].metadata_list
    for match in sorted(matches, key=lambda m: m.path):
        try:
            with FileSystems.open(match.path, mime_type="application/json") as handle:
                doc = json.loads(handle.read().decode("utf-8"))
            if not isinstance(doc, dict) or not isinstance(doc.get("product_id"), str):
                raise ValueError("not a widget document")
        except (OSError, ValueError) as exn:
            malformed(match.path, 0, str(exn)[:200])
            continue
        product_id = doc["product_id"]
        served, reason, dropped = verify_doc(doc, verified.get(product_id, []), keys)
        if served is None or index is None:
            catalog.refuse(product_id, reason or index_problem)
            continue
        if not signing.index_lists(index, doc["manifest"]):
            catalog.refuse(product_id, (
                f"the product's manifest (run {served['run_id']!r}) is not the one the signed run index of run "
                f"{index['run_id']!r} lists: its files come from another run"))
            continue
        if product_id in catalog.unavailable or product_id in catalog.docs:
            catalog.refuse(product_id, "two widget documents for one product")
            continue
        served["verification"]["signed_at"] = index["signed_at"]
        for review_id in dropped:
            LOG.warning("widget entry not bound to a verified record, ignored: review_id=%r product_id=%r",
                        review_id, product_id)
        catalog.entries_dropped += len(dropped)
        catalog.docs[product_id] = served
    for product_id in sorted(set(listed) - set(catalog.docs) - set(catalog.unavailable)):
        catalog.refuse(product_id, "the signed run index lists this product but its widget document is missing")
    LOG.info("loaded %s: %d products served, %d not served (manifest mismatch), %d published records checked, "
             "%d failed verification, %d malformed lines or files skipped, %d widget entries ignored",
             prefix, len(catalog.docs), len(catalog.unavailable), catalog.published_checked,
             len(catalog.published_invalid), len(catalog.malformed), catalog.entries_dropped)
    return catalog


REQUEST_TIMEOUT_S = 10
MAX_WORKERS = 32


class BoundedHTTPServer(ThreadingHTTPServer):
    """A threaded HTTP server with a bounded pool of workers: idle or slow connections time out
    (``REQUEST_TIMEOUT_S`` per connection) and can hold at most ``MAX_WORKERS`` threads, so a client
    that opens many connections and sends nothing cannot exhaust the process."""

    def __init__(self, address, handler, max_workers: int = MAX_WORKERS):
        super().__init__(address, handler)
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="widget-http")

    def process_request(self, request, client_address):
        self._pool.submit(self.process_request_thread, request, client_address)

    def server_close(self):
        super().server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)


def example_page(html_bytes: bytes, locale: Optional[str]) -> bytes:
    """The example page, with ``data-locale`` on its widget element when ``locale`` is given."""
    if not locale:
        return html_bytes
    if locale not in LOCALES:
        raise ValueError(f"unsupported locale {locale!r} (one of {', '.join(LOCALES)})")
    marker = b"data-review-widget "
    if marker not in html_bytes:
        raise ValueError("the example page has no data-review-widget element")
    return html_bytes.replace(marker, marker + f'data-locale="{locale}" '.encode("ascii"), 1)


def make_handler(catalog: Catalog, static_dir: Path = STATIC_DIR, locale: Optional[str] = None):
    static = {"/" + p.name: p for p in static_dir.iterdir() if p.is_file()}
    if (static_dir / "i18n").is_dir():
        static.update({"/i18n/" + p.name: p for p in (static_dir / "i18n").iterdir()
                       if p.is_file() and p.suffix == ".json"})
    example_page(b"data-review-widget ", locale)   # an unsupported locale fails here, not per request

    class Handler(BaseHTTPRequestHandler):
        server_version = "review-widget"
        sys_version = ""
        timeout = REQUEST_TIMEOUT_S   # per connection: an idle or slow client is dropped, not waited for
        default_request_version = "HTTP/1.0"   # so even a malformed request line gets a status line and headers

        def send_response(self, code, message=None):
            super().send_response(code, message)
            # on every response, error pages from BaseHTTPRequestHandler (400, 414, 501...) included
            self.send_header("X-Content-Type-Options", "nosniff")

        def log_message(self, fmt, *args):  # route access logs through logging
            LOG.debug("%s %s", self.address_string(), fmt % args)

        def _send(self, status: int, body: bytes, content_type: str, extra: Optional[Dict[str, str]] = None):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Referrer-Policy", "no-referrer")
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, obj: Any):
            body = display.safe_json(obj).encode("utf-8")
            self._send(status, body, CONTENT_TYPES[".json"],
                       {"Cache-Control": "no-store", "Access-Control-Allow-Origin": "*"})

        def do_HEAD(self):
            self.do_GET()

        def do_GET(self):
            url = urlsplit(self.path)
            if url.path == "/":
                self._send(HTTPStatus.FOUND, b"", "text/plain", {"Location": "/example.html"})
            elif url.path == "/favicon.ico":
                self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
            elif url.path == "/healthz":
                self._json(HTTPStatus.OK, {"ok": True, "products": len(catalog.docs)})
            elif url.path == "/api/products":
                self._json(HTTPStatus.OK, {"products": catalog.product_list()})
            elif url.path == "/api/reviews":
                product_id = (parse_qs(url.query).get("product_id") or [None])[0]
                doc = catalog.docs.get(product_id) if product_id is not None else None
                if product_id in catalog.unavailable:
                    self._json(HTTPStatus.CONFLICT, {"error": "reviews_unavailable", "product_id": product_id,
                                                     "reason": catalog.unavailable[product_id]})
                elif doc is None:
                    self._json(HTTPStatus.NOT_FOUND, {"error": "unknown product_id"})
                else:
                    self._json(HTTPStatus.OK, doc)
            elif url.path in static:
                path = static[url.path]
                ctype = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
                extra = {"Cache-Control": "no-cache"}
                body = path.read_bytes()
                if path.suffix == ".html":
                    extra["Content-Security-Policy"] = CSP
                    if url.path == "/example.html":
                        body = example_page(body, locale)
                if url.path.startswith("/i18n/"):   # catalogues are read by widgets embedded elsewhere too
                    extra["Access-Control-Allow-Origin"] = "*"
                self._send(HTTPStatus.OK, body, ctype, extra)
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})

    return Handler


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Serve a run's verified widget documents and the example page.")
    parser.add_argument("--output", required=True, help="pipeline output prefix (directory or gs://)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--key-file", default=None, help="file holding the signing key (else $REVIEW_SIGNING_KEY)")
    parser.add_argument("--allow-demo-key", action="store_true",
                        help="also accept records signed with the demo key (demo runs only)")
    parser.add_argument("--locale", default=None, choices=LOCALES,
                        help="language of the example page's widget (sets data-locale); default: the "
                             "page's <html lang>, then the browser's languages")
    parser.add_argument("--max-age-hours", type=float, default=48.0,
                        help="refuse a run whose index was signed longer ago than this (default 48: a daily "
                             "run and a day's grace); 0 serves a run of any age")
    parser.add_argument("--state-file", default=None,
                        help="a file (local or gs://) where the server records the newest run it has served; a run signed "
                             "before that one is refused, across restarts (an older run put back)")
    parser.add_argument("--reload-s", type=float, default=0.0,
                        help="a streaming job's output only: read and verify the files again every this many seconds "
                             "(default 0: once, at start-up)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    try:
        keys = load_keys(args.key_file, args.allow_demo_key)
    except (ValueError, OSError) as exn:
        print(f"error: {exn}", file=sys.stderr)
        return 2
    if not keys:
        print("error: no key: set REVIEW_SIGNING_KEY, pass --key-file, or --allow-demo-key", file=sys.stderr)
        return 2
    from pipeline import verify
    streaming = verify.is_stream_output(args.output)
    if streaming and verify.is_batch_output(args.output):
        print(f"error: {args.output} holds both a streaming job's output and a batch run's: each must have a prefix "
              "of its own", file=sys.stderr)
        return 2
    if not streaming and not FileSystems.match([FileSystems.join(args.output.rstrip("/"), display.WIDGET_DIR, "*.json")])[0].metadata_list:
        print(f"error: no widget documents under {args.output}/widget/ or {args.output}/{verify.STREAM_DOCS}/ "
              "(run the pipeline first)", file=sys.stderr)
        return 2
    if streaming:
        LOG.warning("%s is a streaming job's output: serving each product's newest signed document as the files "
                    "stand %s; no run index, so --max-age-hours and --state-file do not apply", args.output,
                    f"(read again every {args.reload_s:g} s)" if args.reload_s else "now (restart, or --reload-s, to read newer ones)")
        catalog = ReloadingCatalog(lambda: load_stream_catalog(args.output, keys), args.reload_s)
        return serve(catalog, args)
    try:
        not_before = newest_served(args.state_file)
    except (OSError, ValueError, KeyError) as exn:
        print(f"error: --state-file {args.state_file}: {exn}", file=sys.stderr)
        return 2
    catalog = load_catalog(args.output, keys, args.max_age_hours, not_before=not_before)
    try:
        record_served(args.state_file, catalog)
    except OSError as exn:
        print(f"error: --state-file {args.state_file}: cannot record the run served: {exn}", file=sys.stderr)
        return 2
    return serve(catalog, args)


class ReloadingCatalog:
    """A catalog read again every ``every_s`` seconds (0: never) by a daemon thread, for a streaming
    job's output that keeps growing; requests see the latest complete one (the reference is swapped
    whole, never a catalog half read). A reload that fails keeps the previous catalog and logs why."""

    def __init__(self, load, every_s: float = 0.0):
        self._load, self._every = load, every_s
        self.current = load()
        if every_s > 0:
            import threading
            threading.Thread(target=self._run, name="catalog-reload", daemon=True).start()

    def _run(self):
        import time
        while True:
            time.sleep(self._every)
            try:
                self.current = self._load()
            except Exception:  # noqa: BLE001 - keep serving what was verified last
                LOG.exception("reloading the catalog failed; still serving the previous one")

    def __getattr__(self, name):
        return getattr(self.current, name)


def serve(catalog: Catalog, args) -> int:
    """Serves ``catalog`` until interrupted; the first line on stdout says where."""
    server = BoundedHTTPServer((args.host, args.port), make_handler(catalog, locale=args.locale))
    host, port = server.server_address[:2]
    print(f"serving http://{host}:{port}/", flush=True)
    print(f"  example page: http://{host}:{port}/example.html   ({len(catalog.docs)} products; "
          f"{len(catalog.unavailable)} refused; run {catalog.run_id} signed at {catalog.signed_at}; "
          f"{len(catalog.published_invalid)} published records failed verification and are not shown; "
          f"widget locale: {args.locale or 'from <html lang> / the browser'})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
