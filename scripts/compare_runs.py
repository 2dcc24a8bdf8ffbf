"""Compare two batch runs' outputs record by record, volatile fields removed.

    python -m scripts.compare_runs OLD_PREFIX NEW_PREFIX

Volatile: times (``decided_at``, ``ingested_at``, ``generated_at``), the pipeline commit, the run's
output path, the input's folder (file names are compared), signatures and signed manifests (they sign the times); and a widget document's
``moderation.detectors``, which ``pipeline.display`` takes from whichever published review the
grouping hands it first (the per-review statuses differ, so it is order-dependent in any two
runs; counted apart as ``widget_detectors_differ``). Everything else must match:
per output folder, the multiset of records (as canonical JSON) of one run against the other's.
Prints one JSON object: per folder, records in each run and how many differ; exit 1 if any does.
"""
from __future__ import annotations

import glob
import json
import os
import sys
from collections import Counter

FOLDERS = ("decisions", "published", "dead_letter", "products", "review_queue", "restricted/originals",
           "product_alerts", "widget")
VOLATILE = {"decided_at", "ingested_at", "generated_at", "commit", "signature", "manifest", "manifest_signature",
            "output", "started_at", "finished_at", "wall_s", "written_at"}


def _strip(obj):
    if isinstance(obj, dict):
        return {k: (os.path.basename(v) if k in ("uri", "input") and isinstance(v, str) else _strip(v))
                for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def records(prefix: str, folder: str) -> Counter:
    out: Counter = Counter()
    for path in sorted(glob.glob(os.path.join(prefix, folder, "*"))):
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        docs = [json.loads(text)] if path.endswith(".json") else [json.loads(x) for x in text.split("\n") if x.strip()]
        for doc in docs:
            doc = _strip(doc)
            if folder == "widget" and isinstance(doc.get("moderation"), dict):
                doc["moderation"].pop("detectors", None)
            out[json.dumps(doc, sort_keys=True, ensure_ascii=False)] += 1
    return out


def widget_detectors_differ(old: str, new: str) -> int:
    differ = 0
    for path in glob.glob(os.path.join(old, "widget", "*.json")):
        other = os.path.join(new, "widget", os.path.basename(path))
        if os.path.exists(other):
            a, b = (json.load(open(p, encoding="utf-8")).get("moderation", {}).get("detectors") for p in (path, other))
            differ += a != b
    return differ


def compare(old: str, new: str) -> dict:
    report = {}
    for folder in FOLDERS:
        a, b = records(old, folder), records(new, folder)
        report[folder] = {"old": sum(a.values()), "new": sum(b.values()),
                          "only_old": sum((a - b).values()), "only_new": sum((b - a).values())}
    report["widget_detectors_differ"] = widget_detectors_differ(old, new)
    summaries = [_strip(json.load(open(os.path.join(p, "run_summary.json")))) for p in (old, new)]
    report["run_summary_identical"] = summaries[0] == summaries[1]
    if not report["run_summary_identical"]:
        report["run_summary_diff_keys"] = sorted(k for k in set(summaries[0]) | set(summaries[1])
                                                 if summaries[0].get(k) != summaries[1].get(k))
    report["identical"] = report["run_summary_identical"] and all(
        r["only_old"] == 0 and r["only_new"] == 0 for k, r in report.items() if isinstance(r, dict))
    return report


if __name__ == "__main__":
    result = compare(sys.argv[1], sys.argv[2])
    print(json.dumps(result, indent=1))
    sys.exit(0 if result["identical"] else 1)
