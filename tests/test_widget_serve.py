"""The widget server: verifies signatures on the serving side, drops what fails, never leaks the key.

A real HTTP server on localhost (the module's own handler in a thread); no mocks.
"""
from __future__ import annotations

import datetime as dt
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from apache_beam.io.filesystems import FileSystems

from pipeline import signing
from tests.test_widget_docs import (TEST_KEY, VERIFIED, assert_valid_doc, make_product, make_published,
                                    write_run)
from widget import serve
from widget.serve import load_catalog, make_handler

KEYS = {TEST_KEY.key_id: TEST_KEY.secret}
OTHER_KEY = signing.SigningKey("k-someone-else", b"another-secret-that-is-long-enough!!")


def honest_run(tmp_path: Path) -> Path:
    """Two products as the pipeline writes them (manifests signed with TEST_KEY)."""
    prod = [make_published("good-1", "prod", 1, "2024-05-01T00:00:00Z", body="Terrible.", labels=[VERIFIED]),
            make_published("good-2", "prod", 5, "2024-04-01T00:00:00Z", body="Great.")]
    other = [make_published("o-1", "other", 3, "2024-03-01T00:00:00Z", body="Fine.")]
    return write_run(tmp_path / "run", prod + other,
                     [make_product("prod", prod, {"empty_after_cleaning": 1}), make_product("other", other)])


def published_file(prefix: Path) -> Path:
    return next((prefix / "published").glob("*.jsonl"))


def widget_file(prefix: Path, product_id: str) -> Path:
    from pipeline.display import doc_file_name
    return prefix / "widget" / doc_file_name(product_id)


def rewrite_published(prefix: Path, change) -> None:
    """Applies ``change(records) -> records`` to the published file, as an attacker with write access would."""
    path = published_file(prefix)
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    path.write_text("".join(json.dumps(r) + "\n" for r in change(records)))


def test_catalog_serves_verified_records_and_recomputes(tmp_path):
    catalog = load_catalog(str(honest_run(tmp_path)), KEYS)
    doc = catalog.docs["prod"]
    assert [r["review_id"] for r in doc["reviews"]] == ["good-1", "good-2"]
    assert doc["aggregate"] == {"review_count": 2, "average_rating": 3.0,
                                "rating_histogram": {"1": 1, "2": 0, "3": 0, "4": 0, "5": 1}}
    assert doc["withheld"] == {"count": 1, "by_reason": {"empty_after_cleaning": 1}}
    assert doc["verification"] == {"checked": 2, "verified": 2, "not_verified": 0,
                                   "signed_at": catalog.signed_at}
    assert doc["json_ld"]["aggregateRating"]["reviewCount"] == 2
    assert catalog.unavailable == {} and catalog.published_invalid == []
    assert_valid_doc(doc)


def test_an_altered_record_makes_its_product_unavailable_and_only_it(tmp_path, caplog):
    prefix = honest_run(tmp_path)
    rewrite_published(prefix, lambda rs: [{**r, "rating": 5, "body": "Best purchase ever!"}
                                          if r["review_id"] == "good-1" else r for r in rs])
    with caplog.at_level("WARNING", logger="widget.serve"):
        catalog = load_catalog(str(prefix), KEYS)
    assert "prod" not in catalog.docs and "do not match the signed manifest" in catalog.unavailable["prod"]
    assert catalog.docs["other"]["aggregate"]["review_count"] == 1
    assert catalog.published_invalid == [("good-1", "prod")]
    assert "signature check FAILED" in caplog.text and "NOT served as verified" in caplog.text


@pytest.mark.parametrize("delete_from_widget", [False, True])
def test_deleting_the_negative_reviews_is_detected(tmp_path, delete_from_widget):
    """Removing the 1-star review from published/ (and from the widget file too) cannot make the page
    claim every review is shown: the signed manifest still counts it."""
    prefix = honest_run(tmp_path)
    rewrite_published(prefix, lambda rs: [r for r in rs if r["rating"] > 2])
    if delete_from_widget:
        path = widget_file(prefix, "prod")
        doc = json.loads(path.read_text())
        doc["reviews"] = [e for e in doc["reviews"] if e["rating"] > 2]
        doc["aggregate"] = {"review_count": 1, "average_rating": 5.0,
                            "rating_histogram": {"1": 0, "2": 0, "3": 0, "4": 0, "5": 1}}
        path.write_text(json.dumps(doc))
    catalog = load_catalog(str(prefix), KEYS)
    assert "prod" not in catalog.docs
    assert "it lists 2 reviews, 1 verified records were found" in catalog.unavailable["prod"]


