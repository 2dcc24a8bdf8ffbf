"""Parity: the same reviews through the batch job and through the streaming job give the same decisions.

Streaming sees a review only with what arrived before it, batch sees every copy in the run, so the
near-duplicate signal (and a policy that acts on it) can legitimately differ for reviews in a
near-duplicate cluster. The comparison is therefore exact (decision and reasons) for every review
that batch found in no cluster, and for clustered reviews only that each is decided exactly once;
dead letters are compared by code and message/line.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter

import apache_beam as beam
import pytest
from apache_beam.io.gcp.pubsub import PubsubMessage
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_stream import TestStream
from apache_beam.transforms.window import TimestampedValue

from pipeline.build import BatchConfig
from pipeline.context import RunContext
from pipeline.dedup.config import DedupConfig
from pipeline.policy import DEFAULT_POLICY
from pipeline.stream import MessagesToLines, StreamConfig, moderate_stream
from tests.conftest import DEMO_INPUT, RunOutput, run_pipeline

pytestmark = pytest.mark.slow
N_LINES = 300
SUB = "projects/p/subscriptions/parity"


def _append_to(path: str):
    """Appends each record as one pickled line (base64) to ``path``: collects across runner threads."""
    def add(record):
        import base64
        import pickle
        with open(path, "ab") as handle:
            handle.write(base64.b64encode(pickle.dumps(record)) + b"\n")
    return add


def _read(path) -> list:
    import base64
    import pickle
    if not path.exists():
        return []
    return [pickle.loads(base64.b64decode(line)) for line in path.read_bytes().splitlines() if line]


def test_batch_and_streaming_decide_the_same(tmp_path):
    lines = DEMO_INPUT.read_bytes().splitlines(keepends=True)[:N_LINES]
    sample = tmp_path / "sample.jsonl"
    sample.write_bytes(b"".join(lines))
    run_pipeline(str(sample), str(tmp_path / "batch"), "--run_id", "parity-batch")
    batch = RunOutput(str(tmp_path / "batch"))
    batch_decisions = {d["review_id"]: d for d in batch.records("decisions")}
    batch_dead = Counter((d["error_code"], d["source"]["line"]) for d in batch.records("dead_letter"))

    # Streaming: one message per non-blank line, message id = line number, in file order; an allowed
    # lateness wide enough that created_at is the event time unchanged, as in batch.
    t0 = dt.datetime(2026, 11, 25, tzinfo=dt.timezone.utc).timestamp()
    msgs = [TimestampedValue(PubsubMessage(line.rstrip(b"\r\n"), {}, message_id=str(i)), t0 + i)
            for i, line in enumerate(lines, start=1) if line.strip()]
    stream = TestStream()
    for start in range(0, len(msgs), 50):
        stream = stream.add_elements(msgs[start:start + 50])
    stream = stream.advance_watermark_to_infinity()
    policy = DEFAULT_POLICY
    cfg = StreamConfig(base=BatchConfig(input=SUB, output="", dedup=DedupConfig()), input_subscription=SUB,
                       allowed_lateness_s=100 * 365 * 86400)
    ctx = RunContext.create("parity-stream", policy, commit="test")
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    p = beam.Pipeline(options=options)
    out = moderate_stream(p | stream | beam.ParDo(MessagesToLines(SUB, 1 << 20)), ctx, cfg, policy)
    out["decisions"] | "CollectDecisions" >> beam.Map(_append_to(str(tmp_path / "decisions.b64")))
    out["dead_letters"] | "CollectDead" >> beam.Map(_append_to(str(tmp_path / "dead.b64")))
    p.run().wait_until_finish()
    collected = {"decisions": _read(tmp_path / "decisions.b64"), "dead": _read(tmp_path / "dead.b64")}

    stream_ids = Counter(d.review_id for d in collected["decisions"])
    assert [rid for rid, n in stream_ids.items() if n > 1] == [], "a review was decided twice"
    assert set(stream_ids) == set(batch_decisions), "the same reviews must be decided"
    stream_decisions = {d.review_id: d for d in collected["decisions"]}
    stream_dead = Counter((d.error_code, d.source.line) for d in collected["dead"])
    assert stream_dead == batch_dead

    unclustered = [rid for rid, d in batch_decisions.items()
                   if (d["signals"]["near_duplicate"]["values"].get("cluster_size") or 1) == 1]
    assert len(unclustered) > 0.8 * len(batch_decisions)
    differ = [(rid, (batch_decisions[rid]["decision"], batch_decisions[rid]["reasons"]),
               (stream_decisions[rid].decision, list(stream_decisions[rid].reasons)))
              for rid in unclustered
              if (batch_decisions[rid]["decision"], batch_decisions[rid]["reasons"])
              != (stream_decisions[rid].decision, list(stream_decisions[rid].reasons))]
    assert differ == []
    clustered = len(batch_decisions) - len(unclustered)
    same = sum(1 for rid, d in batch_decisions.items() if rid not in unclustered and
               (d["decision"], d["reasons"]) == (stream_decisions[rid].decision, list(stream_decisions[rid].reasons)))
    print(f"parity: {len(unclustered)} unclustered reviews identical; clustered {clustered}, "
          f"of which {same} identical")
