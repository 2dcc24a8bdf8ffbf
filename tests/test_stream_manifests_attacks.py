"""Attacks on the streaming manifests and the signed streaming index (pipeline.verify's streaming
check, widget.serve's ``load_stream_catalog``), and false alarms an honest streaming job triggers.

Threat model: the attacker can write, delete and rename any file under the output prefix, but does
not know the HMAC key. Each test below fails on the code it was written against and passes once the
hole it names is closed (see the docstrings); the ``guard`` tests pass and keep attacks that are
caught today caught.
"""
from __future__ import annotations

import copy
import hashlib
import json
import shutil

import pytest
from apache_beam.testing.test_stream import TestStream
from apache_beam.transforms.window import TimestampedValue

from pipeline import signing
from pipeline.transforms import widget_docs
from pipeline.transforms.widget_docs import ChainStreamIndexFn, StreamingWidgetIndex
from tests.test_stream import T0, iso, streaming_pipeline
from tests.test_stream_manifests import (newest_by_product, remove_docs, stream_docs, verified_report,
                                         write_stream_output)
from tests.test_widget_docs import TEST_KEY, make_product, make_published, write_run

pytestmark = pytest.mark.slow

KEYS = {TEST_KEY.key_id: TEST_KEY.secret}


class State:
    """A stand-in for a DoFn's ReadModifyWriteState (ChainStreamIndexFn.process called directly)."""
    value = None

    def read(self):
        return self.value

    def write(self, value):
        self.value = value


def catalog_of(prefix):
    from widget.serve import load_stream_catalog
    return load_stream_catalog(str(prefix), KEYS)


def product_p():
    """Product p: 12 reviews, every third a 1-star complaint (r00, r03, r06, r09); and product q."""
    records = [make_published(f"r{i:02d}", "p", 5 if i % 3 else 1, iso(T0 + i),
                              body="Broke in a week." if i % 3 == 0 else "Great.") for i in range(12)]
    other = [make_published("o1", "q", 4, iso(T0))]
    docs = stream_docs(other + records, [make_product("p", records), make_product("q", other)], batches=2)
    return records, other, docs


def write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def index_files(prefix, run_id, paths):
    """The job's real last step (StreamingWidgetIndex) over ``paths``, one bundle each, in order."""
    stream = TestStream()
    for n, path in enumerate(paths):
        stream = stream.add_elements([TimestampedValue(str(path), T0 + 60 * n)]).advance_watermark_to(T0 + 60 * n + 30)
    p = streaming_pipeline()
    p | stream.advance_watermark_to_infinity() | StreamingWidgetIndex(str(prefix), run_id, key=TEST_KEY)
    p.run().wait_until_finish()


# -- findings -------------------------------------------------------------------------------------

def test_a_planted_batch_run_index_does_not_switch_off_the_streaming_check(tmp_path, keyed, capsys):
    """``is_stream_output`` calls a prefix streaming only when it has no ``run_index.json``. Copying
    in any batch run's output signed with the same key (its run_index.json, widget/ and published/
    file, for another product) makes verify check the prefix the batch way: the widget_updates/
    documents and widget_index/ chain are never read, and the batch check does not report verified
    records of products that have no manifest. A complaint is then deleted from published/ and
    verify exits 0. Fix: a prefix with widget_updates/ (or widget_index/) is checked the streaming
    way whatever else is there (and a prefix holding both kinds is reported); the batch check
    reports verified records of products its run index does not list."""
    records, other, docs = product_p()
    write_stream_output(tmp_path, [r for r in records + other if r["review_id"] != "r03"], docs)
    batch = tmp_path.parent / (tmp_path.name + "-batch")
    z = [make_published("z1", "z", 5, iso(T0), run_id="an-old-batch-run")]
    write_run(batch, z, [make_product("z", z, run_id="an-old-batch-run")])
    shutil.copy(batch / signing.RUN_INDEX_FILE, tmp_path / signing.RUN_INDEX_FILE)
    shutil.copytree(batch / "widget", tmp_path / "widget")
    shutil.copy(batch / "published" / "part-00000-of-00001.jsonl", tmp_path / "published" / "part-00000-of-00001.jsonl")
    code, report = verified_report(tmp_path, capsys)
    assert code == 1, json.dumps(report)
    checked = report.get("stream_manifests") or report.get("manifests") or {}
    assert any(m.get("product_id") in ("p", None) for m in checked.get("mismatched", ())), json.dumps(report)


