"""The entry points: clear usage errors, module and console forms."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def run(*args, exe=None):
    cmd = [exe] if exe else [sys.executable, "-m", "pipeline.run"]
    return subprocess.run(cmd + list(args), cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_missing_flags_is_a_usage_error():
    proc = run()
    assert proc.returncode == 2 and "--input PATTERN and --output PREFIX are required" in proc.stderr


def test_input_matching_nothing_is_a_usage_error(tmp_path):
    proc = run("--input", str(tmp_path / "nothing-*.jsonl"), "--output", str(tmp_path / "out"))
    assert proc.returncode == 2 and "matches no file" in proc.stderr


def test_console_entry_point_runs_a_job(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"review_id":"r","product_id":"p","author_id":"a","rating":1,"body":"Terrible.",'
                   '"created_at":"2025-01-01T00:00:00Z"}\nnot json\n')
    exe = os.path.join(os.path.dirname(sys.executable), "review-moderation")
    proc = run("--input", str(src), "--output", str(tmp_path / "out"), exe=exe)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "conservation OK: 2 input lines = 1 decisions + 1 dead letters" in proc.stdout
    assert f"Outputs under {tmp_path / 'out'}/" in proc.stdout
