"""Behavioural detector benchmark (`make bench-behaviour`): one JSON object.

Runs the batch detector's core (``pipeline.behaviour.detect.analyse``, exactly what the Beam stage
calls once per run over this run's reviews plus the store's retained ones) over every review of a
YelpZip-format file (default: ../shared/datasets/yelpzip-metadata.tsv.gz, 608,598 reviews, read in
place), and reports wall time per phase, peak resident memory, and what was found.

    python -m benchmarks.bench_behaviour [--metadata FILE] [--limit N] [--beam N]

``--beam N`` also runs the Beam stage itself (``DetectBehaviour`` on DirectRunner, in-memory
items) on the first N reviews and reports its wall time (``beam_stage_s``): the stage adds
the per-item join to the analysis.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

from pipeline.behaviour.config import BehaviourConfig
from pipeline.behaviour.detect import Event, analyse

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "datasets" / "yelpzip-metadata.tsv.gz"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--metadata", default=str(DEFAULT))
    parser.add_argument("--limit", type=int, default=0, help="only the first N reviews (0: all)")
    parser.add_argument("--beam", type=int, default=0, help="also run the Beam stage on the first N reviews")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    opener = gzip.open if args.metadata.endswith(".gz") else open
    events = []
    with opener(args.metadata, "rt", encoding="utf-8") as handle:
        for i, line in enumerate(handle):
            if args.limit and i >= args.limit:
                break
            user, prod, _rating, _label, day = line.split()[:5]  # the rating is never passed on
            ts = float(np.datetime64(day[:10], "D").astype("datetime64[s]").astype(np.int64))
            events.append(Event(f"y{i}", f"u{user}", f"p{prod}", ts))
    t1 = time.perf_counter()
    rss_loaded = rss_mb()
    cfg = BehaviourConfig()
    res = analyse(events, cfg)
    t2 = time.perf_counter()
    out = {
        "bench": "behaviour", "reviews": len(events), "detector_version": cfg.version,
        "load_s": round(t1 - t0, 2), "analyse_s": round(t2 - t1, 2),
        "reviews_per_s": round(len(events) / max(t2 - t1, 1e-9)),
        "peak_rss_mb": round(rss_mb(), 1), "rss_after_load_mb": round(rss_loaded, 1),
        "groups": len(res.groups), "group_reviews": sum(1 for v in res.coordinated_group.values() if v["evidence"]),
        "velocity_evidence": sum(1 for v in res.author_velocity.values() if v["evidence"]),
        "velocity_threshold_per_day": res.velocity_threshold,
        "burst_reviews": sum(1 for v in res.product_burst.values() if v["burst"]),
        "product_alerts": len(res.product_alerts), "day_resolution": res.day_resolution,
        "cpu_count": os.cpu_count(),
    }
    if args.beam:
        out.update(beam_stage(events[:args.beam], cfg))
    print(json.dumps(out))
    return 0


def beam_stage(events, cfg: BehaviourConfig) -> dict:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.transforms.behaviour import DetectBehaviour
    from schemas.records import InputRef, Item, Review

    def to_item(e: Event) -> Item:
        created = np.datetime64(int(e.ts), "s").astype(str) + "Z"
        review = Review(review_id=e.review_id, product_id=e.product_id, author_id=e.author_id, rating=3,
                        body="-", created_at=created)  # the stage never reads rating or body
        return Item(review=review, ref=InputRef("bench", 1), ingested_at=created, clean_body="-", language="und")

    items = [to_item(e) for e in events]
    t0 = time.perf_counter()
    with beam.Pipeline(options=PipelineOptions(["--direct_num_workers=1"])) as p:
        out, alerts = p | beam.Create(items, reshuffle=False) | DetectBehaviour(cfg)
        out | "Count" >> beam.combiners.Count.Globally()
    return {"beam_stage_reviews": len(items), "beam_stage_s": round(time.perf_counter() - t0, 1),
            "peak_rss_mb_after_beam": round(rss_mb(), 1)}


if __name__ == "__main__":
    sys.exit(main())
