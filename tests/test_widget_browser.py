"""The widget in a real browser: Debian's Chromium driven by playwright-core, against widget/serve.py.

Set-up is the test's own: Chromium from Debian's ``chromium`` package (apt-get, as root) when
/usr/bin/chromium is missing, and ``playwright-core`` (pinned in widget/browser/package.json and
its lock file) from the npm registry with ``npm ci``; never a browser download. If either cannot
be installed the tests fail with the reason (they do not skip). Screenshots go to test-artifacts/.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import ARTIFACTS, ROOT
from tests.test_widget_docs import (TEST_KEY, VERIFIED, make_product, make_published, write_run)

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
BROWSER_DIR = ROOT / "widget" / "browser"
DRIVER = BROWSER_DIR / "drive.mjs"


def _run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def _apt_install(*packages):
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "not root or no apt-get"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    update = _run(["apt-get", "update", "-q"], env=env, timeout=600)
    res = _run(["apt-get", "install", "-y", "-q", *packages], env=env, timeout=900)
    return None if res.returncode == 0 else (update.stderr[-1000:] + res.stderr[-2000:])


@pytest.fixture(scope="session")
def browser_tools():
    """Makes sure Chromium, Node.js and playwright-core are here; fails (never skips) if they cannot be."""
    if not Path(CHROMIUM).exists():
        err = _apt_install("chromium")
        if not Path(CHROMIUM).exists():
            pytest.fail(f"Chromium is needed for the widget browser tests and could not be installed "
                        f"(apt-get install chromium): {err}")
    if not shutil.which("node") or not shutil.which("npm"):
        err = _apt_install("nodejs", "npm")
        if not shutil.which("node") or not shutil.which("npm"):
            pytest.fail(f"Node.js and npm are needed to drive Chromium with playwright-core: {err}")
    pinned = json.loads((BROWSER_DIR / "package.json").read_text())["dependencies"]["playwright-core"]
    installed = BROWSER_DIR / "node_modules" / "playwright-core" / "package.json"
    if not installed.exists() or json.loads(installed.read_text())["version"] != pinned:
        res = _run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=BROWSER_DIR, timeout=600)
        if res.returncode != 0 or not installed.exists():
            pytest.fail(f"could not install playwright-core {pinned} from the npm registry "
                        f"(npm ci in {BROWSER_DIR}): {res.stderr[-2000:]}")
    ARTIFACTS.mkdir(exist_ok=True)
    return True


class Server:
    """widget/serve.py in its own process on a free localhost port."""

    def __init__(self, output, *args, env=None):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "widget.serve", "--output", str(output), "--port", "0", *args],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **(env or {})})
        line = self.proc.stdout.readline()
        if not line.startswith("serving "):
            self.proc.kill()
            raise AssertionError(f"server did not start: {line!r} {self.proc.stderr.read()[-3000:]}")
        self.url = line.split()[1].rstrip("/")
        self.log = []   # the server's stderr (its logging), read as it comes
        self._reader = threading.Thread(target=lambda: self.log.extend(self.proc.stderr), daemon=True)
        self._reader.start()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def drive(url, steps, bypass_csp=False):
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        plan = {"url": url, "steps": steps, "bypassCSP": bypass_csp, "userDataDir": profile, "chromium": CHROMIUM}
        res = _run(["node", str(DRIVER), json.dumps(plan)], cwd=ROOT, timeout=300)
    assert res.returncode == 0, f"browser driver failed: {res.stderr[-3000:]}"
    return json.loads(res.stdout)


@pytest.fixture(scope="module")
def demo_server(demo_run, browser_tools):
    server = Server(demo_run.prefix, "--allow-demo-key")
    yield server
    server.stop()


def _pick_product(published):
    """The demo product with the most kinds of badges, then the most reviews."""
    by_product = {}
    for p in published:
        by_product.setdefault(p["product_id"], []).append(p)
    return max(by_product, key=lambda pid: (len({x["code"] for r in by_product[pid] for x in r["labels"]}),
                                            len(by_product[pid]), pid)), by_product


def test_demo_page_counts_badges_negative_reviews_and_order(demo_run, demo_server):
    from pipeline.display import instant, most_recent_first
    published = demo_run.records("published")
    product_id, by_product = _pick_product(published)
    mine = by_product[product_id]
    product = next(p for p in demo_run.records("products") if p["product_id"] == product_id)
    expected_recent = [r["review_id"] for r in most_recent_first(mine)]
    assert len(mine) > 10, "the chosen product should need several pages"

    shot = ARTIFACTS / "widget-demo.png"
    out = drive(f"{demo_server.url}/example.html?product_id={product_id}", [
        {"do": "snapshot"}, {"do": "screenshot", "path": str(shot)},
        {"do": "all_pages"},
        {"do": "sort", "value": "rating_desc"}, {"do": "snapshot"},
        {"do": "sort", "value": "rating_asc"}, {"do": "snapshot"},
    ])
    assert out["pageErrors"] == [], out["pageErrors"]
    first, by_rating_desc, by_rating_asc = out["snapshots"]

    # Counts and histogram: over all published reviews of the product.
    assert first["reviewCount"] == f"{len(mine)} reviews"
    assert first["histogram"] == product["rating_histogram"]
    assert first["average"] == f"{product['average_rating']:.1f} out of 5"
    assert first["pageInfo"] == f"Page 1 of {-(-len(mine) // 10)}"
    # Default order: most recent first, never by rating.
    assert first["sort"] == "recent"
    assert [r["id"] for r in first["reviews"]] == expected_recent[:10]
    assert [instant(r["createdAt"]) for r in first["reviews"]] == sorted(
        (instant(r["createdAt"]) for r in first["reviews"]), reverse=True)
    # Every review is reachable by paging, negative ones included, each exactly once.
    paged = [r for page in out["pages"] for r in page]
    assert [r["id"] for r in paged] == expected_recent
    negatives = [r["review_id"] for r in mine if r["rating"] <= 2]
    assert negatives and set(negatives) <= {r["id"] for r in paged}
    # Badges: exactly the labels of each shown review.
    labels = {r["review_id"]: sorted(x["code"] for x in r["labels"]) for r in mine}
    for r in first["reviews"] + by_rating_desc["reviews"] + by_rating_asc["reviews"]:
        assert sorted(r["badges"]) == labels[r["id"]], r
    shown_badges = Counter(code for r in mine for code in labels[r["review_id"]])
    assert {"verified_purchase", "syndicated"} <= set(shown_badges)
    # Sorting by rating only on request, both ways; ties most recent first.
    assert by_rating_desc["sort"] == "rating_desc"
    assert [r["rating"] for r in by_rating_desc["reviews"]] == sorted(
        (r["rating"] for r in by_rating_desc["reviews"]), reverse=True)
    assert by_rating_desc["reviews"][0]["rating"] == max(r["rating"] for r in mine)
    assert by_rating_asc["reviews"][0]["rating"] == min(r["rating"] for r in mine)
    assert [r["rating"] for r in by_rating_asc["reviews"]] == sorted(r["rating"] for r in by_rating_asc["reviews"])
    # The moderation note and the JSON-LD block (no syndicated review marked up).
    assert "How we moderate reviews" in first["moderation"] and "Verified purchase" in first["moderation"]
    (ld,) = first["jsonld"]
    syndicated = {r["review_id"] for r in mine if "syndicated" in labels[r["review_id"]]}
    assert ld["aggregateRating"]["reviewCount"] == len(mine) - len(syndicated)
    bodies = {r["body"] for r in mine if r["review_id"] in syndicated} - {r["body"] for r in mine if r["review_id"] not in syndicated}
    assert not bodies & {r["reviewBody"] for r in ld["review"]}
    assert shot.exists() and shot.stat().st_size > 10_000


def test_demo_page_says_how_many_reviews_are_not_shown_and_why(demo_run, demo_server):
    withheld = [p for p in demo_run.records("products") if p["withheld_count"]]
    assert withheld, "the demo sample should withhold some reviews"
    product = withheld[0]
    out = drive(f"{demo_server.url}/example.html?product_id={product['product_id']}",
                [{"do": "snapshot"}, {"do": "screenshot", "path": str(ARTIFACTS / "widget-withheld.png")}])
    snap = out["snapshots"][0]
    assert snap["notShownCount"] == product["withheld_count"]
    n = product["withheld_count"]
    assert snap["notShown"].startswith(f"{n} review{'s' if n != 1 else ''} not shown: ")
    if "empty_after_cleaning" in product["withheld_by_reason"]:
        assert f"{product['withheld_by_reason']['empty_after_cleaning']} no text left after removing markup" in snap["notShown"]


HOSTILE_BODY = ('<img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script> '
                '<iframe src="javascript:window.__pwned=3"></iframe> and a real complaint: it broke.')


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory, browser_tools):
    """A run built by hand: markup the pipeline would have stripped (correctly signed, so only the
    widget's own defence stands in the way), one tampered record and one signed by an unknown key."""
    from pipeline import signing
    hostile = make_published("xss-1", "hostile", 1, "2024-06-03T00:00:00Z", body=HOSTILE_BODY,
                             title='<b onmouseover="window.__pwned=4">bold</b>', labels=[VERIFIED])
    fine = make_published("fine-1", "hostile", 4, "2024-06-01T00:00:00Z", body="Solid & quiet <3")
    tampered = make_published("tampered-1", "hostile", 1, "2024-06-04T00:00:00Z", body="Stopped working.")
    tampered = {**tampered, "rating": 5, "body": "Amazing!!!"}
    foreign = make_published("foreign-1", "hostile", 5, "2024-06-05T00:00:00Z", body="Unknown signer.",
                             key=signing.SigningKey("k-unknown", b"not-our-key"))
    published = [hostile, fine, tampered, foreign]
    prefix = write_run(tmp_path_factory.mktemp("hostile") / "run", published, [make_product("hostile", published)])
    server = Server(prefix, env={"REVIEW_SIGNING_KEY": TEST_KEY.secret.decode(), "REVIEW_SIGNING_KEY_ID": TEST_KEY.key_id})
    yield server
    server.stop()


@pytest.mark.parametrize("bypass_csp", [True, False], ids=["widget-defence-only", "with-csp"])
def test_injected_markup_shows_as_text_and_never_runs(hostile_server, bypass_csp):
    out = drive(f"{hostile_server.url}/example.html?product_id=hostile",
                [{"do": "snapshot"},
                 {"do": "screenshot", "path": str(ARTIFACTS / f"widget-hostile-{'nocsp' if bypass_csp else 'csp'}.png")}],
                bypass_csp=bypass_csp)
    snap = out["snapshots"][0]
    # The side effects did not happen: no handler or script ran, no dialog, no element was created.
    assert out["finalPwned"] is None and snap["pwned"] is None
    assert out["dialogs"] == 0
    assert snap["elementsInsideWidget"] == {"img": 0, "script": 0, "b": 0, "iframe": 0}
    assert not any(u.endswith("/x") for u in out["requests"]), "the <img src=x> was never requested"
    # ...and the markup is there as characters.
    xss = next(r for r in snap["reviews"] if r["id"] == "xss-1")
    assert xss["body"] == HOSTILE_BODY
    assert xss["title"] == '<b onmouseover="window.__pwned=4">bold</b>'
    assert '<img src=x onerror="window.__pwned=1">' in snap["visibleText"]
    assert "<script>window.__pwned=2</script>" in snap["visibleText"]
    fine = next(r for r in snap["reviews"] if r["id"] == "fine-1")
    assert fine["body"] == "Solid & quiet <3"


def test_reviews_whose_signature_fails_are_not_displayed(hostile_server):
    out = drive(f"{hostile_server.url}/example.html?product_id=hostile", [{"do": "snapshot"}])
    snap = out["snapshots"][0]
    assert [r["id"] for r in snap["reviews"]] == ["xss-1", "fine-1"]   # most recent first
    assert "Amazing!!!" not in snap["visibleText"] and "Unknown signer." not in snap["visibleText"]
    assert snap["reviewCount"] == "2 reviews"
    assert snap["histogram"] == {"1": 1, "2": 0, "3": 0, "4": 1, "5": 0}
    assert snap["notShown"] == "2 reviews not shown: 2 could not be verified as unaltered."
    (ld,) = snap["jsonld"]
    assert ld["aggregateRating"]["reviewCount"] == 2
    assert all(r["reviewBody"] not in ("Amazing!!!", "Unknown signer.") for r in ld["review"])


def test_server_logged_the_records_it_dropped(hostile_server):
    log = "".join(hostile_server.log)
    assert "signature check FAILED" in log
    assert "'tampered-1'" in log and "'foreign-1'" in log
    assert "'xss-1'" not in log and "'fine-1'" not in log
