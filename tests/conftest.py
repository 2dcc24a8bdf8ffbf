"""Shared fixtures: a demo run (executed once per session) and a real GCS emulator."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.files import read_json, read_json_lines

ROOT = Path(__file__).resolve().parents[1]
DEMO_INPUT = ROOT / "pipeline" / "data" / "demo_reviews.jsonl"
DEMO_EXPECTED = ROOT / "pipeline" / "data" / "demo_expected.json"
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"
ARTIFACTS = ROOT / "test-artifacts"


def run_pipeline(input_pattern: str, output: str, *extra: str, classifier: bool = False) -> dict:
    """Runs the batch job in this process (DirectRunner) and returns its run summary.

    The classifier is off unless asked for: only the tests about detection need its ~10 s."""
    from pipeline.run import run
    flags = [] if classifier else ["--classifier=false"]
    return run(["--input", input_pattern, "--output", output, *flags, *extra])


class RunOutput:
    """The files of one run, read back as records."""

    def __init__(self, prefix: str):
        self.prefix = prefix.rstrip("/")

    def records(self, name: str) -> list:
        return list(read_json_lines(f"{self.prefix}/{name}/*.jsonl"))

    @property
    def summary(self) -> dict:
        return read_json(f"{self.prefix}/run_summary.json")


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> RunOutput:
    out = tmp_path_factory.mktemp("demo") / "out"
    run_pipeline(str(DEMO_INPUT), str(out), "--run_id", "test-demo", classifier=True)
    return RunOutput(str(out))


@pytest.fixture(scope="session")
def demo_expected() -> dict:
    return json.loads(DEMO_EXPECTED.read_text())


@pytest.fixture(scope="session")
def gcs():
    from pipeline.local.gcs import GcsEmulator
    from pipeline.local import patched_environ
    with GcsEmulator() as emulator, patched_environ(emulator.env()):
        yield emulator


@pytest.fixture
def keyed(monkeypatch):
    """The widget tests' signing key (tests.test_widget_docs.TEST_KEY) in the environment, as
    ``pipeline.verify`` and ``widget.serve`` read it."""
    from pipeline import signing
    from tests.test_widget_docs import TEST_KEY
    monkeypatch.setenv(signing.ENV_KEY, TEST_KEY.secret.decode())
    monkeypatch.setenv(signing.ENV_KEY_ID, TEST_KEY.key_id)
