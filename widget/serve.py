"""Serves a run's widget documents and the example storefront page, verifying every review first.

    python -m widget.serve --output PREFIX [--port 8000] [--host 127.0.0.1]
                           [--key-file F | $REVIEW_SIGNING_KEY] [--allow-demo-key] [--locale ja]

``PREFIX`` is a pipeline output prefix (a directory or ``gs://`` prefix, read through Beam's
FileSystems). At start-up the server

1. reads ``PREFIX/published/*.jsonl`` and checks each record's HMAC signature with
   :func:`pipeline.signing.verify_published` and the keys it holds (``--key-file`` or
   ``$REVIEW_SIGNING_KEY``; the demo key only with ``--allow-demo-key``). Records that fail are
   logged (review id, product id) and dropped;
2. reads ``PREFIX/widget/*.json`` and keeps a review entry only when a verified published record of
   the same product has its ``review_id`` and ``signature`` and its display fields equal the entry
   (:func:`pipeline.display.display_review`); entries that fail are dropped and
   logged, counted under ``withheld.by_reason.signature_not_verified``, and the aggregate,
   histogram and JSON-LD are recomputed from what is left. Each served document gets
   ``verification`` (``checked``, ``verified``, ``not_verified``).

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
import json
import logging
import sys
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

from apache_beam.io.filesystems import FileSystems

from pipeline import signing
from pipeline.files import read_json_lines
from pipeline import display

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
    published_checked: int = 0
    published_invalid: List[Tuple[Optional[str], Optional[str]]] = field(default_factory=list)
    entries_dropped: int = 0

    def product_list(self) -> List[Dict[str, Any]]:
        rows = [{"product_id": pid, "review_count": d["aggregate"]["review_count"],
                 "average_rating": d["aggregate"]["average_rating"], "withheld_count": d["withheld"]["count"]}
                for pid, d in self.docs.items()]
        return sorted(rows, key=lambda r: (-r["review_count"], r["product_id"]))


def load_keys(key_file: Optional[str], allow_demo_key: bool) -> Dict[str, bytes]:
    """key id → secret: ``--key-file`` or ``$REVIEW_SIGNING_KEY``, plus the demo key if allowed."""
    keys: Dict[str, bytes] = {}
    try:
        key = signing.load_signing_key(key_file, require=True)
        keys[key.key_id] = key.secret
    except ValueError:
        if key_file:
            raise
    if allow_demo_key:
        keys[signing.DEMO_KEY_ID] = signing.DEMO_KEY
    return keys


def verify_doc(doc: Mapping[str, Any], verified: Mapping[str, Mapping[str, Any]]) -> Tuple[Dict[str, Any], List[str]]:
    """(served document, review ids dropped) for one pipeline document and the verified records by id."""
    product_id = doc["product_id"]
    kept, dropped = [], []
    for entry in doc.get("reviews", ()):
        record = verified.get(entry.get("review_id"))
        ok = (record is not None and record.get("product_id") == product_id
              and record.get("signature") == entry.get("signature")
              and display.display_review(record) == entry)
        (kept if ok else dropped).append(entry)
    served = dict(doc)
    served["reviews"] = display.most_recent_first(kept)
    if dropped:
        served["aggregate"] = display.summarise_reviews(kept)
        by_reason = dict(doc["withheld"]["by_reason"])
        by_reason[NOT_VERIFIED] = by_reason.get(NOT_VERIFIED, 0) + len(dropped)
        served["withheld"] = {"count": doc["withheld"]["count"] + len(dropped), "by_reason": dict(sorted(by_reason.items()))}
        served["json_ld"] = display.build_json_ld(product_id, served["reviews"])
    served["verification"] = {"checked": len(kept) + len(dropped), "verified": len(kept), "not_verified": len(dropped)}
    return served, [e.get("review_id") for e in dropped]


def load_catalog(prefix: str, keys: Mapping[str, bytes]) -> Catalog:
    """Reads and verifies one run's output (local path or gs:// prefix)."""
    prefix = prefix.rstrip("/")
    catalog = Catalog()
    verified: Dict[str, Dict[str, Any]] = {}
    for record in read_json_lines(FileSystems.join(prefix, "published", "*.jsonl")):
        catalog.published_checked += 1
        if signing.verify_published(record, keys):
            verified[record["review_id"]] = record
        else:
            catalog.published_invalid.append((record.get("review_id"), record.get("product_id")))
            LOG.warning("signature check FAILED, not served: review_id=%r product_id=%r key_id=%r",
                        record.get("review_id"), record.get("product_id"),
                        ((record.get("provenance") or {}).get("signature_scheme") or {}).get("key_id"))
    matches = FileSystems.match([FileSystems.join(prefix, display.WIDGET_DIR, "*.json")])[0].metadata_list
    for match in sorted(matches, key=lambda m: m.path):
        with FileSystems.open(match.path, mime_type="application/json") as handle:
            doc = json.loads(handle.read().decode("utf-8"))
        served, dropped = verify_doc(doc, verified)
        for review_id in dropped:
            LOG.warning("review entry not bound to a verified record, not served: review_id=%r product_id=%r",
                        review_id, doc["product_id"])
        catalog.entries_dropped += len(dropped)
        catalog.docs[doc["product_id"]] = served
    LOG.info("loaded %s: %d products, %d published records checked, %d failed verification, "
             "%d widget entries dropped", prefix, len(catalog.docs), catalog.published_checked,
             len(catalog.published_invalid), catalog.entries_dropped)
    return catalog


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

        def log_message(self, fmt, *args):  # route access logs through logging
            LOG.debug("%s %s", self.address_string(), fmt % args)

        def _send(self, status: int, body: bytes, content_type: str, extra: Optional[Dict[str, str]] = None):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Content-Type-Options", "nosniff")
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
                if doc is None:
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
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    keys = load_keys(args.key_file, args.allow_demo_key)
    if not keys:
        print("error: no key: set REVIEW_SIGNING_KEY, pass --key-file, or --allow-demo-key", file=sys.stderr)
        return 2
    if not FileSystems.match([FileSystems.join(args.output.rstrip("/"), display.WIDGET_DIR, "*.json")])[0].metadata_list:
        print(f"error: no widget documents under {args.output}/widget/ (run the pipeline first)", file=sys.stderr)
        return 2
    catalog = load_catalog(args.output, keys)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(catalog, locale=args.locale))
    host, port = server.server_address[:2]
    print(f"serving http://{host}:{port}/", flush=True)
    print(f"  example page: http://{host}:{port}/example.html   ({len(catalog.docs)} products; "
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
