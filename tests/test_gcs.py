"""gs:// in and out through Beam's real GCS I/O against a real local emulator (no mocks)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pipeline.files import read_json, read_json_lines
from tests.conftest import DEMO_INPUT, ROOT

pytestmark = pytest.mark.slow


def test_batch_job_reads_and_writes_gs_uris(gcs, tmp_path):
    gcs.create_bucket("reviews-in")
    gcs.create_bucket("reviews-out")
    bucket = gcs.client().bucket("reviews-in")
    lines = DEMO_INPUT.read_bytes().split(b"\n")
    half = len(lines) // 2
    bucket.blob("daily/2026-11-25/part-1.jsonl").upload_from_string(b"\n".join(lines[:half]))
    bucket.blob("daily/2026-11-25/part-2.jsonl").upload_from_string(b"\n".join(lines[half:]))

    key_file = tmp_path / "key"
    key_file.write_text("gcs-test-key-" + "g" * 32)
    gcs.client().bucket("reviews-out").blob("secrets/signing.key").upload_from_string(key_file.read_bytes())
    # The console entry point, in a fresh process, as a scheduler would start it.
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "review-moderation"),
         "--input", "gs://reviews-in/daily/2026-11-25/*.jsonl", "--output", "gs://reviews-out/runs/2026-11-25",
         "--signing_key_file", "gs://reviews-out/secrets/signing.key", "--require_signing_key"],
        cwd=ROOT, env=dict(os.environ, **gcs.env()), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "conservation OK" in proc.stdout

    summary = read_json("gs://reviews-out/runs/2026-11-25/run_summary.json")
    assert summary["conservation"]["ok"] and summary["input_lines"] > 2800
    names = {b.name for b in gcs.client().list_blobs("reviews-out", prefix="runs/2026-11-25/")}
    for folder in ("published", "decisions", "dead_letter", "products", "restricted/originals"):
        assert any(n.startswith(f"runs/2026-11-25/{folder}/part-") for n in names), folder
    uris = {d["provenance"]["input"]["uri"] for d in read_json_lines("gs://reviews-out/runs/2026-11-25/decisions/*.jsonl")}
    assert uris == {"gs://reviews-in/daily/2026-11-25/part-1.jsonl", "gs://reviews-in/daily/2026-11-25/part-2.jsonl"}

    verify = subprocess.run([sys.executable, "-m", "pipeline.verify", "gs://reviews-out/runs/2026-11-25",
                             "--key-file", str(key_file)], cwd=ROOT, env=dict(os.environ, **gcs.env()),
                            capture_output=True, text=True, timeout=300)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert '"invalid": 0' in verify.stdout and '"valid": 0' not in verify.stdout
    manifests = json.loads(verify.stdout)["manifests"]   # each product's signed manifest matches its records
    assert manifests["checked"] == summary["products"] == manifests["valid"] and not manifests["mismatched"]
    wrong = subprocess.run([sys.executable, "-m", "pipeline.verify", "gs://reviews-out/runs/2026-11-25",
                            "--allow-demo-key"], cwd=ROOT, env={k: v for k, v in dict(os.environ, **gcs.env()).items()
                                                               if k != "REVIEW_SIGNING_KEY"},
                           capture_output=True, text=True, timeout=300)
    assert wrong.returncode == 1, "records signed with the real key must not verify with the demo key"


def test_template_builds_offline_against_the_emulator(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "scripts.build_dataflow_template", "--keep", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    for stage in ("ReadReviewLines", "ParseReviews", "DropRedeliveries", "NormalizeReviews", "DetectFakes",
                  "Decide", "AttachProvenance", "WriteRunSummary"):
        assert f"  {stage}\n" in proc.stdout
    assert "pipeline/run.py" in proc.stdout and "schemas/review.schema.json" in proc.stdout
    # the default classifier model travels with the worker package (workers load it from their install)
    from pipeline.classifier import runtime
    art = runtime.default_model_dir()
    onnx = [f for f in runtime.read_config(art)["files"] if f.endswith(".onnx")]
    assert onnx and all(f"pipeline/classifier/artifacts/fake-review-classifier/{art.name}/{f}" in proc.stdout
                        for f in onnx)
    # with what the loader checks it against: its SHA256SUMS and the digests pinned in the code
    assert f"pipeline/classifier/artifacts/fake-review-classifier/{art.name}/SHA256SUMS" in proc.stdout
    assert "pipeline/classifier/pinned_artifacts.json" in proc.stdout
    # workers install only what they run: no training, benchmark, research or test code
    assert "Training, benchmark, research or test files in the worker package: 0\n" in proc.stdout
    assert (tmp_path / "review-moderation.json").exists()


def test_signature_store_on_gcs(gcs, tmp_path):
    from tests.test_dedup_store import LONG, review
    gcs.create_bucket("dedup-store")
    bucket = gcs.client().bucket("dedup-store")
    bucket.blob("in/day1.jsonl").upload_from_string(review("old-1", LONG, "2026-10-01T10:00:00Z", "acct-1") + "\n")
    bucket.blob("in/day2.jsonl").upload_from_string(
        review("new-1", LONG + " really", "2026-11-20T10:00:00Z", "acct-2", product="kettle-2") + "\n")
    from tests.conftest import run_pipeline
    for day in ("day1", "day2"):
        summary = run_pipeline(f"gs://dedup-store/in/{day}.jsonl", f"gs://dedup-store/out/{day}",
                               "--signature_store", "gs://dedup-store/store", "--run_id", day)
        assert summary["conservation"]["ok"]
    names = sorted(b.name for b in gcs.client().list_blobs("dedup-store", prefix="store/"))
    assert names == ["store/signatures/run-day1-00000-of-00001.parquet",
                     "store/signatures/run-day2-00000-of-00001.parquet"]
    decision = next(read_json_lines("gs://dedup-store/out/day2/decisions/*.jsonl"))
    values = decision["signals"]["near_duplicate"]["values"]
    assert values["canonical_review_id"] == "old-1" and values["members_from_earlier_runs"] == 1
    from pipeline.dedup.store import compact
    assert compact("gs://dedup-store/store")["entries_after"] == 2
