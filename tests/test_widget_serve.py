"""The widget server: verifies signatures on the serving side, drops what fails, never leaks the key.

A real HTTP server on localhost (the module's own handler in a thread); no mocks.
"""
from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from pipeline import signing
from tests.test_widget_docs import (TEST_KEY, VERIFIED, assert_valid_doc, make_product, make_published,
                                    write_run)
from widget import serve
from widget.serve import NOT_VERIFIED, load_catalog, make_handler

KEYS = {TEST_KEY.key_id: TEST_KEY.secret}


def hostile_run(tmp_path: Path) -> Path:
    """One product with good records, a tampered one, one signed by an unknown key."""
    good = [make_published("good-1", "prod", 1, "2024-05-01T00:00:00Z", body="Terrible.", labels=[VERIFIED]),
            make_published("good-2", "prod", 5, "2024-04-01T00:00:00Z", body="Great.")]
    tampered = make_published("tampered", "prod", 1, "2024-06-01T00:00:00Z", body="Awful, broke at once.")
    tampered = {**tampered, "rating": 5, "body": "Best purchase ever!"}   # altered after signing
    other_key = signing.SigningKey("k-someone-else", b"another-secret")
    foreign = make_published("foreign", "prod", 5, "2024-06-02T00:00:00Z", key=other_key)
    published = good + [tampered, foreign]
    product = make_product("prod", published, {"empty_after_cleaning": 1})
    return write_run(tmp_path / "run", published, [product])


def test_catalog_serves_only_verified_reviews_and_recomputes(tmp_path, caplog):
    prefix = hostile_run(tmp_path)
    with caplog.at_level("WARNING", logger="widget.serve"):
        catalog = load_catalog(str(prefix), KEYS)
    doc = catalog.docs["prod"]
    assert [r["review_id"] for r in doc["reviews"]] == ["good-1", "good-2"]
    assert doc["aggregate"] == {"review_count": 2, "average_rating": 3.0,
                                "rating_histogram": {"1": 1, "2": 0, "3": 0, "4": 0, "5": 1}}
    assert doc["withheld"] == {"count": 3, "by_reason": {"empty_after_cleaning": 1, NOT_VERIFIED: 2}}
    assert doc["verification"] == {"checked": 4, "verified": 2, "not_verified": 2}
    assert doc["json_ld"]["aggregateRating"]["reviewCount"] == 2
    assert "Best purchase ever!" not in json.dumps(doc)
    assert sorted(catalog.published_invalid) == [("foreign", "prod"), ("tampered", "prod")]
    assert "tampered" in caplog.text and "foreign" in caplog.text
    assert_valid_doc(doc)


def test_an_edited_widget_document_is_not_trusted(tmp_path):
    """The document is not signed: an entry that differs from its verified record is dropped."""
    prefix = hostile_run(tmp_path)
    path = next((prefix / "widget").glob("*.json"))
    doc = json.loads(path.read_text())
    for entry in doc["reviews"]:
        if entry["review_id"] == "good-1":
            entry["rating"], entry["body"] = 5, "Edited to sound positive."
    doc["reviews"].append({**doc["reviews"][0], "review_id": "invented"})
    path.write_text(json.dumps(doc))
    served = load_catalog(str(prefix), KEYS).docs["prod"]
    assert [r["review_id"] for r in served["reviews"]] == ["good-2"]
    assert served["withheld"]["by_reason"][NOT_VERIFIED] == 4  # tampered, foreign, good-1 edited, invented


