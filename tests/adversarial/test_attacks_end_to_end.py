"""The attacks through the whole batch job (DirectRunner): across runs via the signature store,
backdated and future-dated copies, and what a shopper's widget shows."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import RunOutput, run_pipeline

pytestmark = pytest.mark.slow

HONEST = ("Broke after three days, the handle cracked and the lid stopped closing, support never "
          "answered my emails, I would not buy this kettle again")


def review(review_id, author, body=HONEST, created="2025-03-01T10:00:00Z", rating=1, **extra):
    return json.dumps({"review_id": review_id, "product_id": "kettle", "author_id": author, "rating": rating,
                       "body": body, "created_at": created, **extra})


def write(path: Path, lines) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def by_id(out: RunOutput, name="decisions") -> dict:
    return {r["review_id"]: r for r in out.records(name)}


def test_copies_in_a_later_run_never_displace_the_first_posting(tmp_path):
    import datetime as dt
    store = str(tmp_path / "store")
    # yesterday's honest review (retention counts from the data: the newest review of a run, and a
    # copy's created_at cannot be later than its receipt, so a future date cannot push it away)
    yesterday = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    day1 = write(tmp_path / "in1" / "day1.jsonl", [
        review("orig", "honest", created=yesterday),
        review("other", "someone", body="Lovely kettle, boils fast, quiet, the handle stays cool and it looks good",
               rating=5)])
    out1 = RunOutput(str(tmp_path / "out1"))
    run_pipeline(day1, out1.prefix, "--signature_store", store, "--run_id", "day1")
    assert by_id(out1)["orig"]["decision"] == "publish"
    # Day 2: four accounts repost it, backdated to 2001 and one future-dated to 2099.
    copies = [review(f"copy{i}", f"copier{i}", body=HONEST + "!" * i, created="2001-01-01T00:00:00Z", rating=5)
              for i in range(4)] + [review("copy9", "copier9", body=HONEST + " really", created="2099-01-01T00:00:00Z")]
    day2 = write(tmp_path / "in2" / "day2.jsonl", copies)
    out2 = RunOutput(str(tmp_path / "out2"))
    summary = run_pipeline(day2, out2.prefix, "--signature_store", store, "--run_id", "day2")
    assert summary["conservation"]["ok"]
    decisions = by_id(out2)
    assert set(decisions) == {"copy0", "copy1", "copy2", "copy3", "copy9"}
    for d in decisions.values():
        values = d["signals"]["near_duplicate"]["values"]
        assert values["canonical_review_id"] == "orig" and values["cluster_size"] == 6
        assert values["members_from_earlier_runs"] == 1
        assert d["decision"] == "reject" and d["reasons"][0] == "duplicate_spam"
    # 2001 is a plausible date: kept as given; 2099 is after receipt: clamped and recorded
    assert decisions["copy0"]["created_at"] == "2001-01-01T00:00:00Z"
    future = decisions["copy9"]
    assert future["created_at"] < "2099" and "created_at_adjusted" in future["reasons"]
    assert future["provenance"]["created_at_given"] == "2099-01-01T00:00:00Z"


def test_one_run_campaign_against_an_honest_review(tmp_path):
    lines = [review("orig", "honest", received_at="2025-03-01T10:00:05Z")]
    # copies listed *before* the original in the file and claiming 2001: received later all the same
    lines = [review(f"copy{i}", f"copier{i % 3}", body=HONEST + "!" * i, created="2001-01-01T00:00:00Z",
                    received_at=f"2025-03-0{2 + i % 5}T00:00:00Z", rating=5) for i in range(7)] + lines
    lines += [review("shiny", "fan", body="Gorgeous kettle with a thermometer window and a soft blue light, love it",
                     created="2025-03-03T00:00:00Z", received_at="2025-03-03T00:00:05Z", rating=5),
              review("future", "clock", body="The kettle whistles loudly and the lid is stiff but it works well enough",
                     created="2099-01-01T00:00:00Z", received_at="2025-03-02T00:00:00Z", rating=3)]
    src = write(tmp_path / "in" / "day.jsonl", lines)
    out = RunOutput(str(tmp_path / "out"))
    run_pipeline(src, out.prefix, "--run_id", "camp")
    decisions = by_id(out)
    orig = decisions["orig"]
    assert orig["decision"] == "publish" and orig["reasons"] == ["copied_by_others"]
    assert orig["signals"]["near_duplicate"]["values"]["canonical_by"] == "received_at"
    assert orig["provenance"]["received_at"] == "2025-03-01T10:00:05Z"
    assert all(decisions[f"copy{i}"]["decision"] == "reject" for i in range(7))
    queue = by_id(out, "review_queue")
    assert "orig" in queue and queue["orig"]["decision"] == "publish"  # post-moderation: a look, not a hold
    assert {n["review_id"] for n in queue["orig"]["neighbours"]} == {f"copy{i}" for i in range(7)}
    # the future-dated review is clamped to its receipt, so it cannot top "most recent"
    assert decisions["future"]["created_at"] == "2025-03-02T00:00:00Z"
    from pipeline.display import doc_file_name
    widget = json.loads((Path(out.prefix) / "widget" / doc_file_name("kettle")).read_text())
    order = [r["review_id"] for r in widget["reviews"]]
    assert order.index("shiny") < order.index("future"), order
    assert "orig" in order and not any(r.startswith("copy") for r in order)


def test_a_forged_record_under_an_honest_reviews_id_cannot_bury_it(tmp_path):
    """Principles 1 and 2, through the whole job: a record from another account reuses the honest
    complaint's review_id and is delivered first (earlier in the file). Before, the complaint became
    a ``redelivery`` dead letter and the forged praise was published under its id. Now both are
    decided, each on its own, and the widget shows the complaint."""
    forged = review("r-honest", "attacker", body="Lovely kettle, boils fast, quiet and it looks good in the kitchen",
                    rating=5)
    src = write(tmp_path / "in" / "day.jsonl", [forged, review("r-honest", "honest"),
                                                review("r-honest", "honest")])   # and a plain resend
    out = RunOutput(str(tmp_path / "out"))
    summary = run_pipeline(src, out.prefix, "--run_id", "conflict")
    assert summary["conservation"]["ok"]
    decisions = list(out.records("decisions"))
    complaint = [d for d in decisions if d["author_id"] == "honest"]
    assert len(decisions) == 2 and len(complaint) == 1
    assert complaint[0]["decision"] == "publish" and "review_id_conflict" in complaint[0]["reasons"]
    assert complaint[0]["review_id"].startswith("r-honest#conflict-")
    assert complaint[0]["provenance"]["review_id_given"] == "r-honest"
    dead = list(out.records("dead_letter"))
    assert [(d["error_code"], d["source"]["line"]) for d in dead] == [("redelivery", 3)]
    published = {p["review_id"]: p for p in out.records("published")}
    assert published[complaint[0]["review_id"]]["body"] == HONEST


def test_a_complaint_keeps_the_stores_own_contacts_with_public_contacts(tmp_path):
    """A complaint quoting the store's support line and address, and the author's own number:
    with ``--public_contacts`` the store's are published, the author's is still redacted; a value
    that is neither a phone nor an email stops the job before it starts."""
    body = ("I called 1-800-555-0199 five times and wrote to support@kettle.example, the kettle still "
            "leaks. Call me back on (415) 555-2671")
    src = write(tmp_path / "in" / "day.jsonl", [review("c1", "honest", body=body)])
    out = RunOutput(str(tmp_path / "out"))
    run_pipeline(src, out.prefix, "--run_id", "contacts", "--public_contacts", "+1 800 555 0199, support@kettle.example")
    (published,) = out.records("published")
    assert "1-800-555-0199" in published["body"] and "support@kettle.example" in published["body"]
    assert "(415) 555-2671" not in published["body"] and "[phone removed]" in published["body"]
    from pipeline.run import UsageError
    with pytest.raises(UsageError, match="public_contacts"):
        run_pipeline(src, str(tmp_path / "out2"), "--public_contacts", "kettle.example")


def test_a_review_decided_under_its_conflict_id_is_not_a_copy_of_itself_in_a_later_run(tmp_path):
    """Session 20's attack on the conflict ids, across runs (signature store), both orders: run 1
    decides the honest review under ``R1#conflict-…`` (another account delivered R1 first), run 2
    gets it alone under R1; or run 1 R1 alone, run 2 behind the forged record. The store's copy
    under the other id made the honest review a repeat of itself: rejected as ``duplicate_spam``."""
    forged = review("R1", "attacker", body="Lovely kettle, boils fast, quiet and it looks good in the kitchen",
                    rating=5)
    honest = review("R1", "honest")
    for order, (first, second) in {"conflict first": ([forged, honest], [honest]),
                                   "conflict second": ([honest], [forged, honest])}.items():
        store = str(tmp_path / order / "store")
        runs = []
        for k, lines in enumerate((first, second)):
            src = write(tmp_path / order / f"in{k}" / "day.jsonl", lines)
            out = RunOutput(str(tmp_path / order / f"out{k}"))
            run_pipeline(src, out.prefix, "--signature_store", store, "--run_id", f"run{k}")
            runs.append({d["author_id"]: d for d in out.records("decisions")})
        for decisions in runs:
            assert decisions["honest"]["decision"] == "publish", (order, decisions["honest"]["reasons"])
        assert runs[1]["honest"]["signals"]["near_duplicate"]["values"].get("pattern") != "author_repeat", order


def test_a_forged_record_reusing_a_stored_reviews_id_and_text_is_a_copy_not_the_original(tmp_path):
    """Session 20's second attack: run 1 publishes the honest review R1; in run 2 another account
    delivers R1 with the honest text (first in the input), then the honest review is resent. The
    store's copy of R1 was merged with the forged R1, which took its earlier arrival: the forged
    record became the "first posting" and the honest resend was held as its copy. Alone in run 2,
    the forged record was published as a first posting. Now the store's R1 is the honest author's
    review and the forged one is its copy, in both cases."""
    honest = review("R1", "honest", received_at="2025-03-01T10:00:05Z")
    forged = review("R1", "attacker", received_at="2025-03-03T10:00:05Z")
    # helper round 3: "attacker26855" had the honest author's 2-byte xxh32 tag (found in 27k tries)
    colliding = review("R1", "attacker26855", received_at="2025-03-03T10:00:05Z")
    for k, lines in enumerate(([forged, honest], [forged], [colliding]), 2):
        store = str(tmp_path / f"store{k}")   # each case on a store holding only the honest review
        run_pipeline(write(tmp_path / "in1" / "day.jsonl", [honest]), str(tmp_path / f"out1-{k}"),
                     "--signature_store", store, "--run_id", "run1")
        out = RunOutput(str(tmp_path / f"out{k}"))
        summary = run_pipeline(write(tmp_path / f"in{k}" / "day.jsonl", lines), out.prefix,
                               "--signature_store", store, "--run_id", f"run{k}")
        assert summary["conservation"]["ok"]
        decisions = {d["author_id"]: d for d in out.records("decisions")}
        attacker = decisions.get("attacker") or decisions["attacker26855"]
        assert attacker["decision"] in ("hold_for_review", "reject"), attacker["reasons"]
        assert "suspected_duplicate" in attacker["reasons"] or "duplicate_spam" in attacker["reasons"]
        if "honest" in decisions:
            assert decisions["honest"]["decision"] == "publish", decisions["honest"]["reasons"]


def test_a_later_run_cannot_publish_another_authors_review_under_a_stored_reviews_id(tmp_path):
    """Session 21: run 1 publishes the honest complaint R1. In run 2 another account's praise comes
    under R1 with other text. Nothing flagged the reuse: the praise was published as R1, and a
    storefront mapping our records to its reviews by id would have replaced the complaint. With
    --signature_store the id stays the stored author's: the praise is decided under its
    ``#conflict-`` id with ``review_id_conflict``; the honest author's own resend keeps R1."""
    praise = review("R1", "attacker", body="Lovely kettle, boils fast, quiet and it looks good in the kitchen",
                    rating=5)
    store = str(tmp_path / "store")
    run_pipeline(write(tmp_path / "in1" / "day.jsonl", [review("R1", "honest")]), str(tmp_path / "out1"),
                 "--signature_store", store, "--run_id", "run1")
    out = RunOutput(str(tmp_path / "out2"))
    summary = run_pipeline(write(tmp_path / "in2" / "day.jsonl", [praise, review("R1", "honest")]), out.prefix,
                           "--signature_store", store, "--run_id", "run2")
    assert summary["conservation"]["ok"]
    decisions = {d["author_id"]: d for d in out.records("decisions")}
    assert decisions["honest"]["review_id"] == "R1" and decisions["honest"]["decision"] == "publish"
    assert decisions["attacker"]["review_id"].startswith("R1#conflict-")
    assert "review_id_conflict" in decisions["attacker"]["reasons"]
    published = {r["review_id"]: r for r in out.records("published")}
    assert published["R1"]["body"] == json.loads(review("R1", "honest"))["body"]
    # alone in run 3, the same
    out3 = RunOutput(str(tmp_path / "out3"))
    run_pipeline(write(tmp_path / "in3" / "day.jsonl", [praise]), out3.prefix,
                 "--signature_store", store, "--run_id", "run3")
    (only,) = out3.records("decisions")
    assert only["review_id"].startswith("R1#conflict-") and "review_id_conflict" in only["reasons"]
    assert only["provenance"]["review_id_given"] == "R1"


