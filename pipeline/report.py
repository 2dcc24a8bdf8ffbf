"""The transparency report: one self-contained ``report.html`` per batch run.

Written next to ``run_summary.json`` from the same figures, for trust-and-safety staff and for
regulators who ask how reviews were filtered: decisions by reason, withheld rate by star rating
with 95% intervals (so anyone can see at a glance whether negative reviews were treated like
positive ones), personal data redacted by kind, detector score distributions, duplicate cluster
sizes, languages, and the products with the most withheld reviews. Charts are inline SVG drawn with matplotlib; the page
loads nothing from anywhere.

Language: ``--report_locale`` (en, ja, ko, zh-Hans, zh-Hant) picks the catalogue in
``pipeline/i18n/`` for every heading, sentence, table header and chart title, axis and category
label; codes (reason, error, language) stay as they are next to their translated names. Chart
labels in Japanese, Korean or Chinese need a CJK font for matplotlib's layout (Noto Sans CJK,
Debian ``fonts-noto-cjk``); without one the report is still written, with a note saying so and a
warning in the log.
"""
from __future__ import annotations

import glob
import html
import io
import logging
import re
import warnings
from contextlib import contextmanager
from typing import List, Mapping, Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from apache_beam.io.filesystems import FileSystems  # noqa: E402

from matplotlib import font_manager  # noqa: E402

from pipeline.i18n import CJK_FONTS, Messages, localized_summary, messages  # noqa: E402

LOG = logging.getLogger(__name__)
plt.rcParams.update({"svg.fonttype": "none", "font.size": 10, "axes.spines.top": False,
                     "axes.spines.right": False})
SHOWN, WITHHELD = "#3b7dd8", "#d8703b"
NOTO_CJK_GLOBS = ("/usr/share/fonts/**/NotoSansCJK*.tt[cf]", "/usr/share/fonts/**/NotoSansCJK*.otf")


def cjk_font(locale: str) -> Optional[str]:
    """The Noto Sans CJK family matplotlib can use for ``locale`` (None for English or when none is
    installed). Fonts installed after matplotlib built its cache are added from /usr/share/fonts."""
    wanted = CJK_FONTS.get(locale)
    if not wanted:
        return None

    def known():
        return {f.name for f in font_manager.fontManager.ttflist}
    names = known()
    if wanted not in names and not any(n.startswith("Noto Sans CJK") for n in names):
        for pattern in NOTO_CJK_GLOBS:
            for path in glob.glob(pattern, recursive=True):
                try:
                    font_manager.fontManager.addfont(path)
                except Exception:  # noqa: BLE001 - an unreadable font file is just not used
                    pass
        names = known()
    if wanted in names:
        return wanted
    return next((n for n in sorted(names) if n.startswith("Noto Sans CJK")), None)


@contextmanager
def _chart_fonts(locale: str):
    """Matplotlib settings for ``locale``; yields whether the labels have a font that covers them."""
    family = cjk_font(locale)
    rc = {"font.family": ["DejaVu Sans", family]} if family else {}
    with plt.rc_context(rc), warnings.catch_warnings():
        if locale in CJK_FONTS and not family:
            warnings.filterwarnings("ignore", message=r"Glyph .* missing from", category=UserWarning)
        yield bool(family) or locale not in CJK_FONTS


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    text = re.sub(r"<metadata>.*?</metadata>", "", text[text.index("<svg"):], flags=re.S)  # dates, RDF
    return text


