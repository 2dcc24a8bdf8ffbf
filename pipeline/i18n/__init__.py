"""Message catalogues for the human-readable parts of a run: ``report.html`` and ``run_summary.json``'s
``localized`` block (``--report_locale``: en, ja, ko, zh-Hans, zh-Hant).

One JSON file per locale in this package (``pipeline/i18n/<locale>.json``, shipped as package data
so Dataflow workers have them), every file with exactly the same keys and the same placeholders
(``tests/test_i18n_catalogues.py``). Messages are a small ICU MessageFormat subset, the same one
the storefront widget uses (``widget/static/review-widget.js``): ``{name}``, ``{name, number}`` and
``{name, plural, =0 {...} one {...} other {...}}`` where ``#`` is the number. Plural categories are
CLDR's for these locales: English has ``one`` (exactly 1) and ``other``; Japanese, Korean and
Chinese have only ``other``.

Machine-read fields (codes, counts, the English ``conservation.detail`` and ``parity.warnings``)
never change with the locale; only text meant for people does.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Set, Tuple

LOCALES = ("en", "ja", "ko", "zh-Hans", "zh-Hant")
DEFAULT_LOCALE = "en"
CATALOGUE_DIR = Path(__file__).resolve().parent
# BCP 47 language tag for <html lang>, and the Noto CJK family matplotlib should fall back to.
CJK_FONTS = {"ja": "Noto Sans CJK JP", "ko": "Noto Sans CJK KR", "zh-Hans": "Noto Sans CJK SC",
             "zh-Hant": "Noto Sans CJK TC"}


def check_locale(locale: Optional[str]) -> str:
    locale = locale or DEFAULT_LOCALE
    if locale not in LOCALES:
        raise ValueError(f"unsupported locale {locale!r}; one of {', '.join(LOCALES)}")
    return locale


def load_catalogue(locale: str, directory: Path = CATALOGUE_DIR) -> Dict[str, str]:
    return json.loads((Path(directory) / f"{check_locale(locale)}.json").read_text(encoding="utf-8"))


# ---- the ICU subset ---------------------------------------------------------------------------

def plural_category(n: float, locale: str) -> str:
    """CLDR cardinal plural category for the supported locales."""
    if locale.split("-")[0] == "en":
        return "one" if n == 1 else "other"
    return "other"   # ja, ko, zh: no plural forms


def _closing(src: str, start: int) -> int:
    depth = 0
    for i in range(start, len(src)):
        if src[i] == "{":
            depth += 1
        elif src[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    raise ValueError(f"unbalanced braces in message: {src!r}")


def parse(src: str) -> List[Any]:
    """Message → nodes: str, ("arg", name), ("number", name), ("plural", name, {selector: nodes}), ("#",)."""
    nodes: List[Any] = []
    i, text = 0, ""
    while i < len(src):
        c = src[i]
        if c == "{":
            if text:
                nodes.append(text)
                text = ""
            end = _closing(src, i)
            nodes.append(_parse_argument(src[i + 1:end]))
            i = end + 1
        elif c == "}":
            raise ValueError(f"unbalanced braces in message: {src!r}")
        elif c == "#":
            if text:
                nodes.append(text)
                text = ""
            nodes.append(("#",))
            i += 1
        else:
            text += c
            i += 1
    if text:
        nodes.append(text)
    return nodes


def _parse_argument(inner: str):
    parts = inner.split(",", 2)
    name = parts[0].strip()
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"bad argument name {name!r}")
    if len(parts) == 1:
        return ("arg", name)
    kind = parts[1].strip()
    if kind == "number" and len(parts) == 2:
        return ("number", name)
    if kind != "plural" or len(parts) != 3:
        raise ValueError(f"unsupported argument {{{inner}}}")
    options, rest = {}, parts[2]
    j = 0
    while j < len(rest):
        open_ = rest.find("{", j)
        if open_ < 0:
            if rest[j:].strip():
                raise ValueError(f"text after the plural options: {rest[j:]!r}")
            break
        selector = rest[j:open_].strip()
        if not re.fullmatch(r"=\d+|zero|one|two|few|many|other", selector):
            raise ValueError(f"bad plural selector {selector!r}")
        close = _closing(rest, open_)
        options[selector] = parse(rest[open_ + 1:close])
        j = close + 1
    if "other" not in options:
        raise ValueError(f"plural without 'other': {{{inner}}}")
    return ("plural", name, options)


def placeholders(src: str) -> Set[Tuple[str, str]]:
    """{(name, kind)} of every argument in a message (kind: arg, number or plural), nested ones included."""
    found: Set[Tuple[str, str]] = set()

    def walk(nodes):
        for node in nodes:
            if isinstance(node, tuple) and node[0] in ("arg", "number", "plural"):
                found.add((node[1], node[0]))
                if node[0] == "plural":
                    for sub in node[2].values():
                        walk(sub)
    walk(parse(src))
    return found


def format_number(value: Any) -> str:
    """Integers with comma grouping (the grouping all five locales use), other values as given."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e15):
        return f"{int(value):,}"
    return str(value)


