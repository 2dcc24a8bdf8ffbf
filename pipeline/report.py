"""The transparency report: one self-contained ``report.html`` per batch run.

Written next to ``run_summary.json`` from the same figures, for trust-and-safety staff and for
regulators who ask how reviews were filtered: decisions by reason, withheld rate by star rating
with 95% intervals (so anyone can see at a glance whether negative reviews were treated like
positive ones), personal data redacted by kind, detector score distributions, duplicate cluster
sizes, languages, and the products with the most withheld reviews. Charts are inline SVG drawn with matplotlib; the page
loads nothing from anywhere.
"""
from __future__ import annotations

import html
import io
import re
from typing import Dict, List, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from apache_beam.io.filesystems import FileSystems  # noqa: E402

from schemas.codes import REASON_DESCRIPTIONS  # noqa: E402

plt.rcParams.update({"svg.fonttype": "none", "font.size": 10, "axes.spines.top": False,
                     "axes.spines.right": False})
SHOWN, WITHHELD = "#3b7dd8", "#d8703b"
REDACTION_KINDS = {
    "email": "email addresses, also written as \"name at domain dot com\"",
    "phone": "phone numbers in any country's format",
    "payment_card": "payment card numbers (Luhn and issuer checked)",
    "national_id": "national identifiers: Korean RRN, Japanese My Number, US SSN",
    "passport": "passport numbers",
    "iban": "bank account numbers (IBAN)",
    "street_address": "street addresses, PO boxes, postal codes",
    "url_token": "links carrying credentials or session/tracking tokens (host kept)",
    "person_name": "people's names given as \"my name is …\" or as a contact",
}


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    text = re.sub(r"<metadata>.*?</metadata>", "", text[text.index("<svg"):], flags=re.S)  # dates, RDF
    return text