def test_a_resent_honest_review_keeps_its_place_before_copies_stored_in_the_same_run(tmp_path):
    """Session 21 (helper): run 1 publishes an honest complaint and holds or rejects four copies that
    came after it in the same file. Every review one run stores shares that run's time, and the
    store kept no input position: in run 2 the complaint resent (export overlap) or edited took
    this run's place, sorted after its copies and was **rejected as their copy** (``duplicate_spam``).
    The store now keeps each review's input position and a resent review keeps where it was first seen."""
    victim = review("v0", "victim")
    copies = [review(f"c{i}", f"copier{i}", body=HONEST + "!" * i, rating=5) for i in range(4)]
    for k, resend in enumerate((victim, review("v0", "victim", body=HONEST + " again"))):
        store = str(tmp_path / f"store{k}")
        run_pipeline(write(tmp_path / f"in1-{k}" / "day.jsonl", [victim] + copies), str(tmp_path / f"out1-{k}"),
                     "--signature_store", store, "--run_id", "run1")
        out = RunOutput(str(tmp_path / f"out2-{k}"))
        run_pipeline(write(tmp_path / f"in2-{k}" / "day.jsonl", [resend]), out.prefix,
                     "--signature_store", store, "--run_id", "run2")
        (decision,) = out.records("decisions")
        assert decision["decision"] == "publish", (k, decision["reasons"])
        assert decision["signals"]["near_duplicate"]["values"]["canonical_review_id"] == "v0"