def format_message(src: str, args: Optional[Mapping[str, Any]] = None, locale: str = DEFAULT_LOCALE) -> str:
    args = args or {}

    def render(nodes, hash_=None) -> str:
        out = []
        for node in nodes:
            if isinstance(node, str):
                out.append(node)
            elif node[0] == "#":
                out.append("#" if hash_ is None else hash_)
            elif node[0] == "arg":
                value = args.get(node[1], "")
                out.append(format_number(value) if isinstance(value, (int, float)) else str(value))
            elif node[0] == "number":
                out.append(format_number(args.get(node[1], 0)))
            else:
                n = args.get(node[1], 0)
                options = node[2]
                chosen = options.get(f"={n}") if isinstance(n, int) else None
                if chosen is None:
                    chosen = options.get(plural_category(n, locale), options["other"])
                out.append(render(chosen, format_number(n)))
        return "".join(out)
    return render(parse(src))


class Messages:
    """One locale's catalogue: ``m.t("key", name=value)``."""

    def __init__(self, locale: Optional[str] = None, directory: Path = CATALOGUE_DIR):
        self.locale = check_locale(locale)
        self.catalogue = load_catalogue(self.locale, directory)

    def t(self, key: str, **args: Any) -> str:
        return format_message(self.catalogue[key], args, self.locale)

    def get(self, key: str, default: str, **args: Any) -> str:
        return self.t(key, **args) if key in self.catalogue else default

    def join(self, items: Iterable[str]) -> str:
        return self.catalogue["list_separator"].join(items)


@lru_cache(maxsize=None)
def messages(locale: Optional[str] = None) -> Messages:
    return Messages(locale)


# ---- the human-readable parts of run_summary.json ---------------------------------------------

def _pct(x: float) -> str:
    return f"{x:.2%}"


def parity_warnings(parity: Mapping[str, Any], m: Messages) -> List[str]:
    """The parity audit's warnings in ``m``'s language, from its figures (same rule as
    ``pipeline.transforms.summary.parity_audit``)."""
    high = parity.get("high_rating_rate")
    margin = parity.get("margin", 0.02)
    out = []
    for star in ("1", "2"):
        b = parity["by_rating"][star]
        if b["n"] and high is not None and b["rate"] - high > margin:
            out.append(m.t("parity_warning", star=star, rate=_pct(b["rate"]), low=_pct(b["ci95"][0]),
                           high=_pct(b["ci95"][1]), high_rate=_pct(high), margin=_pct(margin)))
    return out


def localized_summary(summary: Mapping[str, Any], locale: Optional[str] = None) -> Dict[str, Any]:
    """``run_summary.json``'s ``localized`` block: the sentences a person reads, in ``locale``."""
    m = messages(locale)
    decisions = summary.get("decisions_by_type", {})
    withheld = decisions.get("hold_for_review", 0) + decisions.get("reject", 0)
    n_in, n_dec, n_dead = summary["input_lines"], summary["decisions"], summary["dead_letters"]
    conservation = (m.t("conservation_ok", input_lines=n_in, decisions=n_dec, dead_letters=n_dead)
                    if summary["conservation"]["ok"] else
                    m.t("conservation_failed", input_lines=n_in, decisions=n_dec, dead_letters=n_dead,
                        difference=n_in - n_dec - n_dead))
    parity = summary.get("parity") or {"ok": True, "warnings": []}
    warnings = parity_warnings(parity, m) if "by_rating" in parity else []
    if not parity["ok"] and not warnings:   # a rule this module does not know: keep the audit's own words
        warnings = list(parity.get("warnings", []))
    verdict = m.t("verdict_ok") if parity["ok"] else m.t("verdict_warn", warnings=" ".join(warnings))
    return {"locale": m.locale, "conservation": conservation, "parity_verdict": verdict,
            "parity_warnings": warnings,
            "outcome": m.t("outcome", published=summary.get("published", 0), withheld=withheld)}