def _bars(labels: Sequence[str], values: Sequence[float], title: str, color=SHOWN, xlabel="") -> str:
    fig, ax = plt.subplots(figsize=(6.4, max(1.6, 0.32 * len(labels) + 0.8)))
    if labels:
        ax.barh(list(labels)[::-1], list(values)[::-1], color=color)
        for y, v in enumerate(list(values)[::-1]):
            ax.text(v, y, f" {v:g}", va="center", fontsize=9)
    else:
        ax.text(0.5, 0.5, "none in this run", ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
    ax.set_title(title, loc="left", fontsize=11)
    ax.set_xlabel(xlabel)
    return _svg(fig)


def _parity_chart(parity: Mapping) -> str:
    stars = ["1", "2", "3", "4", "5"]
    rates, lows, highs = [], [], []
    for s in stars:
        b = parity["by_rating"][s]
        rate = b["rate"] or 0.0
        rates.append(rate * 100)
        lows.append((rate - b["ci95"][0]) * 100 if b["n"] else 0)
        highs.append((b["ci95"][1] - rate) * 100 if b["n"] else 0)
    fig, ax = plt.subplots(figsize=(6.4, 2.8))
    colors = [WITHHELD if s in ("1", "2") else SHOWN for s in stars]
    ax.bar([f"{s}★\nn={parity['by_rating'][s]['n']}" for s in stars], rates, yerr=[lows, highs], capsize=4,
           color=colors)
    ax.set_ylabel("withheld (%)")
    ax.set_title("Withheld rate by star rating, with 95% intervals", loc="left", fontsize=11)
    return _svg(fig)


def _dist(counts: Mapping[str, int], title: str, xlabel: str, ylabel: str = "reviews") -> str:
    keys = sorted(counts, key=lambda k: (len(k), k)) if not all(_is_num(k) for k in counts) else \
        sorted(counts, key=float)
    fig, ax = plt.subplots(figsize=(6.4, 2.4))
    if keys:
        ax.bar(keys, [counts[k] for k in keys], color=SHOWN)
        ax.tick_params(axis="x", labelrotation=45)
    else:
        ax.text(0.5, 0.5, "no scores in this run", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(title, loc="left", fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return _svg(fig)


def _is_num(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _table(rows: List[Sequence], header: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _redactions(summary: Mapping) -> str:
    kinds = summary.get("redactions_by_kind", {})
    reviews = summary.get("redacted_reviews", 0)
    if not kinds:
        return "<p>No personal data was found in published fields.</p>"
    rows = [(k, n, REDACTION_KINDS.get(k, "")) for k, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))]
    return (f"<p>{reviews} reviews had personal data replaced by a visible marker "
            "(\"[phone removed]\"); redaction never withholds a review.</p>"
            + _bars([r[0] for r in rows], [r[1] for r in rows], "Redacted items by kind")
            + _table(rows, ["kind", "items", "what"]))


def render(summary: Mapping) -> str:
    """The report as one HTML string (inline CSS and SVG, no scripts, no external resources)."""
    parity = summary["parity"]
    reasons = summary.get("reasons", {})
    decisions = summary.get("decisions_by_type", {})
    withheld = decisions.get("hold_for_review", 0) + decisions.get("reject", 0)
    verdict = ("No sign that negative reviews were withheld more often than positive ones."
               if parity["ok"] else "Warning: " + " ".join(parity["warnings"]))
    parity_rows = [(f"{s}★", b["n"], b["withheld"], "–" if b["rate"] is None else f"{b['rate']:.2%}",
                    f"{b['ci95'][0]:.2%} – {b['ci95'][1]:.2%}") for s, b in parity["by_rating"].items()]
    reason_rows = [(code, n, REASON_DESCRIPTIONS.get(code, "")) for code, n in sorted(reasons.items(), key=lambda kv: -kv[1])]
    dist = summary.get("distributions", {})
    top = summary.get("top_withheld_products", [])
    pipeline, policy = summary.get("pipeline", {}), summary.get("policy", {})
    sections = [
        f"<h1>Review moderation report</h1><p class=meta>Run <b>{html.escape(summary['run_id'])}</b> · "
        f"pipeline {html.escape(str(pipeline.get('version')))} (commit {html.escape(str(pipeline.get('commit')))}) · "
        f"policy {html.escape(str(policy.get('id')))} {html.escape(str(policy.get('version')))} · "
        f"input {html.escape(summary.get('input', ''))} · written {html.escape(summary.get('written_at', ''))}</p>",
        f"<div class='verdict {'ok' if parity['ok'] else 'warn'}'>{html.escape(verdict)}</div>",
        "<p>Every input line is accounted for: " + html.escape(summary["conservation"]["detail"]) + ". "
        f"{summary['published']} reviews published, {withheld} withheld (held for a person or rejected) "
        "on sentiment-neutral grounds only: rating and sentiment are never inputs to the decision.</p>",
        "<h2>Negative reviews treated like positive ones?</h2>", _parity_chart(parity),
        _table(parity_rows, ["rating", "reviews", "withheld", "rate", "95% interval"]),
        "<h2>Decisions</h2>", _bars(list(decisions), list(decisions.values()), "Decisions"),
        "<h2>Why reviews were withheld or labelled</h2>",
        _bars([r[0] for r in reason_rows], [r[1] for r in reason_rows], "Reason codes", WITHHELD),
        _table(reason_rows, ["reason", "reviews", "meaning"]),
        "<h2>Personal data redacted</h2>",
        _redactions(summary),
        "<h2>Detectors</h2>",
        _table([(name, ", ".join(f"{k} {v}" for k, v in sorted(st.items())))
                for name, st in summary.get("detectors", {}).items()], ["detector", "signal status"]),
        _dist(dist.get("duplicate_similarity", {}), "Near-duplicates: similarity to the cluster's first review",
              "Jaccard similarity (bucket start)"),
        _dist(dist.get("duplicate_cluster_sizes", {}), "Near-duplicate clusters by size", "reviews in cluster",
              "clusters"),
        _bars(list(summary.get("duplicate_patterns", {})), list(summary.get("duplicate_patterns", {}).values()),
              "Near-duplicate patterns"),
        _dist(dist.get("classifier_probability", {}), "Fake-review classifier: probability", "probability (bucket start)"),
        "<h2>Languages</h2>",
        _bars(list(summary.get("languages", {})), list(summary.get("languages", {}).values()), "Reviews by language"),
        "<h2>Products with the most withheld reviews</h2>",
        _table([(p["product_id"], p["withheld"]) for p in top], ["product", "withheld"]) if top
        else "<p>No review was withheld.</p>",
        "<h2>Input that could not be read</h2>",
        _table(sorted(summary.get("dead_letters_by_code", {}).items()), ["error code", "lines"]),
    ]
    style = ("body{font-family:system-ui,sans-serif;max-width:860px;margin:2em auto;padding:0 1em;color:#222}"
             "h1{margin-bottom:.2em}.meta{color:#666;font-size:.9em}table{border-collapse:collapse;margin:.5em 0 1.5em}"
             "td,th{border-bottom:1px solid #ddd;padding:.25em .8em;text-align:left;font-size:.9em}"
             ".verdict{padding:.8em 1em;border-radius:6px;margin:1em 0}.ok{background:#e6f4ea}.warn{background:#fdecea}"
             "svg{max-width:100%;height:auto}")
    return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>Review moderation report "
            f"{html.escape(summary['run_id'])}</title><style>{style}</style></head><body>"
            + "\n".join(sections) + "</body></html>")


def write_report(summary: Mapping, path: str) -> str:
    with FileSystems.create(path, mime_type="text/html") as handle:
        handle.write(render(summary).encode("utf-8"))
    return path
