"""Text cleaning: what reaches a shopper is plain text, and no words a reader would see are lost.

Review text ends up on storefront pages, so the result must be *plain text*: no markup survives
however it is encoded, no invisible characters, and it stays inert even if a page inserts it
unescaped or normalises it again. One round of cleaning is

    NFKC → control, format (zero-width, bidi, Unicode tag) and filler characters out
         → every ``<`` that does not open a real HTML tag escaped → real tags stripped by ``nh3``
         → entities decoded

and rounds repeat until the text no longer changes (a fixed point), so look-alike brackets
(full-width ``＜``, small-form ``﹤``) that are entity-encoded once or twice, and become ``<`` only
after decoding and NFKC, are normalised *before* the next sanitising pass, never after the last.

* ``nh3`` (bindings to the Rust sanitiser Ammonia, a maintained, browser-grade HTML5 parser) is
  configured to allow no tags at all and to drop the *contents* of script/style-like elements
  that are closed (an unclosed ``<svg>`` or ``<script>`` loses its tag, not the words after it).
* A ``<`` is a real tag only where an HTML parser would open a known element (``<b``, ``</p``,
  ``<img``, ``<svg``, ...), a comment or a declaration. Any other ``<`` is text: "Quality<expected",
  "<terrible> and <rude>", "</3" and a complaint written inside ``<…>`` keep their words, as the
  praise "Quality>expected" always did.
* Last, a ``<`` still followed by a letter, ``/``, ``!`` or ``?`` (which an HTML parser would read
  as the start of a tag or comment) becomes ``‹`` (U+2039, unchanged by NFKC), so the published
  text holds no element, comment or ``</script`` for any parser; "5 < 6" and "<3" stay as written.
* Nested encodings that still change after ``_MAX_ROUNDS`` rounds are adversarial: their ``&``
  are dropped, so no later decoding can produce markup.
"""
from __future__ import annotations

import html
import re
import unicodedata
from typing import Optional
from urllib.parse import urlsplit

import nh3

# Elements whose content is never readable review text.
_DROP_CONTENT = {"script", "style", "template", "noscript", "iframe", "object", "embed", "svg", "math",
                 "title", "textarea", "select", "noembed", "noframes", "xmp", "plaintext"}
# Every element name an HTML parser knows (HTML5, SVG/MathML roots, legacy and obsolete ones that
# browsers still parse). Only these open a tag; any other ``<`` is text.
_ELEMENTS = (
    "a abbr acronym address applet area article aside audio b base basefont bdi bdo bgsound big blink "
    "blockquote body br button canvas caption center cite code col colgroup data datalist dd del details "
    "dfn dialog dir div dl dt em embed fieldset figcaption figure font footer form frame frameset h1 h2 "
    "h3 h4 h5 h6 head header hgroup hr html i iframe image img input ins isindex kbd keygen label legend "
    "li link listing main map mark marquee math menu menuitem meta meter nav nobr noembed noframes "
    "noscript object ol optgroup option output p param picture plaintext pre progress q rb rp rt rtc "
    "ruby s samp script search section select slot small source spacer span strike strong style sub "
    "summary sup svg table tbody td template textarea tfoot th thead time title tr track tt u ul var "
    "video wbr xmp").split()
_REAL_TAG = "(?:/?(?:" + "|".join(sorted(_ELEMENTS, key=len, reverse=True)) + r")(?=[\s/>]|$)|!--|!doctype|!\[cdata\[|\?)"
_NOT_A_TAG = re.compile(r"<(?!" + _REAL_TAG + ")", re.IGNORECASE)
# Block-level tags separate words: "a<br>b" must become "a b", not "ab".
_BLOCK_TAG = re.compile(r"<(?=/?\s*(?:br|p|div|li|ul|ol|tr|td|th|h[1-6]|blockquote|hr|section|article|pre)\b)",
                        re.IGNORECASE)
# After cleaning, a "<" that a parser would still read as opening a tag, comment or declaration.
_TAG_OPENER = re.compile(r"<(?=[A-Za-z/!?])")
NEUTRAL_BRACKET = "\u2039"
# Letters that render as nothing (Hangul fillers), used to hide text; format characters (Cf: zero-width,
# bidi controls and isolates, Unicode tags, soft hyphen, BOM) are removed by category.
_INVISIBLE_LETTERS = {"\u115f", "\u1160", "\u3164", "\uffa0"}
_WHITESPACE = re.compile(r"\s+")
_MAX_ROUNDS = 8


def strip_invisible(text: str) -> str:
    """Removes control (Cc, except whitespace) and format (Cf) characters and invisible fillers."""
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if (cat == "Cc" and ch not in "\t\n\r") or cat == "Cf" or ch in _INVISIBLE_LETTERS:
            continue
        out.append(ch)
    return "".join(out)


def _one_round(text: str) -> str:
    text = strip_invisible(unicodedata.normalize("NFKC", text))
    if "<" not in text and "&" not in text:
        return text
    escaped = _NOT_A_TAG.sub("&lt;", _BLOCK_TAG.sub(" <", text))
    # An element's content is dropped only when the element is closed: an unclosed <svg> or <script>
    # must not swallow the rest of a review (its tag goes; the words after it stay).
    lowered = escaped.lower()
    drop = {t for t in _DROP_CONTENT if f"</{t}" in lowered}
    stripped = nh3.clean(escaped, tags=set(), attributes={}, clean_content_tags=drop, strip_comments=True)
    return html.unescape(stripped)


def html_to_text(text: str) -> str:
    """Normalises and strips markup to a fixed point (see the module docstring)."""
    for _ in range(_MAX_ROUNDS):
        cleaned = _one_round(text)
        if cleaned == text:
            return cleaned
        text = cleaned
    # Still changing: deliberately nested encodings. Drop their "&" so nothing decodes to markup later.
    return _one_round(text.replace("&", " "))


def collapse_whitespace(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def neutralise_brackets(text: str) -> str:
    """A ``<`` that a parser would read as opening a tag, comment or declaration becomes ``‹``."""
    return _TAG_OPENER.sub(NEUTRAL_BRACKET, text)


def clean_text(text: str) -> str:
    """Plain text for publishing: markup out to a fixed point, invisible characters out, whitespace
    collapsed, tag openers neutralised. Idempotent: ``clean_text(clean_text(t)) == clean_text(t)``.

    >>> clean_text("<p>Great&nbsp;<b>kettle</b></p><script>alert(1)</script>\\u0007")
    'Great kettle'
    >>> clean_text("Quality<expected. Broke after 2 days")
    'Quality‹expected. Broke after 2 days'
    """
    return neutralise_brackets(collapse_whitespace(html_to_text(text)))


def plain_label(text: Optional[str], max_chars: int = 200) -> Optional[str]:
    """A short display string (a partner's name on a badge): cleaned like review text, cut to
    ``max_chars``; None when nothing readable is left."""
    if text is None:
        return None
    cleaned = clean_text(text)[:max_chars].strip()
    return cleaned or None


_URL_FORBIDDEN = re.compile(r"[\s<>\"'`\\{}|^]")


def safe_http_url(url: Optional[str]) -> Optional[str]:
    """``url`` if it is an absolute http(s) URL with a host and no markup or whitespace, else None.

    ``javascript:``, ``data:`` and relative URLs, and anything that could break out of an HTML
    attribute, are never published as links.
    """
    if not url or len(url) > 2048:
        return None
    candidate = strip_invisible(unicodedata.normalize("NFKC", url)).strip()
    if _URL_FORBIDDEN.search(candidate) or candidate != url.strip():
        return None
    try:
        parts = urlsplit(candidate)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return candidate
