"""Run summary: counts of everything, and the conservation rule checked loudly.

Conservation: every non-blank input line ends as exactly one decision or one dead letter, so
``input_lines == decisions + dead_letters``. The summary is written either way; when the rule
fails, the job then fails with an error that says by how much.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import math
from collections import Counter
from typing import Dict, Iterable, Tuple

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipeline.context import RunContext
from pipeline.dedup.clusters import cluster_id
from pipeline.display import star_bucket
from pipeline.files import write_json
from pipeline.i18n import check_locale, localized_summary

LOG = logging.getLogger(__name__)
RULE = "input_lines == decisions + dead_letters"
SUMMARY_FILE = "run_summary.json"
REPORT_FILE = "report.html"


class ConservationError(RuntimeError):
    """Raised when records were lost or duplicated between input and output."""


def build_summary(counts: Iterable[Tuple[Tuple[str, str], int]], ctx: RunContext, margin: float = 0.02,
                  locale: str = "en") -> Dict:
    """(category, key) counts → the run_summary.json document.

    ``locale`` (``--report_locale``) is the language of ``localized``, the sentences meant for people
    (conservation, parity verdict and warnings, outcome); every other field is the same in any locale."""
    by: Dict[str, Counter] = {}
    for (category, key), n in counts:
        by.setdefault(category, Counter())[key] += n
    get = lambda cat: dict(sorted(by.get(cat, Counter()).items()))  # noqa: E731
    decisions = get("decision")
    dead = get("dead_letter")
    input_lines = sum(get("input").values())  # lines read + one per unreadable file remainder
    n_decisions, n_dead = sum(decisions.values()), sum(dead.values())
    ok = input_lines == n_decisions + n_dead
    summary = {
        "run_id": ctx.run_id,
        "input_lines": input_lines,
        "blank_lines": sum(get("blank").values()),
        "unreadable_files": [dict(zip(("uri", "line", "error_code"), json.loads(key)))
                             for key in sorted(get("bad_file"))],
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
        "redactions_by_kind": get("redaction_kind"),
        "conservation": {
            "ok": ok, "rule": RULE,
            "detail": f"{input_lines} input lines = {n_decisions} decisions + {n_dead} dead letters"
            + (f" ({len(get('bad_file'))} unreadable file remainders count as one input line and one dead "
               "letter each)" if get("bad_file") else "")
            if ok else f"{input_lines} input lines != {n_decisions} decisions + {n_dead} dead letters "
                       f"(difference {input_lines - n_decisions - n_dead})"},
        "pipeline": ctx.pipeline_dict(),
        "policy": ctx.policy_dict(),
        "detectors": _detectors(get("detector")),
        "duplicate_patterns": get("duplicate_pattern"),
        "behaviour": {
            "evidence": get("behaviour"),
            "product_alerts": sum(get("product_alert").values()),
            "products_alerted": [{"product_id": pid, "alerts": n} for pid, n in sorted(
                get("product_alert").items(), key=lambda kv: (-kv[1], kv[0]))[:10]],
            "note": "product alerts (product_alerts/) count review bursts regardless of rating and never "
                    "withhold a review; group membership holds, velocity holds at most"},
        "parity": parity_audit(get("rating_outcome"), margin),
        "distributions": {
            "duplicate_similarity": get("dup_similarity"),
            "duplicate_cluster_sizes": get("dup_cluster_size"),
            "classifier_probability": get("clf_probability"),
        },
        "top_withheld_products": [
            {"product_id": pid, "withheld": n}
            for pid, n in sorted(get("product_withheld").items(), key=lambda kv: (-kv[1], kv[0]))[:10]],
        "checks": [{"id": cid, "version": ver} for cid, ver in ctx.checks],
        "input": ctx.input,
        "output": ctx.output,
        "written_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    summary["localized"] = localized_summary(summary, locale)
    return summary


class WriteRunSummary(beam.PTransform):
    """Counts from every output → ``<output>/run_summary.json``; fails the job if records were lost.

    Takes a dict of PCollections: ``lines`` (RawLine), ``blank`` (int counts), optionally
    ``bad_files`` (the file-level DeadLetters, also among ``dead_letters``), ``decisions``
    (Decision), ``dead_letters`` (DeadLetter), ``published``, ``products``.
    """

    def __init__(self, ctx: RunContext, parity_margin: float = 0.02, report_locale: str = "en"):
        super().__init__()
        self._ctx = ctx
        self._margin = parity_margin
        self._locale = check_locale(report_locale)

    def expand(self, pcolls):
        keyed = [
            pcolls["lines"] | "CountLines" >> beam.Map(lambda _: (("input", "lines"), 1)),
            pcolls["blank"] | "CountBlank" >> beam.Map(lambda n: (("blank", "lines"), n)),
            pcolls["decisions"] | "CountDecisions" >> beam.FlatMap(_decision_keys),
            pcolls["dead_letters"] | "CountDeadLetters" >> beam.Map(lambda d: (("dead_letter", d.error_code), 1)),
            pcolls["published"] | "CountPublished" >> beam.Map(lambda _: (("published", "all"), 1)),
            pcolls["products"] | "CountProducts" >> beam.Map(lambda _: (("product", "all"), 1)),
        ]
        if pcolls.get("product_alerts") is not None:
            keyed.append(pcolls["product_alerts"] | "CountProductAlerts" >> beam.Map(
                lambda a: (("product_alert", a["product_id"]), 1)))
        if "bad_files" in pcolls:  # an unreadable file's remainder: one input record, one dead letter
            keyed.append(pcolls["bad_files"] | "CountBadFiles" >> beam.FlatMap(lambda d: [
                (("input", "unreadable_file_remainders"), 1),
                (("bad_file", json.dumps([d.source.uri, d.source.line, d.error_code])), 1)]))
        ctx = self._ctx
        # summed per source first: the sums are combined where the counts are made (a lifted
        # combine), so what waits for the flatten is a few thousand sums, not one pair per count
        keyed = [pc | f"Sum{i}" >> beam.CombinePerKey(sum) for i, pc in enumerate(keyed)]
        return (keyed
                | "FlattenCounts" >> beam.Flatten()
                | "SumPerKey" >> beam.CombinePerKey(sum)
                | "AllCounts" >> beam.combiners.ToList()
                | "WriteSummary" >> beam.Map(write_and_check, ctx, self._margin, self._locale))


def wilson(k: int, n: int, z: float = 1.96) -> Tuple[float, float]:
    """95% Wilson score interval of a proportion k/n (sound at small n and at 0 or n)."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, round(centre - half, 5)), min(1.0, round(centre + half, 5)))