def test_a_retried_run_does_not_take_its_own_first_attempt_for_an_earlier_run(tmp_path):
    """Session 21 (helper): attempt 1 reads a bogus partner file whose record takes an honest review's
    id; the operator removes the file and retries with the same run id. The retry read its own first
    attempt's store file as an earlier run, so the honest review was still a ``review_id_conflict``
    under ``R1#conflict-…`` with no other author left anywhere. A run now skips its own rows."""
    store = str(tmp_path / "store")
    inputs = tmp_path / "in"
    write(inputs / "0-partner.jsonl", [review("R1", "mallory", body="Lovely kettle, five stars", rating=5)])
    write(inputs / "day.jsonl", [review("R1", "victim")])
    run_pipeline(str(inputs / "*.jsonl"), str(tmp_path / "outA"), "--signature_store", store, "--run_id", "dX")
    (inputs / "0-partner.jsonl").unlink()
    out = RunOutput(str(tmp_path / "outB"))
    run_pipeline(str(inputs / "*.jsonl"), out.prefix, "--signature_store", store, "--run_id", "dX")
    (decision,) = out.records("decisions")
    assert decision["review_id"] == "R1" and "review_id_conflict" not in decision["reasons"]


def test_ids_reserved_in_an_earlier_run_do_not_give_copies_an_earlier_place(tmp_path):
    """Session 21 (helper round 2): copier accounts store unrelated reviews of another product under
    ids in run 1; in run 2 they post copies of an honest complaint under those ids, after it. A
    review's stored copy was matched by id and author alone, so each copy took run 1's place: one
    copy became the "first posting" and the complaint was **rejected as its copy**. Only a stored
    copy of the same product whose text still overlaps is the same review now."""
    store = str(tmp_path / "store")
    placeholders = [json.dumps({"review_id": f"c{a}", "product_id": f"other{a}", "author_id": f"copier{a}",
                                "rating": 5, "created_at": "2025-02-20T10:00:00Z",
                                "body": f"Placeholder number {a}, nice mug, good colour and a sturdy handle {'x' * a}"})
                    for a in range(3)]
    run_pipeline(write(tmp_path / "in1" / "day.jsonl", placeholders), str(tmp_path / "out1"),
                 "--signature_store", store, "--run_id", "run1")
    out = RunOutput(str(tmp_path / "out2"))
    copies = [review(f"c{a}", f"copier{a}", rating=5) for a in range(3)]
    run_pipeline(write(tmp_path / "in2" / "day.jsonl", [review("h1", "honest")] + copies), out.prefix,
                 "--signature_store", store, "--run_id", "run2")
    decisions = by_id(out)
    assert decisions["h1"]["decision"] == "publish", decisions["h1"]["reasons"]
    assert all(decisions[f"c{a}"]["signals"]["near_duplicate"]["values"]["canonical_review_id"] == "h1"
               for a in range(3))