def test_a_forged_record_added_to_published_is_never_served(tmp_path):
    prefix = honest_run(tmp_path)
    forged = make_published("forged", "prod", 5, "2024-06-02T00:00:00Z", body="Amazing!!!", key=OTHER_KEY)
    rewrite_published(prefix, lambda rs: rs + [forged])
    catalog = load_catalog(str(prefix), KEYS)
    assert [r["review_id"] for r in catalog.docs["prod"]["reviews"]] == ["good-1", "good-2"]
    assert catalog.published_invalid == [("forged", "prod")]


def test_numbers_in_the_widget_file_are_never_served(tmp_path):
    """A forged 4.9 of 5 from 41 reviews, histogram, withheld counts, detector status, JSON-LD and
    entries: every one is recomputed from verified records or taken from the signed manifest."""
    prefix = honest_run(tmp_path)
    path = widget_file(prefix, "prod")
    doc = json.loads(path.read_text())
    doc["aggregate"] = {"review_count": 41, "average_rating": 4.9,
                        "rating_histogram": {"1": 0, "2": 0, "3": 0, "4": 4, "5": 37}}
    doc["withheld"] = {"count": 0, "by_reason": {}}
    doc["moderation"]["detectors"] = [{"id": "fake_classifier", "status": "scored"}]
    doc["json_ld"]["aggregateRating"]["ratingValue"] = 4.9
    doc["reviews"][0] = {**doc["reviews"][0], "body": "Edited to sound positive.", "rating": 5}
    doc["reviews"].append({**doc["reviews"][1], "review_id": "invented"})
    path.write_text(json.dumps(doc))
    served = load_catalog(str(prefix), KEYS).docs["prod"]
    assert served["aggregate"]["average_rating"] == 3.0 and served["aggregate"]["review_count"] == 2
    assert served["withheld"] == {"count": 1, "by_reason": {"empty_after_cleaning": 1}}
    assert served["moderation"] == doc["manifest"]["moderation"]
    assert served["json_ld"]["aggregateRating"]["ratingValue"] == 3.0
    assert [r["body"] for r in served["reviews"]] == ["Terrible.", "Great."]
    assert {k: served["verification"][k] for k in ("checked", "verified", "not_verified")} == {
        "checked": 3, "verified": 2, "not_verified": 2}


@pytest.mark.parametrize("forge", ["withheld", "unsigned", "other_key", "missing", "other_product"])
def test_a_forged_or_missing_manifest_makes_the_product_unavailable(tmp_path, forge):
    prefix = honest_run(tmp_path)
    path = widget_file(prefix, "prod")
    doc = json.loads(path.read_text())
    if forge == "withheld":
        doc["manifest"]["withheld"] = {"count": 0, "by_reason": {}}
    elif forge == "unsigned":
        del doc["manifest"]["signature"]
    elif forge == "other_key":
        doc["manifest"] = signing.sign_manifest("prod", "x", [], {"count": 0}, {}, OTHER_KEY)
    elif forge == "missing":
        del doc["manifest"]
    else:
        doc["manifest"] = json.loads(widget_file(prefix, "other").read_text())["manifest"]
    path.write_text(json.dumps(doc))
    catalog = load_catalog(str(prefix), KEYS)
    assert "prod" not in catalog.docs and catalog.unavailable["prod"]
    assert "other" in catalog.docs


def two_days(tmp_path: Path):
    """Day 1: two products with praise only. Day 2 (another run): the same, plus an honest 1-star
    review of each. Both runs are validly signed with TEST_KEY."""
    def run(name, negatives):
        prod = [make_published("p-good", "prod", 5, "2024-04-01T00:00:00Z", body="Great.", run_id=name)]
        other = [make_published("o-good", "other", 4, "2024-04-02T00:00:00Z", body="Fine.", run_id=name)]
        if negatives:
            prod.append(make_published("p-bad", "prod", 1, "2024-05-01T00:00:00Z", body="Broke in a week.", run_id=name))
            other.append(make_published("o-bad", "other", 1, "2024-05-02T00:00:00Z", body="Peeling.", run_id=name))
        return write_run(tmp_path / name, prod + other,
                         [make_product("prod", prod, run_id=name), make_product("other", other, run_id=name)])
    return run("day1", False), run("day2", True)


