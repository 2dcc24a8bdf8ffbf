"""``make stream-demo``: the streaming job on DirectRunner against the real Pub/Sub emulator.

Starts the emulator, creates the topics and subscriptions, starts ``python -m pipeline.run
--streaming`` as a child process, publishes the demo sample at a steady rate, prints each
moderated event as it arrives with its latency (publish → event received), reports median and
p95 latency, checks that every published message came back as exactly one decision or dead
letter, that the windowed files hold them all, and that every product's newest widget document
carries a signed streaming manifest that vouches for exactly its published records (what
``python -m pipeline.verify`` checks), then stops the job (SIGINT → ``result.cancel()``), the emulator, and checks that no
process of either is left.

    python -m pipeline.local.stream_demo [--count 200] [--rate 5] [--output out/stream-demo]

The demo re-times each review's ``created_at`` to its publish time (minus up to 2 s of jitter, so
events arrive out of order), as reviews arriving live would be; every 50th review keeps a
``created_at`` three hours old, beyond the allowed lateness, to show late data being decided and
written rather than dropped. Every 40th message is published twice (a redelivery).
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from pipeline.local.pubsub import EmulatorMissing, PubSubEmulator, group_members
from pipeline.timestamps import parse_rfc3339

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "pipeline" / "data" / "demo_reviews.jsonl"
WARMUP_ID = "warmup-0000"


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def load_sample(count: int, path: Path = SAMPLE) -> List[bytes]:
    lines = [line for line in path.read_bytes().splitlines() if line.strip()]
    return lines[:count]


def retime(line: bytes, now: float, rng: random.Random, late: bool) -> bytes:
    """The review with created_at near ``now`` (or 3 h old when ``late``); other lines unchanged."""
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):   # the sample's malformed and too-deeply-nested lines
        return line
    if not isinstance(obj, dict) or not isinstance(obj.get("created_at"), str):
        return line
    try:
        parse_rfc3339(obj["created_at"])
    except ValueError:
        return line  # a bad timestamp stays bad: it must become a dead letter
    obj["created_at"] = _iso(now - (3 * 3600 if late else rng.uniform(0, 2)))
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def percentile(values: List[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(q * (len(ordered) - 1)))))
    return ordered[k]


class Listener:
    """Pulls the events and dead-letter subscriptions; records when each review's outcome arrived."""

    def __init__(self, emulator: PubSubEmulator, subscriptions: List[str], echo: bool):
        self._client = emulator.subscriber()
        self._subs = subscriptions
        self._echo = echo
        self.lock = threading.Lock()
        self.outcomes: Dict[str, List[tuple]] = {}   # message key → [(kind, code, received_at)]
        self.kinds = Counter()
        self.products: Dict[str, dict] = {}
        self.sent: Dict[str, float] = {}
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._pull, args=(s,), daemon=True) for s in subscriptions]

    def start(self) -> "Listener":
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)
        self._client.close()

    def _pull(self, sub: str) -> None:
        while not self._stop.is_set():
            try:
                resp = self._client.pull(subscription=sub, max_messages=100, timeout=5)
            except Exception:  # noqa: BLE001 - deadline exceeded with nothing to pull
                continue
            now = time.time()
            if resp.received_messages:
                self._client.acknowledge(subscription=sub, ack_ids=[m.ack_id for m in resp.received_messages])
            for received in resp.received_messages:
                self._record(received.message, now)

    def _record(self, message, now: float) -> None:
        kind = message.attributes.get("kind", "?")
        body = json.loads(message.data)
        with self.lock:
            self.kinds[kind] += 1
            if kind == "product":
                self.products[body["product_id"]] = body
                return
            if kind in ("published", "widget_document", "product_alert"):
                return
            if kind == "decision":
                key, code = body["review_id"], body["decision"]
            else:  # dead letter: keyed by the message id the pipeline recorded as source.line
                key, code = f"msg:{body['source']['line']}", body["error_code"]
            self.outcomes.setdefault(key, []).append((kind, code, now, body))
        if self._echo and key != WARMUP_ID:
            sent = self.sent.get(key)
            latency = f"{(now - sent) * 1000:6.0f} ms" if sent else "      ?"
            what = body.get("review_id") or key
            print(f"  {kind:<11} {code:<20} {what:<24} latency {latency}", flush=True)