def test_a_bridge_text_under_a_reserved_id_does_not_take_an_earlier_place(tmp_path):
    """Session 21 (helper round 3): an account stores unrelated words X on the product in run 1; in
    run 2, after the honest complaint R, it posts X + R under the same id (word-set Jaccard 0.5 with
    each) and three accounts chain it to R. At a 0.5 bar for "the same review" it took run 1's
    place, became R's source, and the complaint was **rejected as its copy**. The bar is now the copy
    threshold (0.8)."""
    words = ("kettle started leaking from the seam within two weeks and the base scorched our "
             "counter while customer support ignored every single message we sent them").split()
    other = ("lovely matte finish fits perfectly beside toaster nice gift idea brother really enjoyed unboxing "
             "wonderful colours elegant design smooth handle pleasant quick delivery arrived").split()[:len(set(words))]
    store = str(tmp_path / "store")
    run_pipeline(write(tmp_path / "in1" / "day.jsonl", [review("a1", "att", body=" ".join(other), rating=5)]),
                 str(tmp_path / "out1"), "--signature_store", store, "--run_id", "run1")
    lines = [review("h1", "honest", body=" ".join(words)), review("a1", "att", body=" ".join(other + words), rating=5)]
    lines += [review(f"m{i}", f"sock{i}", body=" ".join(other[:k] + words), rating=5) for i, k in enumerate((15, 8, 2))]
    out = RunOutput(str(tmp_path / "out2"))
    run_pipeline(write(tmp_path / "in2" / "day.jsonl", lines), out.prefix, "--signature_store", store, "--run_id", "run2")
    decisions = by_id(out)
    assert decisions["h1"]["decision"] == "publish", decisions["h1"]["reasons"]
    assert decisions["h1"]["signals"]["near_duplicate"]["values"]["is_canonical"]


