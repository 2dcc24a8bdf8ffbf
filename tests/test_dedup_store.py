"""Scheduled runs see each other through the signature store; retries stay deterministic."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.dedup import store as st
from tests.conftest import RunOutput, run_pipeline

pytestmark = pytest.mark.slow

LONG = ("This is hands down the best kettle I have ever owned, amazing quality, super fast shipping "
        "and the seller is so helpful, everyone in my family wants one now")


def review(review_id, body, created, author, product="kettle-1"):
    return json.dumps({"review_id": review_id, "product_id": product, "author_id": author, "rating": 5,
                       "body": body, "created_at": created, "language": "en"})


def write(path: Path, lines):
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture()
def days(tmp_path):
    day1 = write(tmp_path / "day1.jsonl", [
        review("old-1", LONG, "2026-10-01T10:00:00Z", "acct-1"),
        review("honest-1", "The lid cracked after nine days and support sent three form emails, no fix at all",
               "2026-10-01T11:00:00Z", "u1"),
        review("ancient", "A very distinctive review about a toaster that caught fire on the fourth of July",
               "2025-01-01T00:00:00Z", "u9"),
    ])
    day2 = write(tmp_path / "day2.jsonl", [
        review("new-1", LONG + " really", "2026-11-20T10:00:00Z", "acct-2", product="kettle-2"),
        review("new-2", "Arrived quickly, the handle stays cool and it boils a full litre in under four minutes",
               "2026-11-20T11:00:00Z", "u2"),
        review("late-copy", "A very distinctive review about a toaster that caught fire on the fourth of July",
               "2026-11-20T12:00:00Z", "u10"),
    ])
    return tmp_path, day1, day2


def signals(out: RunOutput) -> dict:
    return {d["review_id"]: (d["decision"], d["signals"]["near_duplicate"]["status"],
                             d["signals"]["near_duplicate"]["values"]) for d in out.records("decisions")}


def test_a_copy_of_last_months_review_is_still_a_copy(days):
    root, day1, day2 = days
    store = str(root / "store")
    run_pipeline(day1, str(root / "out1"), "--signature_store", store, "--run_id", "day1")
    out2 = RunOutput(str(root / "out2"))
    run_pipeline(day2, out2.prefix, "--signature_store", store, "--run_id", "day2")
    got = signals(out2)
    values = got["new-1"][2]
    assert values["pattern"] == "campaign" and values["evidence"]
    assert values["canonical_review_id"] == "old-1" and values["members_from_earlier_runs"] == 1
    assert got["new-2"][2]["pattern"] == "none"
    # the 2025 review is outside the 90-day retention of the newest review: not compared
    assert got["late-copy"][2]["pattern"] == "none"
    assert sorted(p.name for p in (root / "store" / "signatures").iterdir()) == [
        "run-day1-00000-of-00001.parquet", "run-day2-00000-of-00001.parquet"]

    # a retried day-2 job (same run id, or a new one) decides the same; no review matches itself
    for attempt, run_id in (("retry", "day2"), ("rerun", "day2-again")):
        out = RunOutput(str(root / attempt))
        run_pipeline(day2, out.prefix, "--signature_store", store, "--run_id", run_id)
        again = signals(out)
        assert {k: (v[0], v[2]["pattern"], v[2]["canonical_review_id"]) for k, v in again.items()} == \
            {k: (v[0], v[2]["pattern"], v[2]["canonical_review_id"]) for k, v in got.items()}, attempt
        assert again["new-2"][2]["cluster_size"] == 1

    # with a long enough retention the 2025 review is found too
    out = RunOutput(str(root / "long"))
    run_pipeline(day2, out.prefix, "--signature_store", store, "--run_id", "long", "--signature_retention_days", "1000")
    assert signals(out)["late-copy"][2]["canonical_review_id"] == "ancient"


def test_compaction_drops_expired_and_repeated_entries(days):
    root, day1, day2 = days
    store = str(root / "store")
    for i, day in enumerate((day1, day2, day2)):  # day 2 twice under different run ids
        run_pipeline(day, str(root / f"o{i}"), "--signature_store", store, "--run_id", f"r{i}")
    result = st.compact(store, retention_days=90)
    assert result["files_before"] == 3 and result["entries_before"] == 9
    assert result["expired"] == 1  # "ancient", 2025, is over 90 days older than the newest review
    assert result["duplicates_dropped"] == 3 and result["entries_after"] == 5
    files = list((root / "store" / "signatures").iterdir())
    assert len(files) == 1 and files[0].name.startswith("compacted-")
    out = RunOutput(str(root / "after"))
    run_pipeline(day2, out.prefix, "--signature_store", store, "--run_id", "after")
    assert signals(out)["new-1"][2]["canonical_review_id"] == "old-1"


def test_stored_positions_read_defensively_and_legacy_copies_give_only_their_time():
    """Session 21 (helper round 2): a store row with an unusable input position (NaN or text line, a
    number for the file: what other tools write) is read as no position, never a crashed run; a
    stored copy with no position (a store from before positions were kept) gives a resend only its
    time, not a place among the reviews its run stored (where a review id broke the tie, so a
    copier's resend became the first posting); a stored review of another product under the id,
    or with other text, is not the same review."""
    import numpy as np

    from pipeline.dedup.clusters import Fingerprint, first_seen_copy

    hashes = np.arange(20, dtype="<u4").tobytes()
    fp = Fingerprint("r1", 1.7e9, "u1", "p1", None, None, "words", 20, b"", hashes, input_uri="gs://in/a.jsonl",
                     input_line=3)
    row = st.to_row(fp, [], "run1", "2026-11-20T12:00:00Z")
    assert (row["input_uri"], row["input_line"]) == ("gs://in/a.jsonl", 3)
    for bad in ({"input_line": float("nan")}, {"input_line": "7"}, {"input_line": 2 ** 70}, {"input_line": -1},
                {"input_uri": 5}, {"input_uri": b"x"}, {"input_uri": None, "input_line": None}):
        got = st.from_row({**row, **bad})
        assert got.input_line == (3 if "input_line" not in bad else 0)
        assert got.input_uri == ("gs://in/a.jsonl" if "input_uri" not in bad else "")
    stored = st.from_row(row)
    now = fp._replace(input_uri="gs://in/b.jsonl", input_line=1)
    placed = first_seen_copy(now, [stored], 0.8)
    assert placed.earlier_run and (placed.input_uri, placed.input_line) == ("gs://in/a.jsonl", 3)
    legacy = stored._replace(input_uri="", input_line=0)
    assert first_seen_copy(now, [legacy], 0.8) == now
    # ... but its received_at, if it had one, is a platform time the resend keeps
    received = first_seen_copy(now, [legacy._replace(received=True)], 0.8)
    assert not received.earlier_run and received.arrival_ts == stored.arrival_ts and received.input_uri == "gs://in/b.jsonl"
    # a stored copy without received_at gives its run's place, not a receipt time (round 3)
    assert not placed.received and placed.run_ts == stored.run_ts
    other_text = stored._replace(shingle_hashes=np.arange(100, 120, dtype="<u4").tobytes())
    for other in (stored._replace(product_id="p2"), stored._replace(author_id="u2"), other_text):
        assert first_seen_copy(now, [other], 0.8) == now
    # round 3's bridge: the reserved text plus the honest review's words overlaps each by 0.5. Since
    # session 23 (round 12: an author's edit keeps its first version's place) it takes the reserved
    # text's place, which vouches for that text only: it is not the source of the honest review
    from pipeline.dedup.clusters import describe_cluster
    from pipeline.dedup.config import DedupConfig
    bridge = fp._replace(shingle_hashes=np.arange(40, dtype="<u4").tobytes())
    placed_bridge = first_seen_copy(bridge, [stored], 0.8)
    assert placed_bridge.earlier_run and placed_bridge.earlier_text == stored.shingle_hashes
    honest = Fingerprint("h", 1.7e9, "h", "p1", None, None, "words", 20, b"", np.arange(20, 40, dtype="<u4").tobytes(),
                         arrival_ts=stored.run_ts + 60, input_uri="gs://in/b.jsonl", input_line=2, received=True)
    got = describe_cluster([placed_bridge, honest], DedupConfig())["h"]
    assert got["is_canonical"], got


def test_stored_members_are_ordered_by_received_at_and_first_seen_without_a_cycle():
    """Session 21, rounds 3-6, at the level of the order itself (clusters.arrival_key): members from
    earlier runs are placed by received_at; one without it by its run's time, no later than a stamped
    member that came to light after it (later in its file, or in a later run), no earlier than a
    stamped member an earlier run stored; ties to the earlier run."""
    import math

    from pipeline.dedup.clusters import Fingerprint, arrival_key

    def fp(rid, run, line, received=None, stored=True, earlier_run=False):
        return Fingerprint(rid, 0.0, rid, "p", None, None, "words", 10, b"", b"", stored,
                           received if received is not None else float(run), "in.jsonl", line,
                           received is not None, earlier_run, float(run))

    def order(*members):
        return [m.review_id for m in sorted(members, key=arrival_key(members))]

    new = Fingerprint("new", 0.0, "n", "p", None, None, "words", 10, b"", b"")   # this run, no received_at
    # round 3: one run read the original (no received_at) before two stamped copies
    assert order(fp("c1", 100, 2, received=50), fp("c2", 100, 3, received=55), fp("h1", 100, 1, earlier_run=True,
                                                                                  stored=False), new)[0] == "h1"
    # round 4: a backfill (run 200) of an earlier received_at, processed after the copies' run
    assert order(fp("c1", 100, 1, received=60), fp("h1", 200, 1, received=40, stored=False, earlier_run=True),
                 new)[0] == "h1"
    # round 5: a copy delivered late in run 200 with a received_at before run 100 stored the original
    assert order(fp("h1", 100, 1, stored=False, earlier_run=True), fp("c1", 200, 1, received=40), new)[0] == "h1"
    # round 6: the original stamped in run 100; a copy without received_at in run 200; an unrelated
    # review delivered late in run 300 with an earlier received_at does not pull the copy ahead
    got = order(fp("h1", 100, 1, received=90, stored=False, earlier_run=True), fp("c", 200, 1),
                fp("x", 300, 1, received=10), new)
    assert got.index("h1") < got.index("c") and got[-1] == "new" and math.isfinite(fp("x", 300, 1).run_ts)


def test_only_a_stamped_member_sharing_its_text_caps_a_stored_member_without_received_at():
    """Session 22 (helper round 7), at the level of the order: a stored member without received_at
    is placed no later than a stamped member that came to light after it only when that member
    shares its text (the source bar, 0.5): a copy had to read it first; an unrelated review
    delivered late with an early received_at says nothing about when it arrived. Every candidate is
    compared exactly: a flood of unrelated late reviews does not hide the one real copy."""
    import numpy as np

    from pipeline.dedup.clusters import Fingerprint, arrival_key

    def words(lo, hi):
        return np.arange(lo, hi, dtype="<u4").tobytes()

    def fp(rid, run, text, received=None, stored=True, line=1):
        return Fingerprint(rid, 0.0, rid, "p", None, None, "words", 10, b"", text, stored,
                           received if received is not None else float(run), "in.jsonl", line,
                           received is not None, False, float(run))

    def order(*members):
        return [m.review_id for m in sorted(members, key=arrival_key(members))]

    honest = words(0, 100)
    now = Fingerprint("h", 0.0, "h", "p", None, None, "words", 10, b"", honest, False, 50.0)   # this run, received 50
    c = fp("c", 100, honest)   # a copy stored by run 100 without received_at
    # an unrelated review (text 1000-1100) delivered late in run 200 with received_at 10: no cap
    got = order(c, fp("x", 200, words(1000, 1100), received=10), now)
    assert got.index("h") < got.index("c"), got
    # the same review sharing half of c's text (Jaccard 50 / 150 ≈ 0.33 < 0.5): still no cap
    got = order(c, fp("x", 200, words(50, 150), received=10), now)
    assert got.index("h") < got.index("c"), got
    # ... sharing 80 of 100 words each (80 / 120 ≈ 0.67): it copied c, so c came before 10
    got = order(c, fp("x", 200, words(20, 120), received=10), now)
    assert got.index("c") < got.index("h"), got
    # a later line of c's own file counts only with shared text too
    got = order(c, fp("x", 100, words(1000, 1100), received=10, line=2), now)
    assert got.index("h") < got.index("c"), got
    got = order(c, fp("x", 100, words(20, 120), received=10, line=2), now)
    assert got.index("c") < got.index("h"), got
    # 300 unrelated late reviews and one real copy among them: the copy still caps c
    flood = [fp(f"u{i}", 200, words(2000 + 100 * i, 2100 + 100 * i), received=1 + i / 1000) for i in range(300)]
    got = order(c, *flood, fp("x", 200, words(20, 120), received=30), now)
    assert got.index("c") < got.index("h"), got[:5]


def test_a_member_capped_by_the_attackers_own_earlier_text_is_not_the_source_of_an_honest_review():
    """Session 23 (helper round 8), at the level of the clusters: the attacker's stored ``c`` = its
    own earlier text S + the honest text H (Jaccard 0.5 with each) is capped by S itself, stamped with
    a received_at before H existed: shared text has no direction. ``c`` is placed before H, but what
    proves it early is the text it shares with S, which H does not share: ``c`` is not H's source. And
    the floor counts only stamped members that share the member's text: an unrelated early review
    of an earlier run does not lift an honest stored review above the attacker's late copy."""
    import numpy as np

    from pipeline.dedup.clusters import Fingerprint, describe_cluster
    from pipeline.dedup.config import DedupConfig

    def words(lo, hi):
        return np.arange(lo, hi, dtype="<u4").tobytes()

    def fp(rid, run, line, text, received=None, stored=True, earlier_run=False):
        return Fingerprint(rid, 0.0, rid, "p", None, None, "words", len(text) // 4, b"", text, stored,
                           received if received is not None else float(run), "in.jsonl", line,
                           received is not None, earlier_run, float(run))

    H, S = words(0, 40), words(1000, 1040)
    C = np.union1d(np.arange(0, 40), np.arange(1000, 1040)).astype("<u4").tobytes()
    bridge = Fingerprint("b", 0.0, "bx", "p", None, None, "words", 40, b"", C, False, 150.0, "in2.jsonl", 2, True)
    late_h = Fingerprint("h", 0.0, "h", "p", None, None, "words", 40, b"", H, False, 50.0, "in3.jsonl", 1, True)
    sequences = {
        "one file: H (received 50), c, S (received 10); H resent": [
            fp("h", 100, 1, H, received=50, stored=False, earlier_run=True), fp("c", 100, 2, C),
            fp("s", 100, 3, S, received=10), bridge],
        "the same, H without received_at": [
            fp("h", 100, 1, H, stored=False, earlier_run=True), fp("c", 100, 2, C), fp("s", 100, 3, S, received=10),
            bridge],
        "S delivered late by a later run": [
            fp("h", 100, 1, H, received=50, stored=False, earlier_run=True), fp("c", 100, 2, C),
            fp("s", 150, 1, S, received=10), bridge],
        "c stored, S late in a later run, H late in this run": [
            fp("c", 100, 1, C), fp("s", 150, 1, S, received=10), late_h, bridge],
    }
    cfg = DedupConfig()
    for name, members in sequences.items():
        h = describe_cluster(members, cfg)["h"]
        assert h["is_canonical"] and h["canonical_review_id"] == "h", (name, h)
    # the control: a copy of c received at 10 (H's words in it before H was received at 50): H is
    # not the first posting (its source is that copy; c itself and H have no known order, round 9)
    copy = fp("s", 150, 1, C, received=10)
    h = describe_cluster([fp("c", 100, 1, C), copy, late_h, bridge], cfg)["h"]
    assert not h["is_canonical"] and h["canonical_review_id"] == "s", h
    # the floor: H (no received_at, run 200), the attacker's copy (received 20, run 300), an
    # unrelated review x an earlier run stored (received 95): H keeps its place before the copy
    h = fp("h", 200, 1, H, stored=False, earlier_run=True)
    copy = fp("c", 300, 1, words(0, 38), received=20)
    x = fp("x", 100, 1, words(5000, 5040), received=95)
    resent = Fingerprint("b", 0.0, "b", "p", None, None, "words", 40, b"", H, False, 390.0, "in4.jsonl", 1, True)
    got = describe_cluster([h, copy, x, resent], cfg)["h"]
    assert got["is_canonical"], got


def test_no_known_order_between_a_stored_review_without_received_at_and_a_late_delivery():
    """Session 23 (helper round 9), at the level of the clusters: the attacker's copy c stored by run
    100 without received_at; the honest H delivered late (received 50, before run 100). Neither is
    the other's source (either may have copied the other), in H's first run, when H is resent (its
    stamped resend caps c at H's time and the tie goes to c's earlier run), and when one more copy
    without received_at in H's run puts the run's members after the stored ones; a stored c with a
    received_at after H's is never H's source either."""
    import numpy as np

    from pipeline.dedup.clusters import Fingerprint, describe_cluster
    from pipeline.dedup.config import DedupConfig

    H = np.arange(0, 40, dtype="<u4").tobytes()

    def stored(rid, run, received=None, earlier_run=False):
        return Fingerprint(rid, 0.0, rid, "p", None, None, "words", 40, b"", H, not earlier_run,
                           received if received is not None else float(run), "in.jsonl", 1,
                           received is not None, earlier_run, float(run))

    def now(rid, received=None, line=1):
        return Fingerprint(rid, 0.0, rid, "p", None, None, "words", 40, b"", H, False,
                           received if received is not None else float("inf"), "now.jsonl", line,
                           received is not None)

    cfg = DedupConfig()
    cases = {"H late": [stored("c", 100), now("h", 50)],
             "H resent": [stored("c", 100), stored("h", 200, received=50, earlier_run=True)],
             "+ an unstamped copy in H's run": [stored("c", 100), now("h", 50), now("d", line=2)],
             "c stamped after H, + an unstamped copy": [stored("c", 100, received=60), now("h", 50), now("d", line=2)]}
    for name, members in cases.items():
        h = describe_cluster(members, cfg)["h"]
        assert h["is_canonical"], (name, h)
    # the control: H received after the stored c's run is its copy
    h = describe_cluster([stored("c", 100), now("h", 150)], cfg)["h"]
    assert h["canonical_review_id"] == "c", h


def test_a_copy_received_the_same_second_is_not_the_source_whatever_its_file_or_run():
    """Session 23 (helper round 10, Z): received_at ties went to the file name or the earlier run, so
    an automated copy received in the same second as the honest review could be its source."""
    import numpy as np

    from pipeline.dedup.clusters import Fingerprint, describe_cluster
    from pipeline.dedup.config import DedupConfig
    H = np.arange(0, 40, dtype="<u4").tobytes()
    h = Fingerprint("h", 0.0, "h", "p", None, None, "words", 40, b"", H, False, 50.0, "site.jsonl", 1, True)
    same_run = h._replace(review_id="c", author_id="c", input_uri="a-partner.jsonl")
    stored = same_run._replace(stored=True, run_ts=10.0)
    for c in (same_run, stored):
        got = describe_cluster([c, h], DedupConfig())["h"]
        assert got["is_canonical"], got


def test_a_member_capped_by_a_review_with_no_known_order_to_the_honest_one_is_not_its_source():
    """Session 23 (helper round 11): the honest h (no received_at, site.jsonl) and, in the attacker's
    partner file, its copy d (no received_at) then a stamped copy y (received 91, line 2) were read by
    run 100: h was the original. When h was resent, y (a later line of d's file) capped d at 91, before
    h's run; h shares y's text (the round-8 test) so d became its source and h was **rejected**. y and h
    have no known order (one run, two files, one stamped), so y's cap says nothing about d before h.
    F2: the same with y delivered late in a later run and a declared syndicated copy flooring h."""
    import numpy as np

    from pipeline.dedup.clusters import Fingerprint, describe_cluster
    from pipeline.dedup.config import DedupConfig

    def words(*ranges):
        return np.unique(np.concatenate([np.arange(a, b) for a, b in ranges])).astype("<u4").tobytes()
    H = words((0, 40))

    def stored(rid, run, line, text=H, received=None, uri="in.jsonl", earlier_run=False, synd=False):
        return Fingerprint(rid, 0.0, rid, "p", "syndicated" if synd else None, "partnerX" if synd else None,
                           "words", 40, b"", text, not earlier_run,
                           float(received) if received is not None else float(run), uri, line,
                           received is not None, earlier_run, float(run))

    def extra(run, uri):
        return [stored(f"e{i}", run, 10 + i, uri=uri) for i in range(3)]
    f1 = [stored("h", 100, 1, uri="site.jsonl", earlier_run=True), stored("d", 100, 1, uri="z-partner.jsonl"),
          stored("y", 100, 2, uri="z-partner.jsonl", received=91)]
    dt, ft = words((0, 40), (1000, 1020)), words((0, 40), (2000, 2030))
    f2 = [stored("f", 98, 1, text=ft, received=95, uri="synd.jsonl", synd=True),
          stored("h", 100, 1, uri="site.jsonl", earlier_run=True), stored("d", 100, 1, text=dt, uri="z-partner.jsonl"),
          stored("y", 200, 1, received=91, uri="late.jsonl")]
    for name, members in (("F1", f1), ("F1 + 3 copies", f1 + extra(100, "z-partner.jsonl")),
                          ("F2", f2), ("F2 + 3 copies", f2 + extra(200, "late.jsonl"))):
        h = describe_cluster(members, DedupConfig())["h"]
        assert h["is_canonical"], (name, h)


def test_a_received_at_in_the_same_second_as_its_run_is_still_read_as_received():
    """Session 23 (round 12) noted that the store read a ``received_at`` equal to its run's
    ``stored_at`` as none (a run reading live traffic stamps reviews in its own second): a stored
    review then lost its platform time. The row now says whether it had one; a row of an older store
    (no ``received`` column) is read as before, by comparing the two times."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.dedup.clusters import Fingerprint
    from pipeline.timestamps import epoch_seconds

    when = "2026-11-20T12:00:00+00:00"
    base = Fingerprint("r1", 1.7e9, "u1", "p1", None, None, "words", 20, b"", b"")
    stamped = st.to_row(base._replace(arrival_ts=epoch_seconds(when), received=True), [], "run1", when)
    unstamped = st.to_row(base._replace(review_id="r2"), [], "run1", when)
    assert stamped["arrival_ts"] == unstamped["arrival_ts"]   # the same time: only the flag tells them apart
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist([stamped, unstamped], schema=st.SCHEMA), buffer)
    back = {fp.review_id: fp for fp in map(st.from_row, st.read_rows(io.BytesIO(buffer.getvalue())))}
    assert back["r1"].received and not back["r2"].received
    legacy = pa.Table.from_pylist([stamped], schema=st.SCHEMA).drop_columns(["received"])
    buffer = io.BytesIO()
    pq.write_table(legacy, buffer)
    (old,) = map(st.from_row, st.read_rows(io.BytesIO(buffer.getvalue())))
    assert not old.received and old.arrival_ts == epoch_seconds(when)
    moved = st.from_row({**stamped, "received": None, "arrival_ts": epoch_seconds(when) + 60})
    assert moved.received