def _stop_group(proc: subprocess.Popen, first=signal.SIGINT, grace: float = 60.0) -> float:
    """Stops a child started with start_new_session: ``first``, then SIGTERM, then SIGKILL."""
    started = time.monotonic()
    pgid = proc.pid
    for sig, wait in ((first, grace), (signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        if proc.poll() is not None and not group_members(pgid):
            break
        with contextlib.suppress(ProcessLookupError):
            if sig == first:
                os.kill(proc.pid, sig)   # the launcher itself: KeyboardInterrupt → result.cancel()
            else:
                os.killpg(pgid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and (proc.poll() is None or group_members(pgid)):
            time.sleep(0.2)
    return time.monotonic() - started


def logs_dir(output: str) -> Path:
    """Where the job's log and the report go: beside a local output, under out/ for a gs:// one."""
    if "://" in output:
        return Path("out") / (output.split("://", 1)[1].replace("/", "_") + "-logs")
    return Path(output).with_name(Path(output).name + "-logs")


# The DirectRunner's Pub/Sub read (with pipeline.direct_runner.pull_more_per_bundle) waits at most 2 s on an empty
# subscription and advances the watermark only when a pull returns; the last windows close that long
# after the watermark passes them (late panes: 10 s after their first late review).
DIRECT_PUBSUB_PULL_TIMEOUT_S = 2


def _decided_in_files(pattern: str, key=lambda d: d.get("review_id")) -> set:
    """Keys (review ids by default) of the records in the files matching ``pattern`` (local or
    gs://); empty while none."""
    from pipeline.files import read_json_lines
    try:
        return {key(d) for d in read_json_lines(pattern)}
    except Exception:  # noqa: BLE001 - a file being renamed into place, or none yet
        return set()


def _dead_letter_key(d: dict) -> str:
    """A dead letter's message key, as the listener records it (``msg:<source.line>``)."""
    return f"msg:{(d.get('source') or {}).get('line')}"


def _count_files(pattern: str) -> int:
    from apache_beam.io.filesystems import FileSystems
    with contextlib.suppress(Exception):
        return len(FileSystems.match([pattern])[0].metadata_list)
    return 0


def _wait_for_decision_files(pattern: str, review_ids: set, timeout: float,
                             dead_pattern: Optional[str] = None, dead_keys: frozenset = frozenset()) -> dict:
    """Waits until the decision files hold every id in ``review_ids`` and the dead-letter files
    (``dead_pattern``) every message key in ``dead_keys``; how long it took and what is missing."""
    t0 = time.time()
    while True:
        missing = review_ids - _decided_in_files(pattern)
        if dead_keys:
            missing |= set(dead_keys) - _decided_in_files(dead_pattern, _dead_letter_key)
        if not missing or time.time() - t0 >= timeout:
            return {"wait_s": round(time.time() - t0, 1), "missing": sorted(missing)[:20],
                    "complete": not missing}
        time.sleep(1)


def _wait_for_verified(output: str, timeout: float) -> dict:
    """Waits until ``python -m pipeline.verify`` would pass on ``output``: every published record's
    signature, and every product's newest widget document's signed streaming manifest against them
    (with the key the job signs with: ``$REVIEW_SIGNING_KEY``, else the demo key)."""
    from pipeline import signing
    from pipeline.verify import verify_target
    key = signing.load_signing_key(None, False)
    keys = {key.key_id: key.secret}
    t0 = time.time()
    while True:
        try:
            report, ok = verify_target(output, keys)
        except Exception as exn:  # noqa: BLE001 - a file being renamed into place, or none yet
            report, ok = {"error": str(exn)[:200]}, False
        if ok or time.time() - t0 >= timeout:
            stream = report.get("stream_manifests") or {}
            return {"verified": ok, "wait_s": round(time.time() - t0, 1), "records": report.get("valid"),
                    "invalid_records": report.get("invalid"), "products": stream.get("products"),
                    "products_valid": stream.get("valid"), "mismatched": (stream.get("mismatched") or [])[:5],
                    **({"error": report["error"]} if "error" in report else {})}
        time.sleep(1)


OUTPUT_FOLDERS = ("published", "decisions", "dead_letter", "restricted", "review_queue", "widget_updates",
                  "product_alerts", "widget_index")


def clear_previous_run(output: str) -> None:
    """Removes a previous run's windowed files under a local ``output``: file names depend only on
    the window, so old files would otherwise be counted as this run's (and could hide missing ones)."""
    if "://" in output:
        return
    for name in OUTPUT_FOLDERS:
        shutil.rmtree(Path(output) / name, ignore_errors=True)


def run_demo(count: int = 200, rate: float = 5.0, output: str = "out/stream-demo", window_s: int = 10,
             echo: bool = True, drain_timeout: float = 120.0, startup_timeout: float = 240.0,
             redeliver_every: int = 40, late_every: int = 50, extra_args: Optional[List[str]] = None,
             extra_lines: Sequence[bytes] = ()) -> dict:
    """``extra_lines``: messages published after the sample's (tests: hostile input)."""
    rng = random.Random(7)
    lines = load_sample(count) + list(extra_lines)
    clear_previous_run(output)
    log_dir = logs_dir(output)
    log_dir.mkdir(parents=True, exist_ok=True)
    report: dict = {"count": len(lines), "rate_per_s": rate}
    with PubSubEmulator() as ps:
        print(f">> Pub/Sub emulator on {ps.host}", flush=True)
        reviews = ps.create_topic("reviews")
        sub = ps.create_subscription("reviews-moderation", "reviews")
        events = ps.create_topic("moderated-events")
        dead = ps.create_topic("dead-letters")
        events_sub = ps.create_subscription("widget-cache", "moderated-events")
        dead_sub = ps.create_subscription("dead-letter-watch", "dead-letters")
        cmd = [sys.executable, "-m", "pipeline.run", "--streaming", "--input_subscription", sub,
               "--output_topic", events, "--dead_letter_topic", dead, "--output", output,
               "--window_s", str(window_s), "--run_id", "stream-demo", *(extra_args or [])]
        print(">> " + " ".join(cmd), flush=True)
        env = {**os.environ, **ps.env()}
        job_log = open(log_dir / "pipeline.log", "wb")
        job = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=job_log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
        listener = Listener(ps, [events_sub, dead_sub], echo).start()
        publisher = ps.publisher()
        try:
            # Warm-up: the first review pays for imports and model loading; it is not measured.
            started = time.time()
            warm = json.dumps({"review_id": WARMUP_ID, "product_id": "warmup", "author_id": "demo", "rating": 5,
                               "body": "Warm-up review so the job has loaded everything.",
                               "created_at": _iso(time.time())}).encode()
            publisher.publish(reviews, warm).result(timeout=30)
            while WARMUP_ID not in listener.outcomes:
                if job.poll() is not None:
                    raise RuntimeError(f"the streaming job exited with {job.returncode}; see {log_dir}/pipeline.log")
                if time.time() - started > startup_timeout:
                    raise RuntimeError(f"no event for the warm-up review within {startup_timeout:.0f} s; "
                                       f"see {log_dir}/pipeline.log")
                time.sleep(0.2)
            report["startup_s"] = round(time.time() - started, 1)
            print(f">> job ready after {report['startup_s']} s; publishing {len(lines)} reviews at {rate}/s", flush=True)
            expected: Dict[str, str] = {}   # message key → review id (or None)
            interval = 1.0 / rate
            t0 = time.time()
            n = 0
            for i, line in enumerate(lines):
                copies = 2 if redeliver_every and i % redeliver_every == redeliver_every - 1 else 1
                data = retime(line, time.time(), rng, late=bool(late_every) and i % late_every == late_every - 1)
                for _ in range(copies):
                    target = t0 + n * interval
                    time.sleep(max(0.0, target - time.time()))
                    sent = time.time()
                    message_id = publisher.publish(reviews, data).result(timeout=30)
                    n += 1
                    try:
                        review_id = json.loads(data).get("review_id")
                    except (ValueError, AttributeError, RecursionError):
                        review_id = None
                    with listener.lock:
                        if isinstance(review_id, str) and review_id not in listener.sent:
                            listener.sent[review_id] = sent
                        listener.sent[f"msg:{message_id}"] = sent
                    expected[f"msg:{message_id}"] = review_id if isinstance(review_id, str) else None
            report["published_messages"] = n
            report["publish_seconds"] = round(time.time() - t0, 1)
            deadline = time.time() + drain_timeout
            while time.time() < deadline:
                with listener.lock:
                    got = sum(len(v) for k, v in listener.outcomes.items() if k != WARMUP_ID)
                if got >= n:
                    break
                time.sleep(0.5)
            time.sleep(2)  # anything extra (a second decision would break exactly-once) shows up now
            # The last windows' files are written once the watermark passes their end, which on the
            # DirectRunner needs an idle pull to time out: wait (bounded) until the decision files hold
            # every decided review, so the job is not cancelled with windows still open.
            with listener.lock:
                decided = {k for k, v in listener.outcomes.items() if k != WARMUP_ID
                           for kind, *_ in v if kind == "decision"}
                dead = frozenset(k for k, v in listener.outcomes.items() if k != WARMUP_ID
                                 for kind, *_ in v if kind != "decision")
            # dead letters too: a dead letter missing from the files when the job stops would be lost
            files = _wait_for_decision_files(f"{output}/decisions/*.jsonl", decided,
                                             timeout=DIRECT_PUBSUB_PULL_TIMEOUT_S + 3 * window_s + 15,
                                             dead_pattern=f"{output}/dead_letter/*.jsonl", dead_keys=dead)
            report["files_wait_s"], report["files_complete"] = files["wait_s"], files["complete"]
            report["files_missing"] = files["missing"]
            # every product's newest widget document vouches (signed) for exactly its published records
            report["manifests"] = _wait_for_verified(output, timeout=DIRECT_PUBSUB_PULL_TIMEOUT_S + 3 * window_s + 15)
        finally:
            listener.stop()
            print(">> stopping the streaming job (SIGINT → cancel)", flush=True)
            report["job_stop_s"] = round(_stop_group(job), 1)
            job_log.close()
            with contextlib.suppress(Exception):
                publisher.stop()
        emulator_pgid = ps._proc.pid if ps._proc else None
    report["emulator_left"] = group_members(emulator_pgid) if emulator_pgid else []
    report["job_left"] = group_members(job.pid)
    report.update(_summarise(listener, expected))
    report["files"] = {name: n for name in ("published", "decisions", "dead_letter", "restricted/originals",
                                            "review_queue") if (n := _count_files(f"{output}/{name}/*.jsonl"))}
    return report


def _summarise(listener: Listener, expected: Dict[str, Optional[str]]) -> dict:
    outcomes = {k: v for k, v in listener.outcomes.items() if k != WARMUP_ID}
    latencies, decisions, dead_codes = [], Counter(), Counter()
    accounted, missing, extra = 0, [], []
    decided_ids = Counter()
    for key, got in outcomes.items():
        for kind, code, received, _ in got:
            (decisions if kind == "decision" else dead_codes)[code] += 1
            if kind == "decision":
                decided_ids[key] += 1
            sent = listener.sent.get(key)
            if sent is not None and kind == "decision":
                latencies.append((received - sent) * 1000)
    claimed = Counter()
    for msg_key, review_id in expected.items():
        if msg_key in outcomes:
            accounted += 1
        elif review_id and claimed[review_id] < decided_ids.get(review_id, 0):
            claimed[review_id] += 1
            accounted += 1
        else:
            missing.append(msg_key)
    total = sum(decisions.values()) + sum(dead_codes.values())
    extra = [rid for rid, k in decided_ids.items() if k > 1]
    out = {"decision_events": sum(decisions.values()), "decisions_by_type": dict(decisions),
           "dead_letters": sum(dead_codes.values()), "dead_letters_by_code": dict(dead_codes),
           "outcomes": total, "missing": missing[:20], "decided_twice": extra[:20],
           "conservation_ok": total == len(expected) and not missing and not extra,
           "event_kinds": dict(listener.kinds), "products_seen": len(listener.products)}
    if latencies:
        quarter = max(1, len(latencies) // 4)   # in arrival order: a growing backlog shows as a rising latency
        out["latency_ms"] = {"n": len(latencies), "median": round(statistics.median(latencies)),
                             "p95": round(percentile(latencies, 0.95)), "max": round(max(latencies)),
                             "min": round(min(latencies)),
                             "first_quarter_median": round(statistics.median(latencies[:quarter])),
                             "last_quarter_median": round(statistics.median(latencies[-quarter:]))}
    return out


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200, help="demo sample lines to publish (default 200)")
    parser.add_argument("--rate", type=float, default=5.0, help="messages per second (default 5)")
    parser.add_argument("--output", default="out/stream-demo", help="prefix for the windowed files")
    parser.add_argument("--window_s", type=int, default=10, help="file window (default 10 s)")
    parser.add_argument("--quiet", action="store_true", help="do not print every event")
    args = parser.parse_args(argv)
    try:
        report = run_demo(args.count, args.rate, args.output, args.window_s, echo=not args.quiet)
    except EmulatorMissing as exn:
        print(f"error: {exn}", file=sys.stderr)
        return 2
    lat = report.get("latency_ms", {})
    print()
    print(f"published {report['published_messages']} messages ({report['count']} sample lines, "
          f"every 40th twice) at {report['rate_per_s']}/s in {report['publish_seconds']} s")
    print(f"decisions {report['decision_events']} {report['decisions_by_type']}")
    print(f"dead letters {report['dead_letters']} {report['dead_letters_by_code']}")
    print(f"conservation {'OK' if report['conservation_ok'] else 'FAILED'}: {report['outcomes']} outcomes for "
          f"{report['published_messages']} messages; missing {report['missing']}; decided twice {report['decided_twice']}")
    if lat:
        print(f"latency publish → decision event: median {lat['median']} ms, p95 {lat['p95']} ms, "
              f"max {lat['max']} ms (n={lat['n']}, {report['rate_per_s']} msg/s, DirectRunner, 2 cores)")
    print(f"events by kind {report['event_kinds']}; product documents for {report['products_seen']} products")
    print(f"files under {args.output}: {report['files']}; every decision and dead letter in them: "
          f"{'yes' if report['files_complete'] else 'NO, missing ' + str(report['files_missing'])} "
          f"(waited {report['files_wait_s']} s for the last windows)")
    m = report["manifests"]
    print(f"signed streaming manifests: {m['products_valid']} of {m['products']} products' newest widget documents "
          f"vouch for exactly their {m['records']} verified published records, listed in the signed index: "
          f"{'yes' if m['verified'] else 'NO ' + json.dumps(m['mismatched'])} (pipeline.verify; waited {m['wait_s']} s)")
    print(f"job start-up {report['startup_s']} s; job stopped in {report['job_stop_s']} s; "
          f"left running: job {report['job_left'] or 'none'}, emulator {report['emulator_left'] or 'none'}")
    print(json.dumps(report, sort_keys=True), file=open(logs_dir(args.output) / "report.json", "w"))
    ok = (report["conservation_ok"] and report["files_complete"] and report["manifests"]["verified"]
          and not report["job_left"] and not report["emulator_left"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