def test_a_product_taken_from_an_older_run_is_not_served(tmp_path):
    """An attacker with write access to the output replaces one product's published records and widget
    file with yesterday's validly signed ones (before the honest 1-star review arrived)."""
    day1, day2 = two_days(tmp_path)
    assert sorted(load_catalog(str(day2), KEYS).docs) == ["other", "prod"]
    old = [r for r in (json.loads(x) for x in published_file(day1).read_text().splitlines()) if r["product_id"] == "prod"]
    rewrite_published(day2, lambda rs: [r for r in rs if r["product_id"] != "prod"] + old)
    widget_file(day2, "prod").write_text(widget_file(day1, "prod").read_text())
    assert serve.verify_doc(json.loads(widget_file(day2, "prod").read_text()), old, KEYS)[0] is not None  # valid alone
    catalog = load_catalog(str(day2), KEYS)
    assert "prod" not in catalog.docs and "another run" in catalog.unavailable["prod"]
    assert catalog.docs["other"]["aggregate"]["review_count"] == 2


def test_a_whole_older_run_is_refused_when_too_old_and_its_age_is_served(tmp_path):
    """The whole output replaced by an older run, index included: every file is validly signed, so
    only its age gives it away. --max-age-hours (48 by default) refuses it; 0 serves it."""
    day1, _ = two_days(tmp_path)
    catalog = load_catalog(str(day1), KEYS, max_age_hours=48)
    assert sorted(catalog.docs) == ["other", "prod"]
    signed = dt.datetime.fromisoformat(catalog.signed_at.replace("Z", "+00:00"))
    assert catalog.docs["prod"]["verification"]["signed_at"] == catalog.signed_at
    later = load_catalog(str(day1), KEYS, max_age_hours=48, now=signed + dt.timedelta(hours=49))
    assert later.docs == {} and sorted(later.unavailable) == ["other", "prod"]
    assert "hours ago" in later.unavailable["prod"]
    assert sorted(load_catalog(str(day1), KEYS, max_age_hours=0, now=signed + dt.timedelta(days=30)).docs) == [
        "other", "prod"]


@pytest.mark.parametrize("where", ["local", "gcs"])
def test_a_state_file_refuses_an_older_run_after_a_restart(tmp_path, where, request):
    """Within --max-age-hours an older run put back is only caught by remembering the newest served;
    the state file may be a gs:// object a fleet of servers shares (on the real GCS emulator)."""
    day1, day2 = two_days(tmp_path)
    index = json.loads((day1 / signing.RUN_INDEX_FILE).read_text())   # day 1 signed an hour before day 2
    earlier = (dt.datetime.fromisoformat(index["signed_at"].replace("Z", "+00:00")) - dt.timedelta(hours=1))
    (day1 / signing.RUN_INDEX_FILE).write_text(json.dumps(signing.sign_run_index(
        index["run_id"], index["products"], TEST_KEY, earlier.isoformat().replace("+00:00", "Z"))))
    if where == "gcs":
        request.getfixturevalue("gcs").create_bucket("serving-state")
        state = "gs://serving-state/widget/served.json"
    else:
        state = str(tmp_path / "served.json")
    assert serve.newest_served(state) is None
    today = load_catalog(str(day2), KEYS, 48, not_before=serve.newest_served(state))
    serve.record_served(state, today)
    assert sorted(today.docs) == ["other", "prod"]
    rolled_back = load_catalog(str(day1), KEYS, 48, not_before=serve.newest_served(state))   # after a restart
    assert rolled_back.docs == {} and "newest run this server has already served" in rolled_back.unavailable["prod"]
    serve.record_served(state, rolled_back)   # refused: the state keeps the newer run
    with FileSystems.open(state) as handle:
        assert json.loads(handle.read())["run_id"] == "day2"
    assert sorted(load_catalog(str(day1), KEYS, 48).docs) == ["other", "prod"]   # without the state: served