def _bars(labels: Sequence[str], values: Sequence[float], title: str, m: Messages, color=SHOWN, xlabel="") -> str:
    fig, ax = plt.subplots(figsize=(6.4, max(1.6, 0.32 * len(labels) + 0.8)))
    if labels:
        ax.barh(list(labels)[::-1], list(values)[::-1], color=color)
        for y, v in enumerate(list(values)[::-1]):
            ax.text(v, y, f" {v:g}", va="center", fontsize=9)
    else:
        ax.text(0.5, 0.5, m.t("chart_none"), ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
    ax.set_title(title, loc="left", fontsize=11)
    ax.set_xlabel(xlabel)
    return _svg(fig)


def _parity_chart(parity: Mapping, m: Messages) -> str:
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
    ax.set_ylabel(m.t("axis_withheld_pct"))
    ax.set_title(m.t("chart_parity"), loc="left", fontsize=11)
    return _svg(fig)


def _dist(counts: Mapping[str, int], title: str, xlabel: str, ylabel: str, m: Messages) -> str:
    keys = sorted(counts, key=lambda k: (len(k), k)) if not all(_is_num(k) for k in counts) else \
        sorted(counts, key=float)
    fig, ax = plt.subplots(figsize=(6.4, 2.4))
    if keys:
        ax.bar(keys, [counts[k] for k in keys], color=SHOWN)
        ax.tick_params(axis="x", labelrotation=45)
    else:
        ax.text(0.5, 0.5, m.t("chart_no_scores"), ha="center", va="center", transform=ax.transAxes)
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


def _redactions(summary: Mapping, m: Messages) -> str:
    kinds = summary.get("redactions_by_kind", {})
    if not kinds:
        return f"<p>{html.escape(m.t('redactions_none'))}</p>"
    rows = [(k, n, m.get(f"redaction_{k}", "")) for k, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))]
    return (f"<p>{html.escape(m.t('redactions_intro', reviews=summary.get('redacted_reviews', 0)))}</p>"
            + _bars([r[0] for r in rows], [r[1] for r in rows], m.t("chart_redactions"), m)
            + _table(rows, [m.t("col_kind"), m.t("col_items"), m.t("col_what")]))


def _label(m: Messages, prefix: str, code: str) -> str:
    return m.get(f"{prefix}{code}", code)


def render(summary: Mapping, locale: Optional[str] = None) -> str:
    """The report as one HTML string (inline CSS and SVG, no scripts, no external resources).

    ``locale``: one of ``pipeline.i18n.LOCALES``; default the summary's ``localized.locale``, else English."""
    locale = locale or (summary.get("localized") or {}).get("locale") or "en"
    m = messages(locale)
    with _chart_fonts(m.locale) as fonts_ok:
        return _render(summary, m, fonts_ok)