def test_a_resend_keeps_the_order_its_first_run_used_when_only_copies_had_received_at(tmp_path):
    """Session 21 (helper round 3): run 1 decides an honest review without received_at (line 1) before
    two copies that came after it with received_at (input order rules a mixed run). Stored, the
    honest review's first-seen time was run 1's clock, later than the copies' received_at, so its
    resend in run 2 was **held as their copy**. Stored members now keep their run's order, and a time
    inherited from a stored copy without received_at is not a receipt."""
    store = str(tmp_path / "store")
    lines = [review("h1", "honest"),
             review("c1", "cop1", rating=5, received_at="2025-03-01T11:00:00Z"),
             review("c2", "cop2", rating=5, received_at="2025-03-01T11:05:00Z")]
    run_pipeline(write(tmp_path / "in1" / "day.jsonl", lines), str(tmp_path / "out1"),
                 "--signature_store", store, "--run_id", "run1")
    out = RunOutput(str(tmp_path / "out2"))
    run_pipeline(write(tmp_path / "in2" / "day.jsonl", lines[:1]), out.prefix,
                 "--signature_store", store, "--run_id", "run2")
    (decision,) = out.records("decisions")
    assert decision["decision"] == "publish", decision["reasons"]
    assert decision["signals"]["near_duplicate"]["values"]["canonical_by"] == "first_seen"


def test_a_backfilled_review_with_received_at_stays_first_when_resent_beside_a_copy_without_it(tmp_path):
    """Session 21 (helper round 4, against this session's first fix for round 3): run 1 (a later
    day, processed first) stores two copies with received_at; run 2, a backfill, publishes the honest
    original with an earlier received_at; run 3 gets the original again and a copy without
    received_at (the mixed order). Ordering stored members by their run's time put run 1's copies
    first: the original was **held as their copy**. Stored members are placed by received_at when
    they have it."""
    store = str(tmp_path / "store")
    copies = [review(f"c{i}", f"cop{i}", rating=5, received_at=f"2025-03-02T11:0{i}:00Z") for i in (1, 2)]
    honest = review("h1", "honest", received_at="2025-03-01T10:00:00Z")
    for k, lines in enumerate((copies, [honest])):
        run_pipeline(write(tmp_path / f"in{k}" / "day.jsonl", lines), str(tmp_path / f"out{k}"),
                     "--signature_store", store, "--run_id", f"run{k}")
    out = RunOutput(str(tmp_path / "out3"))
    run_pipeline(write(tmp_path / "in3" / "day.jsonl", [honest, review("c3", "cop3", rating=5)]), out.prefix,
                 "--signature_store", store, "--run_id", "run3")
    decisions = by_id(out)
    assert decisions["h1"]["decision"] == "publish", decisions["h1"]["reasons"]
    assert decisions["c3"]["signals"]["near_duplicate"]["values"]["canonical_review_id"] == "h1"


def test_a_late_delivered_copy_with_an_earlier_received_at_does_not_overtake_a_resent_original(tmp_path):
    """Session 21 (helper round 5, against the round-4 fix): the honest review comes without
    received_at in run 1 (stored at run 1's clock); a copy posted before run 1 ran is delivered late in
    run 2 with its real received_at (a minute before run 1 stored the original), in one variant behind
    another copy without received_at. Comparing that received_at with run 1's clock put the copies
    first, and the original's resend in run 3 was **held as their copy**. A stored review without
    received_at is placed no later than any stamped review a later run brought."""
    import datetime as dt
    honest = review("h1", "honest")
    for variant in ("stamped", "unstamped first"):
        store = str(tmp_path / variant / "store")
        run_pipeline(write(tmp_path / variant / "in1" / "day.jsonl", [honest]), str(tmp_path / variant / "out1"),
                     "--signature_store", store, "--run_id", "run1")
        late = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
        copies = [review("c1", "att1", received_at=late)]
        if variant == "unstamped first":
            copies.insert(0, review("c0", "att0"))
        run_pipeline(write(tmp_path / variant / "in2" / "day.jsonl", copies), str(tmp_path / variant / "out2"),
                     "--signature_store", store, "--run_id", "run2")
        out = RunOutput(str(tmp_path / variant / "out3"))
        run_pipeline(write(tmp_path / variant / "in3" / "day.jsonl", [honest]), out.prefix,
                     "--signature_store", store, "--run_id", "run3")
        (decision,) = out.records("decisions")
        assert decision["decision"] == "publish", (variant, decision["reasons"])
        assert decision["signals"]["near_duplicate"]["values"]["is_canonical"], variant


