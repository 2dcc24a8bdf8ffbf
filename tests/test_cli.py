"""The entry points: clear usage errors, module and console forms."""
from __future__ import annotations

import json
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


def test_moderator_overrides_and_a_custom_policy(tmp_path):
    src = tmp_path / "in.jsonl"
    long_text = ("This is hands down the best kettle I have ever owned, amazing quality, super fast shipping "
                 "and the seller is so helpful, everyone in my family wants one now")
    lines = [json.dumps({"review_id": f"c{i}", "product_id": "p", "author_id": f"a{i}", "rating": 5,
                         "body": long_text + "!" * i, "created_at": f"2025-01-0{i + 1}T00:00:00Z"}) for i in range(3)]
    src.write_text("\n".join(lines) + "\n")
    overrides = tmp_path / "overrides.csv"
    overrides.write_text("review_id,decision,moderator,note,reasons\n"
                         "c0,publish,mod-1,appeal: the original that others copied,\n")
    proc = run("--input", str(src), "--output", str(tmp_path / "out"), "--overrides", str(overrides))
    assert proc.returncode == 0, proc.stderr[-2000:]
    decisions = {}
    for path in (tmp_path / "out" / "decisions").glob("*.jsonl"):
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            decisions[rec["review_id"]] = rec
    assert decisions["c0"]["decision"] == "publish" and decisions["c0"]["reasons"] == ["moderator_override"]
    assert decisions["c0"]["provenance"]["override"]["moderator"] == "mod-1"
    assert decisions["c1"]["decision"] == "hold_for_review" and decisions["c1"]["provenance"]["override"] is None
    assert decisions["c2"]["decision"] == "hold_for_review"
    policy = tmp_path / "strict.yaml"
    policy.write_text(open(ROOT / "pipeline" / "policies" / "default.yaml").read()
                      .replace("id: review-integrity-default", "id: strict").replace('version: "1.3.0"', 'version: "2.0.0"')
                      .replace("large_from_cluster_size: 5", "large_from_cluster_size: 2"))
    proc = run("--input", str(src), "--output", str(tmp_path / "strict"), "--policy", str(policy))
    assert proc.returncode == 0, proc.stderr[-2000:]
    rec = json.loads(next((tmp_path / "strict" / "decisions").glob("*.jsonl")).read_text().splitlines()[0])
    assert rec["provenance"]["policy"] == {"id": "strict", "version": "2.0.0"}
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\nversion: '1'\n")
    proc = run("--input", str(src), "--output", str(tmp_path / "bad"), "--policy", str(bad))
    assert proc.returncode == 2 and "policy" in proc.stderr


def test_the_allocator_setting_can_be_switched_off(monkeypatch):
    from pipeline.run import return_freed_memory_sooner
    monkeypatch.setenv("REVIEW_MALLOC_TUNING", "0")
    assert return_freed_memory_sooner() is False
    monkeypatch.delenv("REVIEW_MALLOC_TUNING")
    import ctypes.util
    if ctypes.util.find_library("c") and "libc.so.6" in (ctypes.util.find_library("c") or ""):
        assert return_freed_memory_sooner() is True   # glibc: mallopt accepted both settings


LINE = ('{"review_id":"r","product_id":"p","author_id":"a","rating":1,"body":"Terrible.",'
        '"created_at":"2025-01-01T00:00:00Z"}\n')


def _usage_error(*argv):
    from pipeline.run import UsageError, run as run_job
    with pytest.raises((UsageError, SystemExit)) as exn:
        run_job(list(argv))
    return exn.value


def test_input_that_beam_would_read_otherwise_is_a_usage_error(tmp_path):
    """Nothing named by --input may go unread silently: a directory, a file Beam's matcher skips (a
    backslash in its name), a file whose name Beam reads as a pattern, a second --input."""
    out = str(tmp_path / "out")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.jsonl").write_text(LINE)
    assert "is a directory" in str(_usage_error("--input", str(tmp_path / "d"), "--output", out))
    (tmp_path / "d" / "back\\slash.jsonl").write_text(LINE)
    assert "skips them" in str(_usage_error("--input", str(tmp_path / "d" / "*.jsonl"), "--output", out))
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "reviews[1].jsonl").write_text(LINE)
    (tmp_path / "e" / "reviews1.jsonl").write_text(LINE)
    assert "glob characters" in str(_usage_error("--input", str(tmp_path / "e" / "reviews[1].jsonl"), "--output", out))
    assert _usage_error("--input", str(tmp_path / "e" / "reviews1.jsonl"), "--input", str(tmp_path / "d" / "a.jsonl"),
                        "--output", out).code == 2


def test_ctrl_c_stops_a_streaming_wait_whichever_thread_the_kernel_hands_it_to():
    """The streaming launcher waits for the job in a join; the kernel may deliver SIGINT to any
    thread (often a gRPC pull thread). An untimed join never ran Python's handler, and the stream
    demo's job ran on for 60 s until SIGTERM. The join must raise KeyboardInterrupt promptly."""
    import signal
    import threading
    import time

    from pipeline.run import _join_interruptibly
    stop = threading.Event()
    busy = threading.Thread(target=stop.wait, daemon=True)
    busy.start()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.3, lambda: signal.pthread_kill(busy.ident, signal.SIGINT))
    try:
        timer.start()
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            _join_interruptibly(busy, 20)
        assert time.monotonic() - started < 5
        # (Python 3.11 marks a thread whose join was interrupted as stopped: use another one)
        other = threading.Thread(target=stop.wait, daemon=True)
        other.start()
        started = time.monotonic()
        _join_interruptibly(other, 0.5)   # no signal: returns at the timeout, the thread still alive
        assert 0.4 < time.monotonic() - started < 3 and other.is_alive()
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
        stop.set()


def test_stop_signals_cancel_once_even_when_sigint_was_ignored_at_start():
    """A background shell starts the job with SIGINT ignored (Python then installs no Ctrl-C
    handler). StopSignals makes SIGINT and SIGTERM stop it: remembered while the job starts, raised
    once armed, and a second signal during the cancel is only logged."""
    import os
    import signal

    from pipeline.run import StopSignals
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with StopSignals() as stop:
            os.kill(os.getpid(), signal.SIGTERM)        # while the job starts: remembered, not raised
            assert stop.requested == "SIGTERM"
            with pytest.raises(KeyboardInterrupt):
                stop.arm()
            os.kill(os.getpid(), signal.SIGINT)         # during the cancel: only logged
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN   # restored
        with StopSignals() as stop:
            stop.arm()
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGINT)
                for _ in range(100):                    # the handler runs between bytecodes
                    pass
            stop.disarm()
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(100):
                pass
        assert stop.requested == "SIGINT"
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
