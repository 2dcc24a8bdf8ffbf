"""Builds a classic Dataflow template offline, staged on a local GCS emulator: a smoke test of the
job graph and of packaging (the sdist that --setup_file builds for workers).

    python -m scripts.build_dataflow_template [--port 9023] [--keep out/dataflow-template]

Nothing is submitted: with --template_location, DataflowRunner writes the job description and
stages the package instead of starting a job. The script prints the template's steps and staged
files and copies the template to --keep. See README "Running on Dataflow" for the real commands.
"""
from __future__ import annotations

import argparse
import io
import tarfile
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from pipeline.local.gcs import GcsEmulator

BUCKET = "dataflow-smoke"


def build(gcs: GcsEmulator, keep: Path) -> dict:
    gcs.create_bucket(BUCKET)
    cmd = [sys.executable, "-m", "pipeline.run", "--runner", "DataflowRunner",
           "--project", gcs.project, "--region", "us-central1",
           "--temp_location", f"gs://{BUCKET}/tmp", "--staging_location", f"gs://{BUCKET}/staging",
           "--template_location", f"gs://{BUCKET}/templates/review-moderation",
           "--setup_file", str(ROOT / "setup.py"),
           "--input", f"gs://{BUCKET}/in/*.jsonl", "--output", f"gs://{BUCKET}/out/run",
           "--run_id", "template-smoke"]
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=dict(os.environ, **gcs.env()), capture_output=True, text=True,
                          timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"template build failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    bucket = gcs.client().bucket(BUCKET)
    template = json.loads(bucket.blob("templates/review-moderation").download_as_bytes())
    staged = sorted(b.name for b in gcs.client().list_blobs(BUCKET, prefix="staging/"))
    keep.mkdir(parents=True, exist_ok=True)
    (keep / "review-moderation.json").write_text(json.dumps(template, indent=2))
    # Runner v2 keeps the job graph in the staged Beam pipeline proto; read its top-level stages.
    from apache_beam.portability.api import beam_runner_api_pb2
    graph = beam_runner_api_pb2.Pipeline()
    graph.ParseFromString(bucket.blob(next(n for n in staged if n.endswith("/pipeline.pb"))).download_as_bytes())
    stages = [graph.components.transforms[t].unique_name for root in graph.root_transform_ids
              for t in graph.components.transforms[root].subtransforms] or list(graph.root_transform_ids)
    # The package workers install: the sdist built from setup.py must carry the code and schemas.
    with tarfile.open(fileobj=io.BytesIO(bucket.blob(next(n for n in staged if n.endswith("workflow.tar.gz")))
                                         .download_as_bytes())) as tar:
        packaged = sorted(n.split("/", 1)[1] for n in tar.getnames() if n.count("/") >= 1)
    return {"seconds": round(time.monotonic() - started, 1), "job_type": template.get("type"),
            "worker_image": template["environment"]["workerPools"][0].get("workerHarnessContainerImage"),
            "stages": stages, "transforms": len(graph.components.transforms), "staged": staged,
            "packaged": packaged, "template": str(keep / "review-moderation.json")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--keep", type=Path, default=ROOT / "out" / "dataflow-template")
    args = parser.parse_args()
    with GcsEmulator(port=args.port) as gcs:
        result = build(gcs, args.keep)
    print(f"Template built offline in {result['seconds']} s: {result['job_type']}, "
          f"{result['transforms']} transforms, worker image {result['worker_image']}")
    print("Top-level stages:")
    for name in result["stages"]:
        print(f"  {name}")
    print(f"Worker package (workflow.tar.gz): {len(result['packaged'])} files, e.g. "
          + ", ".join(n for n in result["packaged"] if n.endswith(("run.py", "review.schema.json"))
                      or (n.startswith("pipeline/classifier/artifacts/") and n.endswith((".onnx", "/SHA256SUMS")))
                      or n.endswith("pinned_artifacts.json")))
    training = [n for n in result["packaged"] if n.startswith(("models/", "benchmarks/", "research/", "tests/"))]
    print(f"Training, benchmark, research or test files in the worker package: {len(training)}")
    print("Staged for workers:")
    for name in result["staged"]:
        print(f"  gs://{BUCKET}/{name}")
    print(f"Template JSON copied to {result['template']}")


if __name__ == "__main__":
    main()