@pytest.mark.parametrize("attack", ["missing", "forged", "other_key", "drop_product", "old_signature"])
def test_the_run_index_is_required_and_binds_every_product(tmp_path, attack):
    day1, day2 = two_days(tmp_path)
    path = day2 / signing.RUN_INDEX_FILE
    index = json.loads(path.read_text())
    if attack == "missing":
        path.unlink()
    elif attack == "forged":       # the attacker lists yesterday's manifest for prod, without the key
        index["products"]["prod"] = json.loads(widget_file(day1, "prod").read_text())["manifest"]["signature"]
        path.write_text(json.dumps(index))
    elif attack == "other_key":
        path.write_text(json.dumps(signing.sign_run_index(index["run_id"], index["products"], OTHER_KEY)))
    elif attack == "drop_product":  # delete a product's document: it is listed, so it is reported
        widget_file(day2, "prod").unlink()
    else:                           # yesterday's index beside today's files
        path.write_text((day1 / signing.RUN_INDEX_FILE).read_text())
    catalog = load_catalog(str(day2), KEYS)
    assert "prod" not in catalog.docs and catalog.unavailable["prod"]
    if attack == "drop_product":
        assert "missing" in catalog.unavailable["prod"] and "other" in catalog.docs
    else:
        assert "other" not in catalog.docs


def test_pipeline_verify_reports_a_product_taken_from_another_run(tmp_path, monkeypatch, capsys):
    from pipeline import verify
    day1, day2 = two_days(tmp_path)
    monkeypatch.setenv(signing.ENV_KEY, TEST_KEY.secret.decode())
    monkeypatch.setenv(signing.ENV_KEY_ID, TEST_KEY.key_id)
    assert verify.main([str(day2)]) == 0
    assert json.loads(capsys.readouterr().out)["manifests"]["run_id"] == "day2"
    old = [r for r in (json.loads(x) for x in published_file(day1).read_text().splitlines()) if r["product_id"] == "prod"]
    rewrite_published(day2, lambda rs: [r for r in rs if r["product_id"] != "prod"] + old)
    widget_file(day2, "prod").write_text(widget_file(day1, "prod").read_text())
    assert verify.main([str(day2)]) == 1
    assert [m["product_id"] for m in json.loads(capsys.readouterr().out)["manifests"]["mismatched"]] == ["prod"]
    (day2 / signing.RUN_INDEX_FILE).unlink()
    assert verify.main([str(day2)]) == 1
    assert "run index" in capsys.readouterr().out


def test_a_leftover_document_of_a_product_makes_it_unavailable_everywhere(tmp_path):
    """Two documents for one product (one left from another run): 409, and not listed either."""
    day1, day2 = two_days(tmp_path)
    (day2 / "widget" / "zzz-old.json").write_text(widget_file(day1, "prod").read_text())
    catalog = load_catalog(str(day2), KEYS)
    assert "prod" in catalog.unavailable and "prod" not in catalog.docs
    assert [r["product_id"] for r in catalog.product_list()] == ["other"]


def test_a_duplicate_key_in_a_published_line_is_not_verified(tmp_path):
    """A signed line with a second "rating"/"body" in front: a reader that keeps the first value would
    show 5 stars and praise, so the line is malformed for every reader here, and its product is 409."""
    prefix = honest_run(tmp_path)
    path = published_file(prefix)
    lines = path.read_text().splitlines()
    i = next(i for i, x in enumerate(lines) if json.loads(x)["review_id"] == "good-1")
    lines[i] = '{"rating": 5, "body": "Best ever!", ' + lines[i].lstrip()[1:]
    path.write_text("\n".join(lines) + "\n")
    catalog = load_catalog(str(prefix), KEYS)
    assert "prod" not in catalog.docs and "prod" in catalog.unavailable
    assert any("twice" in m for m in catalog.malformed)


def test_the_served_doc_version_is_the_servers_own(tmp_path):
    prefix = honest_run(tmp_path)
    doc = json.loads(widget_file(prefix, "prod").read_text())
    doc["doc_version"] = {"note": "Editor's choice: 5 stars", "verified": True}
    widget_file(prefix, "prod").write_text(json.dumps(doc))
    from pipeline.display import DOC_VERSION
    assert load_catalog(str(prefix), KEYS).docs["prod"]["doc_version"] == DOC_VERSION


def test_malformed_input_costs_only_itself(tmp_path, caplog):
    prefix = honest_run(tmp_path)
    with published_file(prefix).open("a") as fh:
        fh.write("{not json\n[1, 2]\n\"a string\"\n")
    (prefix / "widget" / "zz-broken.json").write_text("{broken")
    with caplog.at_level("ERROR", logger="widget.serve"):
        catalog = load_catalog(str(prefix), KEYS)
    assert sorted(catalog.docs) == ["other", "prod"] and catalog.unavailable == {}
    assert len(catalog.malformed) == 4 and "malformed input skipped" in caplog.text