def test_demo_key_is_accepted_only_when_allowed(tmp_path, monkeypatch):
    monkeypatch.delenv(signing.ENV_KEY, raising=False)
    assert serve.load_keys(None, allow_demo_key=False) == {}
    assert serve.load_keys(None, allow_demo_key=True) == {signing.DEMO_KEY_ID: signing.DEMO_KEY}
    monkeypatch.setenv(signing.ENV_KEY, "from-the-environment")
    keys = serve.load_keys(None, allow_demo_key=False)
    assert list(keys.values()) == [b"from-the-environment"] and signing.DEMO_KEY_ID not in keys
    demo = signing.SigningKey(signing.DEMO_KEY_ID, signing.DEMO_KEY)
    rec = make_published("d1", "dp", 4, "2024-01-01T00:00:00Z", key=demo)
    prefix = write_run(tmp_path / "demo", [rec], [make_product("dp", [rec])])
    assert load_catalog(str(prefix), keys).docs["dp"]["reviews"] == []


def test_main_refuses_to_start_without_a_key(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(signing.ENV_KEY, raising=False)
    assert serve.main(["--output", str(tmp_path), "--port", "0"]) == 2
    assert "no key" in capsys.readouterr().err


@pytest.fixture()
def http_server(tmp_path):
    catalog = load_catalog(str(hostile_run(tmp_path)), KEYS)
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(catalog))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_http_routes_headers_and_no_key_in_responses(http_server):
    status, headers, body = _get(http_server + "/api/products")
    assert status == 200 and json.loads(body)["products"][0]["product_id"] == "prod"
    status, headers, body = _get(http_server + "/api/reviews?product_id=prod")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert [r["review_id"] for r in json.loads(body)["reviews"]] == ["good-1", "good-2"]
    assert _get(http_server + "/api/reviews?product_id=nope")[0] == 404
    status, headers, body = _get(http_server + "/example.html")
    assert status == 200 and "script-src 'self'" in headers["Content-Security-Policy"]
    assert _get(http_server + "/review-widget.js")[0] == 200
    for path in ("/../serve.py", "/%2e%2e/serve.py", "/static/../serve.py", "/serve.py", "/etc/passwd"):
        assert _get(http_server + path)[0] == 404, path
    served = b"".join(_get(http_server + p)[2] for p in
                      ("/api/products", "/api/reviews?product_id=prod", "/example.html", "/review-widget.js",
                       "/example.js"))
    assert TEST_KEY.secret not in served and signing.DEMO_KEY not in served


def test_message_catalogues_are_served_for_widgets_embedded_elsewhere(http_server):
    for locale in serve.LOCALES:
        status, headers, body = _get(http_server + f"/i18n/{locale}.json")
        assert status == 200 and headers["Content-Type"].startswith("application/json")
        assert headers["Access-Control-Allow-Origin"] == "*"
        assert json.loads(body)["heading"]
    assert _get(http_server + "/i18n/fr.json")[0] == 404
    assert _get(http_server + "/i18n/../serve.py")[0] == 404
    status, _, page = _get(http_server + "/example.html")
    assert status == 200 and b"data-locale" not in page   # no --locale: the page's <html lang>, then the browser


@pytest.mark.parametrize("locale", serve.LOCALES)
def test_locale_option_sets_data_locale_on_the_example_page(tmp_path, locale):
    catalog = load_catalog(str(hostile_run(tmp_path)), KEYS)
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(catalog, locale=locale))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        status, headers, page = _get(f"http://127.0.0.1:{server.server_address[1]}/example.html")
    finally:
        server.shutdown()
        server.server_close()
    assert status == 200 and "script-src 'self'" in headers["Content-Security-Policy"]
    assert page.count(b"data-locale=") == 1
    assert f'<div id="reviews" data-review-widget data-locale="{locale}" '.encode() in page


def test_an_unsupported_locale_is_refused():
    with pytest.raises(ValueError, match="unsupported locale"):
        make_handler(serve.Catalog(), locale="fr")
    with pytest.raises(SystemExit):
        serve.main(["--output", "x", "--locale", "fr"])


def test_make_widget_demo_passes_locale_through():
    import subprocess
    res = subprocess.run(["make", "-n", "widget-demo", "LOCALE=ja", "OUTPUT=out/elsewhere", "STAMP="],
                         cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "-m widget.serve --output out/elsewhere" in res.stdout and "--locale ja" in res.stdout
