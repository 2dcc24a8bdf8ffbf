"""Run summary: counts of everything, and the conservation rule checked loudly.

Conservation: every non-blank input line ends as exactly one decision or one dead letter, so
``input_lines == decisions + dead_letters``. The summary is written either way; when the rule
fails, the job then fails with an error that says by how much.
"""
from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from typing import Dict, Iterable, Tuple

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipeline.context import RunContext
from pipeline.io import write_json

LOG = logging.getLogger(__name__)
RULE = "input_lines == decisions + dead_letters"
SUMMARY_FILE = "run_summary.json"


class ConservationError(RuntimeError):
    """Raised when records were lost or duplicated between input and output."""


def build_summary(counts: Iterable[Tuple[Tuple[str, str], int]], ctx: RunContext) -> Dict:
    """(category, key) counts → the run_summary.json document."""
    by: Dict[str, Counter] = {}
    for (category, key), n in counts:
        by.setdefault(category, Counter())[key] += n
    get = lambda cat: dict(sorted(by.get(cat, Counter()).items()))  # noqa: E731
    decisions = get("decision")
    dead = get("dead_letter")
    input_lines = sum(get("input").values())
    n_decisions, n_dead = sum(decisions.values()), sum(dead.values())
    ok = input_lines == n_decisions + n_dead
    return {
        "run_id": ctx.run_id,
        "input_lines": input_lines,
        "blank_lines": sum(get("blank").values()),
        "decisions": n_decisions,
        "dead_letters": n_dead,
        "decisions_by_type": decisions,
        "dead_letters_by_code": dead,
        "redeliveries": dead.get("redelivery", 0),
        "reasons": get("reason"),
        "languages": get("language"),
        "published": sum(get("published").values()),
        "products": sum(get("product").values()),
        "redacted_reviews": sum(get("redacted").values()),
        "conservation": {
            "ok": ok, "rule": RULE,
            "detail": f"{input_lines} input lines = {n_decisions} decisions + {n_dead} dead letters"
            if ok else f"{input_lines} input lines != {n_decisions} decisions + {n_dead} dead letters "
                       f"(difference {input_lines - n_decisions - n_dead})"},
        "pipeline": ctx.pipeline_dict(),
        "policy": ctx.policy_dict(),
        "detectors": _detectors(get("detector")),
        "duplicate_patterns": get("duplicate_pattern"),
        "checks": [{"id": cid, "version": ver} for cid, ver in ctx.checks],
        "input": ctx.input,
        "output": ctx.output,
        "written_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


class WriteRunSummary(beam.PTransform):
    """Counts from every output → ``<output>/run_summary.json``; fails the job if records were lost.

    Takes a dict of PCollections: ``lines`` (RawLine), ``blank`` (int counts), ``decisions``
    (Decision), ``dead_letters`` (DeadLetter), ``published``, ``products``.
    """

    def __init__(self, ctx: RunContext):
        super().__init__()
        self._ctx = ctx

    def expand(self, pcolls):
        keyed = [
            pcolls["lines"] | "CountLines" >> beam.Map(lambda _: (("input", "lines"), 1)),
            pcolls["blank"] | "CountBlank" >> beam.Map(lambda n: (("blank", "lines"), n)),
            pcolls["decisions"] | "CountDecisions" >> beam.FlatMap(_decision_keys),
            pcolls["dead_letters"] | "CountDeadLetters" >> beam.Map(lambda d: (("dead_letter", d.error_code), 1)),
            pcolls["published"] | "CountPublished" >> beam.Map(lambda _: (("published", "all"), 1)),
            pcolls["products"] | "CountProducts" >> beam.Map(lambda _: (("product", "all"), 1)),
        ]
        ctx = self._ctx
        return (keyed
                | "FlattenCounts" >> beam.Flatten()
                | "SumPerKey" >> beam.CombinePerKey(sum)
                | "AllCounts" >> beam.combiners.ToList()
                | "WriteSummary" >> beam.Map(_write_and_check, ctx))


def _detectors(counts: Dict[str, int]) -> Dict[str, Dict[str, int]]:
    """{"near_duplicate:scored": 5, ...} → {"near_duplicate": {"scored": 5}, ...}."""
    out: Dict[str, Dict[str, int]] = {}
    for key, n in counts.items():
        name, status = key.split(":", 1)
        out.setdefault(name, {})[status] = n
    return out


def _decision_keys(decision):
    yield ("decision", decision.decision), 1
    for name, signal in decision.signals.items():
        yield ("detector", f"{name}:{signal['status']}"), 1
        pattern = signal.get("values", {}).get("pattern") if name == "near_duplicate" else None
        if pattern:
            yield ("duplicate_pattern", pattern), 1
    yield ("language", decision.language or "und"), 1
    for reason in decision.reasons:
        yield ("reason", reason), 1
    if decision.redactions:
        yield ("redacted", "reviews"), 1


def _write_and_check(counts, ctx: RunContext):
    summary = build_summary(counts, ctx)
    path = FileSystems.join(ctx.output.rstrip("/"), SUMMARY_FILE)
    write_json(path, summary)
    LOG.info("Run summary written to %s: %s", path, summary["conservation"]["detail"])
    if not summary["conservation"]["ok"]:
        raise ConservationError(f"conservation rule broken ({RULE}): {summary['conservation']['detail']}; "
                                f"see {path}")
    return summary