def test_cutting_the_tail_of_an_earlier_runs_chain_is_caught(tmp_path, keyed, capsys):
    """Each run has a chain of its own, and only gaps inside a chain are checked: with a later run
    in the prefix (a job replaced by a new one writing to the same output), the earlier run's tail
    (its last widget_updates file, that file's link, and the records of that window, two complaints
    among them) can be removed and verify exits 0, widget.serve serves the rolled-back product, and
    ``index_signed_at`` shows the later run's fresh link, so the documented "only the end can be cut,
    and signed_at says how recent it is" no longer holds. Fix: a new run's first link names the last
    link of the chains already in the prefix (ChainStreamIndexFn reads them at start-up), or a
    drained run writes a signed closing link, so an earlier chain's end is bound."""
    run_a, run_b = "run-a", "run-b"
    records = [make_published(f"r{i:02d}", "p", 5 if i % 3 else 1, iso(T0 + i),
                              body="Broke in a week." if i % 3 == 0 else "Great.", run_id=run_a) for i in range(12)]
    docs_a = stream_docs(records, [make_product("p", records, run_id=run_a)], batches=2)
    early = [d for d in docs_a if d["manifest"]["review_count"] <= 6]
    late = [d for d in docs_a if d["manifest"]["review_count"] > 6]
    assert early and late
    a1 = "part-20261125T120000Z-20261125T120100Z-ontime000-00000.jsonl"
    a2 = "part-20261125T120100Z-20261125T120200Z-ontime000-00000.jsonl"
    write_jsonl(tmp_path / "published" / a1, records[:6])
    write_jsonl(tmp_path / "published" / a2, records[6:])
    write_jsonl(tmp_path / "widget_updates" / a1, early)
    write_jsonl(tmp_path / "widget_updates" / a2, late)
    index_files(tmp_path, run_a, [tmp_path / "widget_updates" / a1, tmp_path / "widget_updates" / a2])
    # the job is replaced by a new one (a new run id) writing to the same prefix
    q = [make_published(f"q{i}", "q", 4, iso(T0 + 3600 + i), run_id=run_b) for i in range(2)]
    b1 = "part-20261125T130000Z-20261125T130100Z-ontime000-00000.jsonl"
    write_jsonl(tmp_path / "published" / b1, q)
    write_jsonl(tmp_path / "widget_updates" / b1, stream_docs(q, [make_product("q", q, run_id=run_b)]))
    index_files(tmp_path, run_b, [tmp_path / "widget_updates" / b1])
    code, report = verified_report(tmp_path, capsys)
    assert code == 0, report   # the honest output of the two runs verifies
    # the attack: run A's last file, its link and the records of that window removed
    tag_a = hashlib.sha256(run_a.encode("utf-8")).hexdigest()[:12]
    (tmp_path / signing.STREAM_INDEX_DIR / f"{tag_a}-{2:012d}.json").unlink()
    (tmp_path / "widget_updates" / a2).unlink()
    (tmp_path / "published" / a2).unlink()
    code, report = verified_report(tmp_path, capsys)
    assert code == 1, json.dumps(report)
    assert "p" not in catalog_of(tmp_path).docs


@pytest.mark.parametrize("edit", ["json_ld", "complaints_moved_last"])
def test_the_newest_document_as_a_widget_reads_it_is_checked(tmp_path, keyed, capsys, edit):
    """``stream_doc_problem`` checks the document's aggregate, withheld, moderation, and the *set* of
    carried reviews (each equal to its record, ``carried_sha256`` sorted), but neither its
    ``json_ld`` (nor is that signed) nor the order of ``reviews``. ``json_ld``: the newest
    document's AggregateRating (what search engines show) raised from 3.67 to 4.9 and its marked-up
    1-star reviews turned into 5-star praise. ``complaints_moved_last``: the 1-star reviews moved to
    the end of the list a widget pages through (most recent first), off its first page. verify
    exits 0 either way ("it must show the numbers it signed"; "carried reviews must be those records
    as displayed"). Fix: require the document's json_ld and reviews (in order) to equal those
    rebuilt from the verified records (``display.build_json_ld``, ``most_recent_first``), or
    compare the whole document with the one rebuilt."""
    records, other, docs = product_p()
    newest = newest_by_product(docs)["p"]
    if edit == "json_ld":
        assert newest["json_ld"]["aggregateRating"]["ratingValue"] == 3.67
        newest["json_ld"]["aggregateRating"]["ratingValue"] = 4.9
        for review in newest["json_ld"]["review"]:
            if review["reviewRating"]["ratingValue"] == 1:
                review["reviewRating"]["ratingValue"], review["reviewBody"] = 5, "Great."
    else:
        assert [r["rating"] for r in newest["reviews"]][:4] == [5, 5, 1, 5]
        newest["reviews"].sort(key=lambda r: r["rating"] == 1)   # stable: the rest keep their order
    write_stream_output(tmp_path, records + other, docs)
    code, report = verified_report(tmp_path, capsys)
    assert code == 1, json.dumps(report)
    assert {m["product_id"] for m in report["stream_manifests"]["mismatched"]} == {"p"}, json.dumps(report)


