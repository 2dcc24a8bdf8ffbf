"""Language-aware shingling for near-duplicate detection.

Space-delimited languages use word n-grams; Japanese, Chinese and Korean use character n-grams
over the text with spaces removed (Korean spacing is inconsistent and Japanese/Chinese have none,
so word shingles are useless there). The n for each was chosen by measurement
(docs/dedup.md, ``scripts/measure_shingles.py``): the n that keeps lightly edited copies above the
0.8 Jaccard threshold while keeping unrelated reviews far below it.

Text is compared after case folding and with punctuation and symbols removed, so re-cased and
re-punctuated copies are still copies.
"""
from __future__ import annotations

import functools
import sys
import unicodedata
from typing import Dict, FrozenSet, Optional

WORD_NGRAM = 1
CJK_NGRAM = {"ja": 2, "zh": 2, "ko": 2}
CJK_LANGS = frozenset(CJK_NGRAM)


def _is_cjk_char(ch: str) -> bool:
    cp = ord(ch)
    return (0x3040 <= cp <= 0x30FF or 0x3400 <= cp <= 0x4DBF or 0x4E00 <= cp <= 0x9FFF
            or 0xAC00 <= cp <= 0xD7AF or 0x1100 <= cp <= 0x11FF or 0x3130 <= cp <= 0x318F)


def script_language(text: str, language: Optional[str]) -> str:
    """The shingling family of a text: its language when it is ja/zh/ko, else by script."""
    lang = (language or "").split("-")[0].lower()
    if lang in CJK_LANGS:
        return lang
    if lang:
        return "words"
    letters = [ch for ch in text if ch.isalpha()]
    if letters and sum(_is_cjk_char(ch) for ch in letters) / len(letters) > 0.5:
        if any(0xAC00 <= ord(ch) <= 0xD7AF for ch in letters):
            return "ko"
        if any(0x3040 <= ord(ch) <= 0x30FF for ch in letters):
            return "ja"
        return "zh"
    return "words"


@functools.lru_cache(maxsize=1)
def _punctuation_table() -> Dict[int, str]:
    """Every punctuation (P*) and symbol (S*) code point → space, for ``str.translate``."""
    return {cp: " " for cp in range(sys.maxunicode + 1)
            if unicodedata.category(chr(cp))[0] in "PS"}


def canonical_text(text: str) -> str:
    """Case-folded, punctuation and symbols replaced by spaces, whitespace collapsed.

    Expects the pipeline's normalised text (already NFKC, see pipeline/text/clean.py).
    """
    return " ".join(text.casefold().translate(_punctuation_table()).split())


def shingles(text: str, language: Optional[str] = None, word_n: int = WORD_NGRAM,
             cjk_n: Optional[dict] = None) -> FrozenSet[str]:
    """The shingle set of ``text``.

    >>> sorted(shingles("Great kettle, GREAT price!", "en"))
    ['great', 'kettle', 'price']
    >>> sorted(shingles("재밌어요", "ko"))
    ['밌어', '어요', '재밌']
    """
    family = script_language(text, language)
    canon = canonical_text(text)
    if family == "words":
        words = canon.split()
        if len(words) < word_n:
            return frozenset([" ".join(words)]) if words else frozenset()
        return frozenset(" ".join(words[i:i + word_n]) for i in range(len(words) - word_n + 1))
    n = (cjk_n or CJK_NGRAM)[family]
    chars = canon.replace(" ", "")
    if len(chars) < n:
        return frozenset([chars]) if chars else frozenset()
    return frozenset(chars[i:i + n] for i in range(len(chars) - n + 1))