def test_demo_key_is_accepted_only_when_allowed(tmp_path, monkeypatch):
    monkeypatch.delenv(signing.ENV_KEY, raising=False)
    assert serve.load_keys(None, allow_demo_key=False) == {}
    assert serve.load_keys(None, allow_demo_key=True) == {signing.DEMO_KEY_ID: signing.DEMO_KEY}
    monkeypatch.setenv(signing.ENV_KEY, "from-the-environment-" + "x" * 20)
    keys = serve.load_keys(None, allow_demo_key=False)
    assert list(keys.values()) == [b"from-the-environment-" + b"x" * 20] and signing.DEMO_KEY_ID not in keys
    with pytest.raises(ValueError, match="public demo key"):   # never both: the demo key is public
        serve.load_keys(None, allow_demo_key=True)
    demo = signing.SigningKey(signing.DEMO_KEY_ID, signing.DEMO_KEY)
    rec = make_published("d1", "dp", 4, "2024-01-01T00:00:00Z", key=demo)
    prefix = write_run(tmp_path / "demo", [rec], [make_product("dp", [rec])], key=demo)
    catalog = load_catalog(str(prefix), keys)
    assert "dp" not in catalog.docs and "dp" in catalog.unavailable


@pytest.mark.parametrize("secret", ["", "short-key"])
def test_a_short_key_is_an_error_not_the_demo_key(tmp_path, monkeypatch, capsys, secret):
    monkeypatch.setenv(signing.ENV_KEY, secret)
    with pytest.raises(signing.SigningKeyError):
        serve.load_keys(None, allow_demo_key=True)
    assert serve.main(["--output", str(honest_run(tmp_path)), "--port", "0", "--allow-demo-key"]) == 2
    assert "at least 32 bytes" in capsys.readouterr().err


def test_main_refuses_to_start_without_a_key(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(signing.ENV_KEY, raising=False)
    assert serve.main(["--output", str(tmp_path), "--port", "0"]) == 2
    assert "no key" in capsys.readouterr().err


@pytest.fixture()
def http_server(tmp_path):
    prefix = honest_run(tmp_path)
    rewrite_published(prefix, lambda rs: [r for r in rs if r["review_id"] != "o-1"])   # "other" → 409
    catalog = load_catalog(str(prefix), KEYS)
    server = serve.BoundedHTTPServer(("127.0.0.1", 0), make_handler(catalog))
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
    status, headers, body = _get(http_server + "/api/reviews?product_id=other")
    assert status == 409 and headers["X-Content-Type-Options"] == "nosniff"
    assert json.loads(body)["error"] == "reviews_unavailable" and "manifest" in json.loads(body)["reason"]
    assert [p["product_id"] for p in json.loads(_get(http_server + "/api/products")[2])["products"]] == ["prod"]
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
    catalog = load_catalog(str(honest_run(tmp_path)), KEYS)
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


def _raw(url: str, payload: bytes, timeout: float = 5) -> bytes:
    host, port = url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(payload)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("request_bytes, status", [
    (b"BOGUS / HTTP/1.1\r\nHost: x\r\n\r\n", b"501"),
    (b"GET / HTTP/1.1 extra-word\r\n\r\n", b"400"),
    (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", b"414"),
    (b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", b"404"),
])
def test_every_response_error_pages_included_says_nosniff(http_server, request_bytes, status):
    reply = _raw(http_server, request_bytes)
    head = reply.split(b"\r\n\r\n", 1)[0]
    assert head.split(b" ")[1] == status, head[:200]
    assert b"X-Content-Type-Options: nosniff" in head


def test_idle_connections_time_out_and_cannot_exhaust_the_server(tmp_path, monkeypatch):
    monkeypatch.setattr(serve, "REQUEST_TIMEOUT_S", 1)
    catalog = load_catalog(str(honest_run(tmp_path)), KEYS)
    server = serve.BoundedHTTPServer(("127.0.0.1", 0), make_handler(catalog), max_workers=4)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    idle = [socket.create_connection(("127.0.0.1", server.server_address[1])) for _ in range(12)]
    try:
        started = time.monotonic()
        status, headers, body = _get(url + "/healthz")   # served once idle connections time out
        assert status == 200 and json.loads(body)["ok"] and time.monotonic() - started < 8
        idle[0].settimeout(5)
        assert idle[0].recv(1) == b"", "the server closes a connection that sends nothing"
        assert threading.active_count() < 40
    finally:
        for sock in idle:
            sock.close()
        server.shutdown()
        server.server_close()