def _render(summary: Mapping, m: Messages, fonts_ok: bool) -> str:
    esc = html.escape
    human = localized_summary(summary, m.locale)
    parity = summary["parity"]
    reasons = summary.get("reasons", {})
    decisions = summary.get("decisions_by_type", {})
    parity_rows = [(f"{s}★", b["n"], b["withheld"], "–" if b["rate"] is None else f"{b['rate']:.2%}",
                    f"{b['ci95'][0]:.2%} – {b['ci95'][1]:.2%}") for s, b in parity["by_rating"].items()]
    reason_rows = [(code, _label(m, "reason_label_", code), n, m.get(f"reason_{code}", ""))
                   for code, n in sorted(reasons.items(), key=lambda kv: -kv[1])]
    dist = summary.get("distributions", {})
    top = summary.get("top_withheld_products", [])
    patterns = summary.get("duplicate_patterns", {})
    alerted = (summary.get("behaviour") or {}).get("products_alerted", [])
    languages = summary.get("languages", {})
    pipeline, policy = summary.get("pipeline", {}), summary.get("policy", {})
    detector_rows = [(f"{_label(m, 'detector_', name)} ({name})",
                      m.join(f"{_label(m, 'status_', k)} {v:,}" for k, v in sorted(st.items())))
                     for name, st in summary.get("detectors", {}).items()]
    meta = m.t("meta", run_id=summary["run_id"], version=str(pipeline.get("version")),
               commit=str(pipeline.get("commit")), policy_id=str(policy.get("id")),
               policy_version=str(policy.get("version")), input=summary.get("input", ""),
               written_at=summary.get("written_at", ""))
    sections = [
        f"<h1>{esc(m.t('title'))}</h1><p class=meta>{esc(meta)}</p>",
        "" if fonts_ok else f"<p class=note>{esc(m.t('font_missing'))}</p>",
        f"<div class='verdict {'ok' if parity['ok'] else 'warn'}'>{esc(human['parity_verdict'])}</div>",
        f"<p>{esc(human['conservation'])} {esc(human['outcome'])}</p>",
        f"<h2>{esc(m.t('h_parity'))}</h2>", _parity_chart(parity, m),
        _table(parity_rows, [m.t(k) for k in ("col_rating", "col_reviews", "col_withheld", "col_rate", "col_interval")]),
        f"<h2>{esc(m.t('h_decisions'))}</h2>",
        _bars([_label(m, "decision_", d) for d in decisions], list(decisions.values()), m.t("chart_decisions"), m),
        f"<h2>{esc(m.t('h_reasons'))}</h2>",
        _bars([r[1] for r in reason_rows], [r[2] for r in reason_rows], m.t("chart_reasons"), m, WITHHELD),
        _table(reason_rows, [m.t(k) for k in ("col_reason", "col_label", "col_reviews", "col_meaning")]),
        f"<h2>{esc(m.t('h_redactions'))}</h2>", _redactions(summary, m),
        f"<h2>{esc(m.t('h_detectors'))}</h2>",
        _table(detector_rows, [m.t("col_detector"), m.t("col_signal_status")]),
        _dist(dist.get("duplicate_similarity", {}), m.t("chart_dup_similarity"), m.t("axis_dup_similarity"),
              m.t("axis_reviews"), m),
        _dist(dist.get("duplicate_cluster_sizes", {}), m.t("chart_cluster_sizes"), m.t("axis_cluster_size"),
              m.t("axis_clusters"), m),
        _bars([_label(m, "pattern_", p) for p in patterns], list(patterns.values()), m.t("chart_dup_patterns"), m),
        _dist(dist.get("classifier_probability", {}), m.t("chart_classifier"), m.t("axis_probability"),
              m.t("axis_reviews"), m),
        f"<h2>{esc(m.t('h_languages'))}</h2>",
        _bars(list(languages), list(languages.values()), m.t("chart_languages"), m),
        f"<h2>{esc(m.t('h_top_products'))}</h2>",
        _table([(p["product_id"], p["withheld"]) for p in top], [m.t("col_product"), m.t("col_withheld")]) if top
        else f"<p>{esc(m.t('no_withheld'))}</p>",
        f"<h2>{esc(m.t('h_product_alerts'))}</h2><p>{esc(m.t('product_alerts_note'))}</p>",
        _table([(p["product_id"], p["alerts"]) for p in alerted], [m.t("col_product"), m.t("col_alerts")]) if alerted
        else f"<p>{esc(m.t('no_product_alerts'))}</p>",
        f"<h2>{esc(m.t('h_dead_letters'))}</h2>",
        _table(sorted(summary.get("dead_letters_by_code", {}).items()), [m.t("col_error_code"), m.t("col_lines")]),
    ]
    style = ("body{font-family:system-ui,sans-serif;max-width:860px;margin:2em auto;padding:0 1em;color:#222}"
             "h1{margin-bottom:.2em}.meta{color:#666;font-size:.9em}table{border-collapse:collapse;margin:.5em 0 1.5em}"
             "td,th{border-bottom:1px solid #ddd;padding:.25em .8em;text-align:left;font-size:.9em}"
             "th,td:not(:last-child){white-space:nowrap}"
             ".verdict{padding:.8em 1em;border-radius:6px;margin:1em 0}.ok{background:#e6f4ea}.warn{background:#fdecea}"
             ".note{background:#fff4e0;padding:.5em 1em;border-radius:6px}svg{max-width:100%;height:auto}")
    return (f"<!DOCTYPE html><html lang={m.locale}><head><meta charset=utf-8><title>{esc(m.t('title'))} "
            f"{esc(summary['run_id'])}</title><style>{style}</style></head><body>"
            + "\n".join(x for x in sections if x) + "</body></html>")


def write_report(summary: Mapping, path: str, locale: Optional[str] = None) -> str:
    page = render(summary, locale)
    if "<p class=note>" in page:
        LOG.warning("report.html (%s): no CJK font for the chart labels (install fonts-noto-cjk); "
                    "written with a Latin font", locale or (summary.get("localized") or {}).get("locale"))
    with FileSystems.create(path, mime_type="text/html") as handle:
        handle.write(page.encode("utf-8"))
    return path
