"""Issue #20 §2 in a real browser: every injection payload of tests/adversarial/test_markup.py,
published by the pipeline's own functions and signed, is rendered by the reference widget and by a
storefront page that server-renders the JSON-LD with a plain JSON encoder. Nothing runs, no element
is created, no dialog opens, and the review's words are on the page.
"""
from __future__ import annotations

import html
import json
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline.context import RunContext
from pipeline.display import build_widget_doc
from pipeline.policy import DEFAULT_POLICY
from pipeline.transforms.decide import Decided
from pipeline.transforms.detect import mark_not_run
from pipeline.transforms.normalize import normalize_item
from pipeline.transforms.parse import parse_line
from pipeline.transforms.provenance import to_records
from schemas.records import InputRef, RawLine
from tests.adversarial.test_markup import PAYLOADS
from tests.conftest import ARTIFACTS
from tests.test_widget_browser import Server, browser_tools, drive  # noqa: F401,F811 (a fixture)
from tests.test_widget_docs import TEST_KEY, make_product, write_run

pytestmark = pytest.mark.slow
PER_PRODUCT = 10   # the JSON-LD marks up a product's 10 most recent reviews


def published_payloads():
    """(product id → published records), one review per payload, through parse → normalise → provenance."""
    products = {}
    for i, (name, payload) in enumerate(PAYLOADS):
        pid = f"hostile-{i // PER_PRODUCT:02d}"
        obj = {"review_id": f"p{i:03d}", "product_id": pid, "author_id": f"a{i}", "rating": 1 + i % 5,
               "title": payload, "body": f"Broke in week {i}. {payload} Avoid.",
               "created_at": f"2026-11-{1 + i % 28:02d}T12:00:00Z", "language": "en"}
        item = parse_line(RawLine(ref=InputRef("in.jsonl", i + 1), data=json.dumps(obj).encode()),
                          run_id="hostile", ingested_at="2026-11-30T00:00:00Z")
        item = mark_not_run(normalize_item(item))
        _, published = to_records(Decided(item, DEFAULT_POLICY.decide(item), "2026-11-30T00:00:01Z"),
                                  RunContext(run_id="hostile"), TEST_KEY)
        products.setdefault(pid, []).append(published.to_dict())
    return products


@pytest.fixture(scope="module")
def payload_run(tmp_path_factory, browser_tools):  # noqa: F811
    products = published_payloads()
    published = [r for rows in products.values() for r in rows]
    prefix = write_run(tmp_path_factory.mktemp("payloads") / "run", published,
                       [make_product(pid, rows) for pid, rows in products.items()])
    server = Server(prefix, env={"REVIEW_SIGNING_KEY": TEST_KEY.secret.decode(),
                                 "REVIEW_SIGNING_KEY_ID": TEST_KEY.key_id})
    yield server, products
    server.stop()


def test_the_reference_widget_renders_every_payload_as_text(payload_run):
    server, products = payload_run
    for pid, rows in sorted(products.items()):
        out = drive(f"{server.url}/example.html?product_id={pid}",
                    [{"do": "snapshot"}, {"do": "elements", "within": "[data-role=review]"}, {"do": "all_pages"}],
                    bypass_csp=True)
        assert out["dialogs"] == 0 and out["finalPwned"] is None and not out["pageErrors"], (pid, out["pageErrors"])
        snap = out["snapshots"][0]
        assert snap["elementsInsideWidget"] == {"img": 0, "script": 0, "b": 0, "iframe": 0}, pid
        assert not out["elements"]["handlers"], pid
        inside_reviews = set(out["elements"]["tags"])
        assert not {"svg", "math", "iframe", "details", "input", "style", "script", "img", "a", "b", "body",
                    "object", "embed"} & inside_reviews, (pid, inside_reviews)
        shown = {r["id"]: r for r in snap["reviews"]}
        for row in rows:
            if row["review_id"] in shown:   # first page: the words of each review are on the page as text
                assert shown[row["review_id"]]["body"] == row["body"]
        assert sorted(r["id"] for page in out["pages"] for r in page) == sorted(r["review_id"] for r in rows)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_a_storefront_page_that_server_renders_the_json_ld_runs_nothing(payload_run, tmp_path):
    """The JSON-LD of every product, written into <script type="application/ld+json"> by a plain JSON
    encoder (no escaping of < > &), in both ASCII and UTF-8 forms: no script breaks out."""
    _, products = payload_run
    blocks = []
    for pid, rows in sorted(products.items()):
        ld = build_widget_doc(pid, rows, None)["json_ld"]
        assert ld and len(ld["review"]) == min(PER_PRODUCT, len(rows))
        for ensure_ascii in (False, True):
            blocks.append(f'<script type="application/ld+json">{json.dumps(ld, ensure_ascii=ensure_ascii)}</script>')
    page = ("<!doctype html><html lang=en><head><meta charset=utf-8><title>Product</title>" + "".join(blocks)
            + "</head><body><div id=ok>ok</div></body></html>")
    (tmp_path / "product.html").write_text(page, encoding="utf-8")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(tmp_path)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        out = drive(f"http://127.0.0.1:{httpd.server_address[1]}/product.html",
                    [{"do": "elements"}, {"do": "screenshot", "path": str(ARTIFACTS / "json-ld-payloads.png")}],
                    waitFor="#ok")
    finally:
        httpd.shutdown()
    assert out["dialogs"] == 0 and out["finalPwned"] is None and not out["pageErrors"]
    tags = out["elements"]["tags"]
    assert sorted(set(tags)) == ["body", "div", "head", "html", "meta", "script", "title"], sorted(set(tags))
    assert out["elements"]["scripts"] == ["application/ld+json"] * len(blocks)
    assert not out["elements"]["handlers"]
    assert html.escape("Broke in week 0.") in html.escape(page)