@pytest.mark.parametrize("reviews", [5, "x", [{}], [1], [{"review_id": "r11"}]],
                         ids=["int", "str", "empty-entry", "int-entry", "no-signature"])
def test_hostile_carried_reviews_are_reported_not_a_crash(tmp_path, keyed, capsys, reviews):
    """The newest document's ``reviews`` (unsigned) replaced by a non-list or by entries without
    review_id/signature: ``stream_doc_problem`` computes ``reviews_digest`` over them and raises
    (TypeError/KeyError), so ``python -m pipeline.verify`` dies with a traceback and widget.serve
    cannot start (every product of the output unavailable). Fix: treat anything but a list of
    objects with string review_id and signature as a problem of that product."""
    records, other, docs = product_p()
    newest_by_product(docs)["p"]["reviews"] = reviews
    write_stream_output(tmp_path, records + other, docs)
    code, report = verified_report(tmp_path, capsys)
    assert code == 1 and {m["product_id"] for m in report["stream_manifests"]["mismatched"]} == {"p"}, json.dumps(report)
    catalog = catalog_of(tmp_path)
    assert "p" in catalog.unavailable and "q" in catalog.docs


@pytest.mark.parametrize("where", ["index_link", "widget_updates", "published"])
def test_deeply_nested_json_is_reported_not_a_crash(tmp_path, keyed, capsys, where):
    """A file under the prefix holding deeply nested JSON (``[[[[...]]]]``): ``json.loads`` raises
    RecursionError, which neither ``read_stream_index`` nor ``read_json_lines`` catch (they catch
    ValueError), so verify dies with a traceback and widget.serve cannot start. Fix: catch
    RecursionError (or bound the nesting before parsing) and report the file or line as malformed."""
    records, other, docs = product_p()
    write_stream_output(tmp_path, records + other, docs)
    bomb = "[" * 100_000 + "]" * 100_000
    if where == "index_link":
        (tmp_path / signing.STREAM_INDEX_DIR / f"{99:012d}.json").write_text(bomb)
    else:
        with open(tmp_path / where / "part-a.jsonl", "a", encoding="utf-8") as handle:
            handle.write('{"a": ' + bomb + "}\n")
    code, report = verified_report(tmp_path, capsys)
    assert code == 1 and report["malformed"] >= 1, json.dumps(report)
    catalog_of(tmp_path)   # reports, never raises


def test_a_review_published_twice_under_one_id_verifies(tmp_path, keyed, capsys):
    """False alarm. A review id resent after ``--redelivery_retention_days`` is decided and
    published again (README, *Exactly-once effect*): two signed records with one id. The job's
    digest and product totals count both, and WidgetDocFn's document carries both (its bag keeps
    the first), but ``stream_doc_problem`` indexes the verified records by review id (``by_id``),
    so one carried entry never equals "its" record: the honest output fails verify and the product
    is refused (409). Fix: match carried entries against the records as a multiset, e.g. keyed by
    (review_id, signature)."""
    first = make_published("dup", "p", 1, iso(T0), body="Broke in a week.")
    others = [make_published(f"o{i}", "p", 5, iso(T0 + 10 + i)) for i in range(3)]
    resent = make_published("dup", "p", 1, iso(T0), body="Broke in a week, and support never answered.")
    published = [first] + others + [resent]
    docs = stream_docs(published, [make_product("p", published)])
    # as the job writes them: the resend, months later, in a later window's file
    write_stream_output(tmp_path, published, docs)
    for path in (tmp_path / "published").glob("*.jsonl"):
        path.unlink()
    write_jsonl(tmp_path / "published" / "part-20261125T120000Z-20261125T120100Z-ontime000-00000.jsonl", [first] + others)
    write_jsonl(tmp_path / "published" / "part-20270301T120000Z-20270301T120100Z-ontime000-00000.jsonl", [resent])
    code, report = verified_report(tmp_path, capsys)
    assert code == 0, json.dumps(report)
    catalog = catalog_of(tmp_path)
    assert "p" in catalog.docs, catalog.unavailable
    assert catalog.docs["p"]["aggregate"]["review_count"] == 5


