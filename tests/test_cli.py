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


def test_date_placeholder_selects_the_day_folder(tmp_path):
    day = tmp_path / "in" / "2026-11-24"
    day.mkdir(parents=True)
    (day / "a.jsonl").write_text('{"review_id":"r","product_id":"p","author_id":"a","rating":5,"body":"Good.",'
                                 '"created_at":"2026-11-24T10:00:00Z"}\n')
    proc = run("--input", str(tmp_path / "in" / "{date}" / "*.jsonl"), "--output", str(tmp_path / "out" / "{date}"),
               "--run_date", "2026-11-24")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "out" / "2026-11-24" / "run_summary.json").exists()
    bad = run("--input", str(tmp_path / "in" / "{date}" / "*.jsonl"), "--output", str(tmp_path / "o"),
              "--run_date", "24/11/2026")
    assert bad.returncode == 2 and "not YYYY-MM-DD" in bad.stderr