# texts and clock of the session-23 dedup sequences (helper rounds 7-11)
KETTLE = ("broke after three days the handle cracked and the lid stopped closing support never answered my "
          "emails and the refund form kept failing so i am stuck with a useless kettle that leaks hot water")
PRAISE = ("lovely colour and a pleasant weight in the hand the spout pours cleanly and it boils quickly on "
          "our stove which suits busy mornings while the whistle is gentle enough not to wake anyone upstairs")
TOASTER = ("the toaster burns one side and leaves the other raw the crumb tray jammed in the first week and "
           "the timer dial came off in my hand customer service told me to wait two months for a replacement")


def ago():
    """at(hours=1) -> the UTC timestamp an hour before now (one now per test)."""
    import datetime as dt
    now = dt.datetime.now(dt.timezone.utc)
    return lambda **delta: (now - dt.timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_days(tmp_path, runs, store) -> RunOutput:
    """Runs each day's lines (one file a day) against one signature store; the last day's output."""
    for k, lines in enumerate(runs, 1):
        out = RunOutput(str(tmp_path / f"out{k}"))
        run_pipeline(write(tmp_path / f"in{k}" / "day.jsonl", lines), out.prefix,
                     "--signature_store", store, "--run_id", f"run{k}")
    return out


@pytest.mark.parametrize("sequence", ["A4 same file", "A5 later run"])
def test_an_attackers_unrelated_late_review_does_not_cap_a_stored_copy_ahead_of_a_late_honest_review(tmp_path,
                                                                                                     sequence):
    """Session 22 (helper round 7): ``c``, a copy of the honest complaint H without received_at, is
    stored; the attacker's unrelated review ``x`` (posted 3 h ago, delivered late with that
    received_at) is stored after it, in the same file (A4) or by a later run (A5), with bridges from
    X to H; the last run gets H itself, delivered late with its own received_at (1 h ago), and the
    bridges re-posted so that ``x`` joins H's component. A stored member without received_at was
    capped by *any* stamped member that came to light after it, so ``c`` was placed at ``x``'s time,
    before H, and the complaint was **rejected as the copy's copy**. Fixed in session 23: only a
    stamped member sharing its text (the source bar, 0.5) caps it."""
    from tests.adversarial.test_copied_reviews import chain
    at = ago()
    t0, t1, tb, tn = at(hours=3), at(hours=1), at(minutes=30), at(minutes=5)
    honest = KETTLE
    other = PRAISE
    bridges = chain(other, honest)
    store = str(tmp_path / "store")
    copy = [review("c", "att0", body=honest, created=tb, rating=5)]
    unrelated = ([review("x", "att1", body=other, created=t0, rating=5, received_at=t0)]
                 + [review(f"b{i}", f"attb{i}", body=t, created=tb, rating=5, received_at=tb)
                    for i, t in enumerate(bridges)])
    last = ([review("h1", "honest", body=honest, created=t1, received_at=t1)]
            + [review(f"n{i}", f"attn{i}", body=t, created=tn, rating=5, received_at=tn) for i, t in enumerate(bridges)])
    runs = [copy + unrelated, last] if sequence.startswith("A4") else [copy, unrelated, last]
    h1 = by_id(run_days(tmp_path, runs, store))["h1"]
    assert h1["decision"] == "publish", (h1["reasons"], h1["signals"]["near_duplicate"]["values"])
    assert h1["signals"]["near_duplicate"]["values"]["is_canonical"], h1["signals"]["near_duplicate"]["values"]


@pytest.mark.parametrize("sequence", ["V1 one file, then a resend", "V4 three runs"])
def test_a_stored_copy_capped_by_the_attackers_own_earlier_text_does_not_take_an_honest_reviews_place(
        tmp_path, sequence):
    """Session 23 (helper round 8, against the round-7 fix): the attacker's review S (posted 3 h ago,
    delivered late with that received_at) and, after the honest complaint H appeared, ``c`` = S's
    words + H's words without received_at (Jaccard ~0.5 with each). S shares c's text, so it caps c
    at S's time, before H: H (V1: read before c in one file, then resent with bridges; V4: delivered
    late in a third run) was **rejected as c's copy**. What proves c early is the text it shares
    with S, which H does not share: c is not H's source."""
    from tests.adversarial.test_copied_reviews import chain
    at = ago()
    t_s, t_h, tn = at(hours=3), at(hours=1), at(minutes=5)
    honest = KETTLE
    other = PRAISE
    mixed = " ".join(dict.fromkeys((other + " " + honest).split()))
    h = review("h1", "honest", body=honest, created=t_h, received_at=t_h)
    c = review("c", "att0", body=mixed, created=tn, rating=5)
    s = review("s", "att1", body=other, created=t_s, rating=5, received_at=t_s)
    bridges = [review(f"n{i}", f"attn{i}", body=t, created=tn, rating=5, received_at=tn)
               for i, t in enumerate(chain(other, mixed) + chain(mixed, honest))]
    runs = [[h, c, s], [h] + bridges] if sequence.startswith("V1") else [[c], [s], [h] + bridges]
    store = str(tmp_path / "store")
    h1 = by_id(run_days(tmp_path, runs, store))["h1"]
    values = h1["signals"]["near_duplicate"]["values"]
    assert h1["decision"] == "publish" and values["is_canonical"], (h1["reasons"], values)
    assert values["cluster_size"] > 3, values   # the bridges did join c, s and h1 in one component


def test_a_late_honest_review_stays_the_original_when_resent_or_when_the_attacker_adds_an_unstamped_copy(tmp_path):
    """Session 23 (helper round 9): run 1 stores the attacker's plain copies c1, c2 of two honest
    complaints, without received_at (the complaints were still in the platform's late queue); run 2
    gets both complaints late with their real received_at, and on the toaster the attacker adds d2, one
    more copy without received_at, which put every member of run 2 after the stored ones (A1: h2 was
    **held** as c2's copy); run 3 resends h1 (an export overlap), whose stamped resend then capped c1
    at h1's own time and the tie went to c1's earlier run (A2: h1, published in run 2, was **held**,
    and rejected when resent again with more copies). A review stored without received_at and a
    late-delivered one received before that run have no known order: neither is the other's source;
    and a review received after another is never its source, whatever the run's order mode."""
    at = ago()
    t_h, t_c = at(hours=1), at(minutes=30)
    kettle = KETTLE
    toaster = TOASTER
    h1 = review("h1", "honest1", body=kettle, created=t_h, received_at=t_h)
    h2 = review("h2", "honest2", body=toaster, created=t_h, received_at=t_h, product_id="toaster")
    c1 = review("c1", "att1", body=kettle, created=t_c, rating=5)
    c2 = review("c2", "att2", body=toaster, created=t_c, rating=5, product_id="toaster")
    d2 = review("d2", "att3", body=toaster + " really", created=t_c, rating=5, product_id="toaster")
    store = str(tmp_path / "store")
    seen = []
    for k, lines in enumerate([[c1, c2], [h1, h2, d2], [h1]], 1):
        out = RunOutput(str(tmp_path / f"out{k}"))
        run_pipeline(write(tmp_path / f"in{k}" / "day.jsonl", lines), out.prefix,
                     "--signature_store", store, "--run_id", f"run{k}")
        decisions = by_id(out)
        for rid in ("h1", "h2"):
            if rid in decisions:
                values = decisions[rid]["signals"]["near_duplicate"]["values"]
                seen.append((k, rid, values["cluster_size"]))
                assert decisions[rid]["decision"] == "publish", (k, rid, decisions[rid]["reasons"], values)
    assert (2, "h2", 3) in seen and (3, "h1", 2) in seen, seen   # the copies were in the complaints' clusters


def test_an_unstamped_partner_file_that_sorts_first_does_not_make_copies_the_source_of_a_stamped_review(tmp_path):
    """Session 23 (helper round 10): one run reads the platform's ``site.jsonl`` (with received_at) and
    a partner's ``a-partner.jsonl`` (without, its name sorting first). A run with a member lacking
    received_at is ordered by file and line, so the attacker's four unstamped copies in the partner file
    came before the stamped honest h1, which was **rejected** (X1); and an honest h2 that came through the
    partner file, published as the original in its run, was **rejected** when resent with more copies,
    its stamped copy c2 from the site file now placed by received_at before h2's run (Y). One run, two
    files, one stamped and one not: no known order, neither is the other's source."""
    at = ago()
    t_h, t_c, t_n = at(hours=2), at(hours=1), at(minutes=5)
    kettle = KETTLE
    toaster = TOASTER
    h1 = review("h1", "honest1", body=kettle, created=t_h, received_at=t_h)
    copies = [review(f"d{i}", f"att{i}", body=kettle, created=t_c, rating=5) for i in range(4)]
    h2 = review("h2", "honest2", body=toaster, created=t_h, product_id="toaster")
    c2 = review("c2", "attc", body=toaster, created=t_c, rating=5, received_at=t_c, product_id="toaster")
    more = [review(f"e{i}", f"atte{i}", body=toaster, created=t_n, rating=5, received_at=t_n, product_id="toaster")
            for i in range(3)]
    store = str(tmp_path / "store")
    for k, files in enumerate([{"a-partner.jsonl": copies + [h2], "site.jsonl": [h1, c2]},
                               {"a-partner.jsonl": [h2], "site.jsonl": more}], 1):
        for name, lines in files.items():
            write(tmp_path / f"in{k}" / name, lines)
        out = RunOutput(str(tmp_path / f"out{k}"))
        run_pipeline(str(tmp_path / f"in{k}" / "*.jsonl"), out.prefix, "--signature_store", store,
                     "--run_id", f"run{k}")
        decisions = by_id(out)
        for rid in ("h1", "h2"):
            if rid in decisions:
                values = decisions[rid]["signals"]["near_duplicate"]["values"]
                assert decisions[rid]["decision"] == "publish", (k, rid, decisions[rid]["reasons"], values)
                assert values["cluster_size"] >= 2, values


def test_an_honest_review_its_author_edits_after_others_copied_it_is_not_their_copy(tmp_path):
    """Session 23 (helper round 12, E): run 1 publishes the honest complaint; run 2 stores four copies
    of it (rejected); in run 3 its author appends an update (Jaccard ~0.67 with the first version:
    under the copy threshold 0.8, so a new version that does not take the first one's place, but the
    copies still share 0.67 with it). The component holds one fingerprint per review id, so the
    stored first version dropped out and a copy became the edit's source: the edited complaint was
    **rejected as a copy of its copies**. An edit by the same author that keeps half its text takes its
    earlier version's place, vouching only for that version's text (clusters.first_seen_copy)."""
    from tests.adversarial.test_copied_reviews import chain
    at = ago()
    t_h, t_c, t_e = at(hours=3), at(hours=2), at(minutes=5)
    update = KETTLE + " update after two weeks the replacement unit they finally sent also leaks from the base and the seller stopped replying"
    store = str(tmp_path / "store")
    runs = [[review("h1", "honest", body=KETTLE, created=t_h, received_at=t_h)],
            [review(f"c{i}", f"att{i}", body=KETTLE, created=t_c, rating=5, received_at=t_c) for i in range(4)],
            [review("h1", "honest", body=update, created=t_h, received_at=t_e)]
            + [review(f"b{i}", f"attb{i}", body=t, created=t_e, rating=5, received_at=at(minutes=1))
               for i, t in enumerate(chain(KETTLE, update))]]   # bridges join the edit to the copies
    h1 = by_id(run_days(tmp_path, runs, store))["h1"]
    values = h1["signals"]["near_duplicate"]["values"]
    assert values["cluster_size"] > 2, values
    assert h1["decision"] == "publish" and values["is_canonical"], (h1["reasons"], values)


def test_partner_copies_of_a_popular_review_do_not_turn_its_hold_into_a_reject(tmp_path):
    """The documented input-order limit (README "Still open"): without ``received_at``, a copy on an
    earlier line of the honest review's own file is first seen, so the honest review is held as its
    copy, for a person to look at. Four partners then syndicate the honest review (declared, with a
    partner). Before policy 1.3.0 they counted towards ``cluster_size`` (6 ≥ 5) and turned that hold
    into a ``duplicate_spam`` reject; the large-cluster rule now counts the site's own members."""
    lines = [review("c", "copier", rating=5), review("h", "honest")] + [
        review(f"syn{i}", f"partner{i}", source={"channel": "syndicated", "partner": f"Partner{i}"})
        for i in range(4)]
    out = RunOutput(str(tmp_path / "out"))
    run_pipeline(write(tmp_path / "in" / "day.jsonl", lines), out.prefix, "--run_id", "partners")
    decisions = by_id(out)
    values = decisions["h"]["signals"]["near_duplicate"]["values"]
    assert (values["cluster_size"], values["site_members"], values["canonical_review_id"]) == (6, 2, "c"), values
    assert (decisions["h"]["decision"], decisions["h"]["reasons"][0]) == ("hold_for_review", "suspected_duplicate")
    assert all(decisions[f"syn{i}"]["decision"] == "publish_with_label" for i in range(4))
