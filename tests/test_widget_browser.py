"""The widget in a real browser: Debian's Chromium driven by playwright-core, against widget/serve.py.

Set-up is the test's own: Chromium from Debian's ``chromium`` package (apt-get, as root) when
/usr/bin/chromium is missing, a CJK font (Debian's ``fonts-noto-cjk``) when fontconfig knows none,
and ``playwright-core`` (pinned in widget/browser/package.json and its lock file) from the npm
registry with ``npm ci``; never a browser download. If any cannot be installed the tests fail with
the reason (they do not skip). Screenshots go to test-artifacts/ (``widget-<locale>.png``: the
example page in each locale with Japanese, Korean, Chinese, English and Arabic reviews).
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
    if not _cjk_fonts():
        err = _apt_install("fonts-noto-cjk")
        if not _cjk_fonts():
            pytest.fail(f"a CJK font is needed so the browser tests see Japanese, Korean and Chinese text "
                        f"instead of empty boxes, and none could be installed (apt-get install fonts-noto-cjk): {err}")
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


def _cjk_fonts():
    """The fontconfig families that cover Japanese, Korean and Chinese (all three needed)."""
    if not shutil.which("fc-list"):
        return set()
    found = None
    for lang in ("ja", "ko", "zh-cn", "zh-tw"):
        res = _run(["fc-list", f":lang={lang}", "family"], timeout=60)
        families = {f.strip() for line in res.stdout.splitlines() for f in line.split(",") if f.strip()}
        found = families if found is None else found & families
    return found or set()


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


def drive(url, steps, bypass_csp=False, **options):
    """Runs the steps in a fresh Chromium profile; options: locale (browser language), htmlLang, waitState."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        plan = {"url": url, "steps": steps, "bypassCSP": bypass_csp, "userDataDir": profile, "chromium": CHROMIUM,
                **options}
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
    widget's own defence stands in the way). Then, as an attacker with write access to the files:
    one record of product "tampered" altered after signing, and a record signed by an unknown key
    added to product "hostile"."""
    from pipeline import signing
    hostile = make_published("xss-1", "hostile", 1, "2024-06-03T00:00:00Z", body=HOSTILE_BODY,
                             title='<b onmouseover="window.__pwned=4">bold</b>', labels=[VERIFIED])
    fine = make_published("fine-1", "hostile", 4, "2024-06-01T00:00:00Z", body="Solid & quiet <3")
    tampered = make_published("tampered-1", "tampered", 1, "2024-06-04T00:00:00Z", body="Stopped working.")
    kept = make_published("kept-1", "tampered", 2, "2024-06-02T00:00:00Z", body="Meh.")
    foreign = make_published("foreign-1", "hostile", 5, "2024-06-05T00:00:00Z", body="Unknown signer.",
                             key=signing.SigningKey("k-unknown", b"not-our-key-but-long-enough-32-bytes"))
    prefix = write_run(tmp_path_factory.mktemp("hostile") / "run", [hostile, fine, tampered, kept],
                       [make_product("hostile", [hostile, fine]), make_product("tampered", [tampered, kept])])
    altered = {**tampered, "rating": 5, "body": "Amazing!!!"}
    path = next((prefix / "published").glob("*.jsonl"))
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in (hostile, fine, altered, kept, foreign)),
                    encoding="utf-8")
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


def test_records_that_fail_verification_are_never_displayed(hostile_server):
    out = drive(f"{hostile_server.url}/example.html?product_id=hostile", [{"do": "snapshot"}])
    snap = out["snapshots"][0]
    assert [r["id"] for r in snap["reviews"]] == ["xss-1", "fine-1"]   # most recent first
    assert "Unknown signer." not in snap["visibleText"]
    assert snap["reviewCount"] == "2 reviews"
    assert snap["histogram"] == {"1": 1, "2": 0, "3": 0, "4": 1, "5": 0}
    (ld,) = snap["jsonld"]
    assert ld["aggregateRating"]["reviewCount"] == 2
    assert all(r["reviewBody"] != "Unknown signer." for r in ld["review"])


def test_a_product_whose_files_do_not_match_its_manifest_is_unavailable(hostile_server):
    out = drive(f"{hostile_server.url}/example.html?product_id=tampered", [{"do": "snapshot"}], waitState="error")
    snap = out["snapshots"][0]
    assert snap["state"] == "error" and snap["error"] == "HTTP 409"
    assert "Amazing!!!" not in snap["visibleText"] and "Meh." not in snap["visibleText"]
    assert snap["visibleText"].strip() == catalogue("en")["unavailable"]


def test_server_logged_the_records_it_dropped(hostile_server):
    log = "".join(hostile_server.log)
    assert "signature check FAILED" in log
    assert "'tampered-1'" in log and "'foreign-1'" in log
    assert "'xss-1'" not in log and "'fine-1'" not in log
    assert "NOT served as verified: product_id='tampered'" in log


# ---- languages -------------------------------------------------------------------------------

LOCALES = ("en", "ja", "ko", "zh-Hans", "zh-Hant")
I18N = ROOT / "widget" / "static" / "i18n"
# Intl.DateTimeFormat(locale, {year: "numeric", month: "long", day: "numeric"}) of 2024-06-12 (CLDR).
NEWEST_DATE = {"en": "June 12, 2024", "ja": "2024年6月12日", "ko": "2024년 6월 12일",
               "zh-Hans": "2024年6月12日", "zh-Hant": "2024年6月12日"}
CJK_REVIEWS = [  # (id, language, rating, title, body, labels), newest first, one a day from 2024-06-12
    ("ja-1", "ja", 5, "静かで使いやすい", "音がとても静かで、毎朝のコーヒーが楽しみになりました。", "verified"),
    ("ja-2", "ja", 1, None, "三日で壊れました。問い合わせにも返事がなく、とても残念です。二度と買いません。", "verified"),
    ("ko-1", "ko", 4, "만족합니다", "배송이 빠르고 소리가 조용해요. 다만 세척이 조금 번거롭습니다.", "verified+incentivized"),
    ("zh-hans-1", "zh-Hans", 3, None, "研磨很均匀，但是噪音比想象的大。", "syndicated"),
    ("zh-hant-1", "zh-Hant", 4, "值得購買", "研磨很均勻，清潔也方便。", "employee"),
    ("ko-2", "ko", 2, None, "두 달 만에 모터 소리가 커졌어요.", ""),
    ("en-1", "en", 1, None, "Stopped working after a week. <b>Not</b> bold & not \"escaped\".", ""),
    ("ar-1", "ar", 3, None, "المنتج جيد ولكن التوصيل كان بطيئا جدا.", ""),
    ("zh-hans-2", "zh-Hans", 5, None, "非常好用，推荐！", ""),
    ("en-2", "en", 5, "Great", "Grinds evenly and quietly.", "verified"),
    ("ja-3", "ja", 4.5, None, "コスパが良いです。", ""),
    ("ja-4", "ja", 2, None, "少し重いです。", ""),
]
CJK_WITHHELD = {"duplicate_spam": 3, "personal_data_redacted": 1, "suspected_fake": 2}


def catalogue(locale):
    return json.loads((I18N / f"{locale}.json").read_text(encoding="utf-8"))


def t(locale, key, **args):
    """What the widget should show: the catalogue message formatted by the same ICU subset."""
    from pipeline.i18n import format_message
    return format_message(catalogue(locale)[key], args, locale)


def _labels(spec):
    from tests.test_widget_docs import EMPLOYEE, INCENTIVIZED, SYNDICATED
    table = {"verified": VERIFIED, "incentivized": INCENTIVIZED, "syndicated": SYNDICATED, "employee": EMPLOYEE}
    return [table[x] for x in spec.split("+") if x]


@pytest.fixture(scope="module")
def cjk_run(tmp_path_factory):
    published = [make_published(rid, "grinder-cjk", rating, f"2024-06-{12 - i:02d}T12:00:00Z", body=body, title=title,
                                labels=_labels(labels), language=lang)
                 for i, (rid, lang, rating, title, body, labels) in enumerate(CJK_REVIEWS)]
    prefix = write_run(tmp_path_factory.mktemp("cjk") / "run", published,
                       [make_product("grinder-cjk", published, CJK_WITHHELD)])
    return prefix, published


@pytest.fixture(scope="module")
def cjk_server(cjk_run, browser_tools):
    server = Server(cjk_run[0], env={"REVIEW_SIGNING_KEY": TEST_KEY.secret.decode(),
                                     "REVIEW_SIGNING_KEY_ID": TEST_KEY.key_id})
    yield server
    server.stop()


def _english_ui_strings():
    """English catalogue texts without placeholders: none may show in another locale."""
    return [v for k, v in catalogue("en").items()
            if "{" not in v and len(v) >= 4 and k not in ("language_name", "list_separator")]


def _served_doc(server, product_id):
    import urllib.request
    with urllib.request.urlopen(f"{server.url}/api/reviews?product_id={product_id}", timeout=10) as resp:
        return json.loads(resp.read())


@pytest.mark.parametrize("locale", LOCALES)
def test_widget_in_each_locale_by_data_locale_attribute(cjk_server, cjk_run, locale):
    """?locale= makes the example page set data-locale: every widget word is the catalogue's, the reviews
    are untouched (text, own lang, dir=auto), and the JSON-LD does not change with the language."""
    _, published = cjk_run
    shot = ARTIFACTS / f"widget-{locale}.png"
    out = drive(f"{cjk_server.url}/example.html?product_id=grinder-cjk&locale={locale}",
                [{"do": "open_moderation"}, {"do": "snapshot"}, {"do": "screenshot", "path": str(shot)}])
    assert out["pageErrors"] == [], out["pageErrors"]
    snap = out["snapshots"][0]
    assert snap["dataLocale"] == locale and snap["uiLocale"] == locale and snap["rootLang"] == locale

    n, withheld = len(published), sum(CJK_WITHHELD.values())
    average = sum(r["rating"] for r in published) / n
    assert snap["heading"] == t(locale, "heading")
    assert snap["average"] == t(locale, "average", average=f"{average:.1f}")
    assert snap["reviewCount"] == t(locale, "review_count", count=n)
    assert snap["histogramLabels"] == [t(locale, "histogram_star", stars=s) for s in (5, 4, 3, 2, 1)]
    assert snap["histogramNote"] == t(locale, "histogram_note")
    items = [t(locale, "not_shown_item", count=CJK_WITHHELD[code], reason=t(locale, f"reason_{code}"))
             for code in sorted(CJK_WITHHELD)]
    assert snap["notShown"] == t(locale, "not_shown", count=withheld,
                                 reasons=catalogue(locale)["list_separator"].join(items))
    assert snap["notShownCount"] == withheld
    # The disclosure, statement by statement.
    assert snap["moderationTitle"] == t(locale, "moderation_title")
    expected_lines = {key: t(locale, key) for key in ("moderation_neutral", "moderation_verified", "moderation_badges",
                                                      "moderation_order", "moderation_language",
                                                      "moderation_automated_not_used")}
    expected_lines["moderation_policy"] = t(locale, "moderation_policy", id="minimal-publish-all", version="0.1.0")
    assert snap["moderationLines"] == expected_lines
    assert t(locale, "badge_verified_purchase") in snap["moderationLines"]["moderation_verified"]
    # Sorting, paging.
    assert snap["sortLabel"] == t(locale, "sort_label")
    assert snap["sortOptions"] == [t(locale, f"sort_{k}") for k in ("recent", "rating_desc", "rating_asc")]
    assert (snap["prevText"], snap["nextText"]) == (t(locale, "page_prev"), t(locale, "page_next"))
    assert snap["pageInfo"] == t(locale, "page_info", page=1, pages=2)
    # The reviews: never translated or altered; their own language; dates through Intl.
    source = {r["review_id"]: r for r in published}
    assert [r["id"] for r in snap["reviews"]] == [x[0] for x in CJK_REVIEWS[:10]]
    for r in snap["reviews"]:
        assert r["body"] == source[r["id"]]["body"] and r["title"] == source[r["id"]]["title"]
        assert r["lang"] == source[r["id"]]["language"]
        assert r["bodyDir"] == "auto" and (r["title"] is None or r["titleDir"] == "auto")
        assert r["body"] in snap["visibleText"]
        assert r["ratingText"] == t(locale, "rating_short", rating=source[r["id"]]["rating"])
    assert snap["reviews"][0]["dateText"] == NEWEST_DATE[locale]
    badges = {r["id"]: r["badgeTexts"] for r in snap["reviews"]}
    assert badges["ko-1"] == [t(locale, "badge_verified_purchase"), t(locale, "badge_incentivized")]
    assert badges["zh-hans-1"] == [t(locale, "badge_syndicated_partner", partner="PartnerShop")]
    assert badges["zh-hant-1"] == [t(locale, "badge_employee")]
    if locale != "en":
        leaked = [s for s in _english_ui_strings() if s in snap["visibleText"]]
        assert not leaked, leaked
    # JSON-LD: language-neutral, the same in every locale, inLanguage per review.
    (ld,) = snap["jsonld"]
    served = _served_doc(cjk_server, "grinder-cjk")["json_ld"]
    assert ld == {**served, "name": "grinder-cjk"}
    own = [p for p in published if p["review_id"] != "zh-hans-1"]   # the syndicated one is not marked up
    assert [(r["reviewBody"], r.get("inLanguage")) for r in ld["review"]] == [(p["body"], p["language"]) for p in own][:10]
    assert shot.exists() and shot.stat().st_size > 20_000


def test_a_right_to_left_review_keeps_the_layout(cjk_server):
    out = drive(f"{cjk_server.url}/example.html?product_id=grinder-cjk&locale=ja", [{"do": "snapshot"}])
    reviews = {r["id"]: r for r in out["snapshots"][0]["reviews"]}
    arabic = reviews["ar-1"]
    assert arabic["bodyDirection"] == "rtl" and arabic["headDirection"] == "ltr"
    assert all(r["bodyDirection"] == "ltr" for rid, r in reviews.items() if rid != "ar-1")
    assert arabic["bodyRect"] == reviews["ja-1"]["bodyRect"], "the same box as every other review"


@pytest.mark.parametrize("html_lang, data_locale, expected", [
    ("ko", None, "ko"),
    ("zh-TW", None, "zh-Hant"),
    ("zh-CN", None, "zh-Hans"),
    ("ja-JP", None, "ja"),
    ("ko", "ja", "ja"),            # data-locale wins over <html lang>
    ("ko", "fr", "ko"),            # an unsupported data-locale falls through to <html lang>
])
def test_locale_from_html_lang(cjk_server, html_lang, data_locale, expected):
    query = f"&locale={data_locale}" if data_locale else ""
    out = drive(f"{cjk_server.url}/example.html?product_id=grinder-cjk{query}", [{"do": "snapshot"}],
                htmlLang=html_lang, locale="en-US")
    snap = out["snapshots"][0]
    assert snap["htmlLang"] == html_lang
    assert snap["uiLocale"] == expected and snap["heading"] == t(expected, "heading")


@pytest.mark.parametrize("browser, html_lang, expected", [
    ("ja-JP", "", "ja"),
    ("ko-KR", "", "ko"),
    ("zh-TW", "", "zh-Hant"),
    ("zh-CN", "", "zh-Hans"),
    ("fr-FR", "", "en"),           # nothing supported: English
    ("ko-KR", "fr", "ko"),         # an unsupported <html lang> falls through to the browser's languages
])
def test_locale_from_browser_language(cjk_server, browser, html_lang, expected):
    out = drive(f"{cjk_server.url}/example.html?product_id=grinder-cjk", [{"do": "snapshot"}],
                htmlLang=html_lang, locale=browser)
    snap = out["snapshots"][0]
    assert snap["navigatorLanguages"][0] == browser and snap["htmlLang"] == (html_lang or None)
    assert snap["uiLocale"] == expected and snap["heading"] == t(expected, "heading")
    assert snap["reviewCount"] == t(expected, "review_count", count=len(CJK_REVIEWS))


def test_server_locale_option_sets_data_locale(cjk_run, browser_tools):
    """What `make widget-demo LOCALE=zh-Hans` runs: serve.py --locale."""
    server = Server(cjk_run[0], "--locale", "zh-Hans", env={"REVIEW_SIGNING_KEY": TEST_KEY.secret.decode(),
                                                            "REVIEW_SIGNING_KEY_ID": TEST_KEY.key_id})
    try:
        out = drive(f"{server.url}/example.html?product_id=grinder-cjk", [{"do": "snapshot"}], locale="en-US")
    finally:
        server.stop()
    snap = out["snapshots"][0]
    assert snap["dataLocale"] == "zh-Hans" and snap["uiLocale"] == "zh-Hans"
    assert snap["heading"] == t("zh-Hans", "heading")


@pytest.mark.parametrize("locale", ["ja", "en"])
def test_reviews_unavailable_state_is_localized(cjk_server, locale):
    out = drive(f"{cjk_server.url}/example.html?product_id=no-such-product&locale={locale}", [{"do": "snapshot"}],
                waitState="error")
    snap = out["snapshots"][0]
    assert snap["state"] == "error" and snap["visibleText"].strip() == t(locale, "unavailable")
    assert snap["error"] == "HTTP 404"


def test_demo_page_in_japanese(demo_run, demo_server):
    """The demo run (Japanese, Korean and English reviews; detectors that ran) in Japanese."""
    product_id, by_product = _pick_product(demo_run.records("published"))
    mine = by_product[product_id]
    shot = ARTIFACTS / "widget-demo-ja.png"
    out = drive(f"{demo_server.url}/example.html?product_id={product_id}&locale=ja",
                [{"do": "open_moderation"}, {"do": "snapshot"}, {"do": "screenshot", "path": str(shot)}])
    assert out["pageErrors"] == []
    snap = out["snapshots"][0]
    assert snap["uiLocale"] == "ja" and snap["reviewCount"] == t("ja", "review_count", count=len(mine))
    doc = _served_doc(demo_server, product_id)
    scored = [d["id"] for d in doc["moderation"]["detectors"] if d["status"] == "scored"]
    assert scored, "the demo run scores reviews with its detectors"
    assert snap["moderationLines"]["moderation_automated_used"] == t(
        "ja", "moderation_automated_used",
        detectors=catalogue("ja")["list_separator"].join(t("ja", f"detector_{d}") for d in scored))
    bodies = {r["review_id"]: r["body"] for r in mine}
    assert all(r["body"] == bodies[r["id"]] for r in snap["reviews"])
    assert not [s for s in _english_ui_strings() if s in snap["visibleText"]]
    assert shot.exists()