def test_a_windows_path_links_the_file_by_its_name(tmp_path, keyed, capsys, monkeypatch):
    """False alarm. StreamingWidgetIndex accepts a written file's path with backslashes (its filter
    replaces them, as verify does when it names a file), but ChainStreamIndexFn names the file in
    the link with ``path.rsplit("/", 1)[-1]``: on Windows (``C:\\out\\widget_updates\\part-….jsonl``)
    the link names the whole path, so every document is "not in the signed index" and the honest
    output never verifies. Fix: take the name after the last ``/`` or ``\\``."""
    records, other, docs = product_p()
    write_stream_output(tmp_path, records + other, docs, links=False)
    real = widget_docs.read_json_lines
    monkeypatch.setattr(widget_docs, "read_json_lines",
                        lambda path, on_error=None: real(path.replace("\\", "/"), on_error=on_error))

    fn, state = ChainStreamIndexFn(str(tmp_path), "widget-test", key=TEST_KEY), State()
    fn.setup()
    for part in ("part-b.jsonl", "part-a.jsonl"):
        list(fn.process(("widget_index", "\\".join([str(tmp_path), "widget_updates", part])), last=state))
    links = [json.loads(p.read_text()) for p in sorted((tmp_path / signing.STREAM_INDEX_DIR).glob("*.json"))]
    assert sorted(link["file"] for link in links) == ["part-a.jsonl", "part-b.jsonl"], links
    code, report = verified_report(tmp_path, capsys)
    assert code == 0, json.dumps(report)


def test_a_transient_read_error_does_not_sign_an_empty_link(tmp_path, keyed, capsys, monkeypatch):
    """False alarm. ChainStreamIndexFn reads the written file back with ``on_error=lambda *a: None``:
    a transient read error (an OSError from the object store) is swallowed and the link is signed
    listing *no* documents, the chain moves on, and the file's documents are "not in the signed
    index" for good. Fix: let a read error fail the bundle (the runner retries it; the state moves
    on only when it commits), never sign a link over a file that could not be read."""
    records, other, docs = product_p()
    write_stream_output(tmp_path, records + other, docs, links=False)
    from pipeline import files
    real_open, failed = files.FileSystems.open, []

    def flaky_open(path, *args, **kwargs):
        if "widget_updates" in str(path) and not failed:
            failed.append(path)
            raise OSError("503 Service Unavailable (transient)")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(files.FileSystems, "open", flaky_open)

    fn, state = ChainStreamIndexFn(str(tmp_path), "widget-test", key=TEST_KEY), State()
    fn.setup()
    for part in ("part-b.jsonl", "part-a.jsonl"):
        element = ("widget_index", str(tmp_path / "widget_updates" / part))
        for _attempt in range(3):   # what the runner does: a bundle that raised is retried
            try:
                list(fn.process(element, last=state))
                break
            except Exception:  # noqa: BLE001
                continue
    assert failed
    code, report = verified_report(tmp_path, capsys)
    assert code == 0, json.dumps(report)


# -- guards: attacks tried that are caught today ----------------------------------------------------

@pytest.mark.parametrize("attack", ["duplicated_record_line", "doc_moved_to_other_file", "other_runs_output_added",
                                    "newest_doc_line_duplicated_edited",
                                    "complaint_replaced_by_other_products_record"])
def test_guard_attacks_caught_today(tmp_path, keyed, capsys, attack):
    records, other, docs = product_p()
    published = records + other
    newest = newest_by_product(docs)["p"]
    if attack == "duplicated_record_line":
        published = published + [records[1]]                 # a 5-star record counted twice
    elif attack == "complaint_replaced_by_other_products_record":
        published = [r for r in published if r["review_id"] != "r03"] + [other[0]]
    write_stream_output(tmp_path, published, docs)
    if attack == "doc_moved_to_other_file":
        remove_docs(tmp_path, lambda d: d is not newest and d["manifest"]["signature"] != newest["manifest"]["signature"])
        with open(tmp_path / "widget_updates" / "part-z.jsonl", "w") as handle:
            handle.write(json.dumps(newest) + "\n")
    elif attack == "other_runs_output_added":
        old = [make_published(f"x{i}", "p", 5, iso(T0 + i), run_id="old-run") for i in range(2)]
        other_prefix = tmp_path.parent / (tmp_path.name + "-old")
        write_stream_output(other_prefix, old, stream_docs(old, [make_product("p", old, run_id="old-run")]))
        for folder in ("published", "widget_updates"):
            for path in (other_prefix / folder).glob("*.jsonl"):
                shutil.copy(path, tmp_path / folder / ("old-" + path.name))
    elif attack == "newest_doc_line_duplicated_edited":
        forged = copy.deepcopy(newest)
        forged["aggregate"]["average_rating"] = 4.9
        for path in (tmp_path / "widget_updates").glob("*.jsonl"):
            if newest["manifest"]["signature"] in path.read_text():
                path.write_text(json.dumps(forged) + "\n" + path.read_text())
    code, report = verified_report(tmp_path, capsys)
    assert code == 1, json.dumps(report)
    assert "p" in {m["product_id"] for m in report["stream_manifests"]["mismatched"]} or any(
        m["product_id"] is None for m in report["stream_manifests"]["mismatched"]), json.dumps(report)
    catalog = catalog_of(tmp_path)
    assert "p" not in catalog.docs
