"""Text cleaning: Unicode NFKC, control characters out, HTML to plain text, whitespace collapsed.

Review text ends up on storefront pages, so the result must be *plain text*: no markup survives,
and it is safe to render as text. HTML is removed with ``nh3`` (bindings to the Rust sanitiser
Ammonia, a maintained, browser-grade HTML5 parser) configured to allow no tags at all and to drop
the *contents* of script/style-like elements; entities are then decoded so the stored text is what
a person reads ("Tom & Jerry", "5 < 6"). Decoding can reveal markup that was entity-encoded
("&lt;script&gt;"), so cleaning repeats until the text no longer changes.
"""
from __future__ import annotations

import html
import re
import unicodedata

import nh3

# Elements whose content is never readable review text.
_DROP_CONTENT = {"script", "style", "template", "noscript", "iframe", "object", "embed", "svg", "math",
                 "title", "textarea", "select"}
# Block-level tags separate words: "a<br>b" must become "a b", not "ab".
_BLOCK_TAG = re.compile(r"<(?=/?\s*(?:br|p|div|li|ul|ol|tr|td|th|h[1-6]|blockquote|hr|section|article|pre)\b)",
                        re.IGNORECASE)
# Bidirectional overrides/isolates can make text display differently from what it is
# ("Trojan Source"); they are format characters (Cf) but never needed in a review.
_BIDI_CONTROLS = {"\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"}
_WHITESPACE = re.compile(r"\s+")
_MAX_ROUNDS = 4


def strip_controls(text: str) -> str:
    """Removes control characters (category Cc, except whitespace) and bidi overrides."""
    return "".join(
        ch for ch in text
        if ch not in _BIDI_CONTROLS and (unicodedata.category(ch) != "Cc" or ch in "\t\n\r"))


def html_to_text(text: str) -> str:
    """Strips every tag (and the content of script/style-like elements) and decodes entities."""
    for _ in range(_MAX_ROUNDS):
        if "<" not in text and "&" not in text:
            return text
        stripped = nh3.clean(_BLOCK_TAG.sub(" <", text), tags=set(), attributes={},
                             clean_content_tags=_DROP_CONTENT, strip_comments=True)
        decoded = html.unescape(stripped)
        if decoded == text:
            return decoded
        text = decoded
    # Still changing after several rounds: deliberately nested encodings. Keep the escaped form,
    # which is inert, rather than decoding once more.
    return nh3.clean(text, tags=set(), attributes={}, clean_content_tags=_DROP_CONTENT)


def collapse_whitespace(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def clean_text(text: str) -> str:
    """The full normalisation: NFKC → controls out → HTML to text → NFKC again → whitespace collapsed.

    NFKC runs first so that full-width look-alikes ("＜script＞") become real markup and are
    removed, and again after entity decoding, which can produce characters NFKC would change.

    >>> clean_text("<p>Great&nbsp;<b>kettle</b></p><script>alert(1)</script>\\u0007")
    'Great kettle'
    """
    text = unicodedata.normalize("NFKC", text)
    text = strip_controls(text)
    text = html_to_text(text)
    text = strip_controls(unicodedata.normalize("NFKC", text))
    return collapse_whitespace(text)
