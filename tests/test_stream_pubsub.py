"""Integration: the streaming job (python -m pipeline.run --streaming) on DirectRunner against the real
Pub/Sub emulator that ships with google-cloud-cli; no mocks. Skipped, saying why, where the emulator
is not installed (set REQUIRE_PUBSUB_EMULATOR=1 to make that a failure, as CI on this machine type should)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.files import read_json_lines
from pipeline.local.pubsub import EmulatorMissing, find_emulator

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def emulator_available():
    try:
        find_emulator()
    except EmulatorMissing as exn:
        if os.environ.get("REQUIRE_PUBSUB_EMULATOR") == "1":
            pytest.fail(str(exn))
        pytest.skip(f"Pub/Sub emulator missing: {exn}")


def test_streaming_job_through_the_emulator(emulator_available, tmp_path):
    from pipeline.local.stream_demo import run_demo
    out = tmp_path / "stream"
    report = run_demo(count=40, rate=10, output=str(out), window_s=5, echo=False, redeliver_every=10,
                      late_every=15)
    assert report["published_messages"] == 44
    assert report["conservation_ok"], report
    assert report["decided_twice"] == []
    assert report["dead_letters_by_code"].get("redelivery", 0) >= 4
    assert report["latency_ms"]["n"] == report["decision_events"]
    assert report["event_kinds"]["decision"] == report["decision_events"] + 1  # + the warm-up review
    assert report["event_kinds"]["product"] >= report["decision_events"]
    assert report["job_left"] == [] and report["emulator_left"] == []
    # The windowed files hold every decision: the demo waits for the last windows before cancelling.
    assert report["files_complete"], report
    decisions = list(read_json_lines(f"{out}/decisions/*.jsonl"))
    decided = {d["review_id"] for d in decisions}
    assert "nsmc-9479517" in decided and len(decided) >= report["decision_events"] - len(report["decided_twice"])
    assert all(d["provenance"]["input"]["uri"].endswith("/reviews-moderation") for d in decisions)
    assert Path(out, "dead_letter").exists()


def test_streaming_windowed_files_on_gcs(emulator_available, gcs):
    """The same streaming job writing its windowed files to gs:// on the real GCS emulator."""
    from pipeline.local.stream_demo import run_demo
    gcs.create_bucket("stream-out")
    report = run_demo(count=20, rate=10, output="gs://stream-out/run1", window_s=5, echo=False, redeliver_every=10)
    assert report["conservation_ok"], report
    assert report["files_complete"], report
    names = [b.name for b in gcs.client().list_blobs("stream-out", prefix="run1/")]
    assert any(n.startswith("run1/decisions/part-") and n.endswith(".jsonl") for n in names), names
    assert report["job_left"] == [] and report["emulator_left"] == []