def parity_audit(counts: Dict[str, int], margin: float) -> Dict:
    """Withheld rate (held + rejected) per star rating 1-5 with 95% intervals, and a warning when a
    low-rating bucket (1 or 2 stars) is withheld more often than the 4-5 star reviews by > margin.

    ``counts`` keys are "<star>:withheld" / "<star>:shown". Rating is never a policy input; this
    audit checks the outcome anyway, on every run."""
    buckets = {}
    for star in range(1, 6):
        w, shown = counts.get(f"{star}:withheld", 0), counts.get(f"{star}:shown", 0)
        n = w + shown
        buckets[str(star)] = {"n": n, "withheld": w, "rate": round(w / n, 5) if n else None,
                              "ci95": list(wilson(w, n))}
    high_w = sum(buckets[s]["withheld"] for s in ("4", "5"))
    high_n = sum(buckets[s]["n"] for s in ("4", "5"))
    high_rate = high_w / high_n if high_n else None
    warnings = []
    for star in ("1", "2"):
        b = buckets[star]
        if b["n"] and high_rate is not None and b["rate"] - high_rate > margin:
            warnings.append(f"{star}-star reviews were withheld at {b['rate']:.2%} (95% CI {b['ci95'][0]:.2%}-"
                            f"{b['ci95'][1]:.2%}) against {high_rate:.2%} for 4-5 star reviews: more than the "
                            f"{margin:.2%} margin. Check the reasons of withheld low-rated reviews.")
    return {"by_rating": buckets, "high_rating_rate": round(high_rate, 5) if high_rate is not None else None,
            "high_rating_ci95": list(wilson(high_w, high_n)), "margin": margin, "ok": not warnings,
            "warnings": warnings,
            "note": "withheld = hold_for_review + reject; a half star counts in the bucket below"}


def _detectors(counts: Dict[str, int]) -> Dict[str, Dict[str, int]]:
    """{"near_duplicate:scored": 5, ...} → {"near_duplicate": {"scored": 5}, ...}."""
    out: Dict[str, Dict[str, int]] = {}
    for key, n in counts.items():
        name, status = key.split(":", 1)
        out.setdefault(name, {})[status] = n
    return out


def _decision_keys(decision):
    yield ("decision", decision.decision), 1
    star = star_bucket(decision.rating)
    withheld = decision.decision in ("hold_for_review", "reject")
    yield ("rating_outcome", f"{star}:{'withheld' if withheld else 'shown'}"), 1
    if withheld:
        yield ("product_withheld", decision.product_id), 1
    dup = decision.signals.get("near_duplicate", {})
    values = dup.get("values", {}) if dup.get("status") == "scored" else {}
    if values.get("cluster_id"):
        yield ("dup_similarity", f"{min(0.98, math.floor(values['similarity_to_canonical'] * 50) / 50):.2f}"), 1
        if values["cluster_id"] == cluster_id(decision.review_id):   # once per cluster: its first posting
            size = values["cluster_size"]
            yield ("dup_cluster_size", str(size) if size < 5 else "5-9" if size < 10 else "10-49" if size < 50 else "50+"), 1
    clf = decision.signals.get("fake_classifier", {})
    if clf.get("status") == "scored" and "probability" in clf.get("values", {}):
        yield ("clf_probability", f"{min(0.9, math.floor(clf['values']['probability'] * 10) / 10):.1f}"), 1
    for name in ("coordinated_group", "author_velocity", "product_burst"):
        sig = decision.signals.get(name, {})
        values = sig.get("values", {}) if sig.get("status") == "scored" else {}
        if values.get("evidence") or values.get("burst"):
            yield ("behaviour", f"{name}_reviews"), 1
        if (values.get("shared_client") or {}).get("evidence"):
            yield ("behaviour", "shared_client_reviews"), 1
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
    for kind, n in decision.redactions.items():
        yield ("redaction_kind", kind), n


def write_and_check(counts, ctx: RunContext, margin: float = 0.02, locale: str = "en"):
    summary = build_summary(counts, ctx, margin, locale)
    path = FileSystems.join(ctx.output.rstrip("/"), SUMMARY_FILE)
    write_json(path, summary)
    LOG.info("Run summary written to %s: %s", path, summary["conservation"]["detail"])
    for warning in summary["parity"]["warnings"]:
        LOG.warning("Parity audit: %s", warning)
    try:
        from pipeline.report import write_report
        report = write_report(summary, FileSystems.join(ctx.output.rstrip("/"), REPORT_FILE), locale)
        LOG.info("Transparency report written to %s", report)
    except Exception as exn:  # noqa: BLE001 - a chart problem must not fail a finished run
        LOG.error("Could not write the transparency report: %s", exn)
    if not summary["conservation"]["ok"]:
        raise ConservationError(f"conservation rule broken ({RULE}): {summary['conservation']['detail']}; "
                                f"see {path}")
    return summary
