"""make bench-stream: the streaming job against the real Pub/Sub emulator at increasing rates.

    python -m benchmarks.bench_stream [--rates 5,10,20,50] [--seconds 60]

For each rate, ``pipeline.local.stream_demo.run_demo`` starts the emulator and the streaming job
(DirectRunner), publishes rate × seconds demo reviews at that rate (capped by the sample's 2,861
lines), and reads every moderated event back: publish → decision latency (p50, p95, max), whether
the backlog grew (median latency of the last quarter of decisions against the first), and
conservation (every message one decision or one dead letter). Prints one JSON object per rate and
a summary against the targets: p95 ≤ 2 s at 5 msg/s; ≥ 20 msg/s sustained with p95 ≤ 5 s.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile

from pipeline.local.stream_demo import run_demo

SAMPLE_LINES = 2861


def measure(rate: float, seconds: float, output: str) -> dict:
    count = min(SAMPLE_LINES, max(20, int(rate * seconds)))
    with contextlib.redirect_stdout(io.StringIO()):
        report = run_demo(count=count, rate=rate, output=output, echo=False)
    lat = report.get("latency_ms", {})
    first, last = lat.get("first_quarter_median"), lat.get("last_quarter_median")
    return {"rate_per_s": rate, "messages": report.get("published_messages"),
            "achieved_rate_per_s": round(report["published_messages"] / report["publish_seconds"], 1)
            if report.get("publish_seconds") else None,
            "p50_ms": lat.get("median"), "p95_ms": lat.get("p95"), "max_ms": lat.get("max"),
            "first_quarter_median_ms": first, "last_quarter_median_ms": last,
            "backlog_grows": bool(first and last and last > 2 * first + 1000),
            "conservation_ok": report.get("conservation_ok"), "files_complete": report.get("files_complete")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rates", default="5,10,20,50")
    ap.add_argument("--seconds", type=float, default=60)
    args = ap.parse_args(argv)
    rows = []
    for rate in [float(r) for r in args.rates.split(",")]:
        row = measure(rate, args.seconds, tempfile.mkdtemp(prefix=f"bench-stream-{rate:g}-"))
        print(json.dumps(row), flush=True)
        rows.append(row)
    ok = [r for r in rows if r["conservation_ok"] and not r["backlog_grows"]]
    at5 = next((r for r in rows if r["rate_per_s"] == 5), None)
    summary = {"p95_at_5_ms": at5 and at5["p95_ms"], "target_p95_at_5_met": bool(at5 and at5["p95_ms"] <= 2000),
               "highest_rate_sustained_p95_le_5s": max((r["rate_per_s"] for r in ok if r["p95_ms"] <= 5000), default=None)}
    summary["target_20_per_s_met"] = bool(summary["highest_rate_sustained_p95_le_5s"]
                                          and summary["highest_rate_sustained_p95_le_5s"] >= 20)
    print(json.dumps(summary), flush=True)
    return 0 if all(r["conservation_ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
