"""Language identification with Lingua (``lingua-language-detector``).

Why Lingua: it is maintained, runs fully offline (its n-gram models ship inside the wheel), and is
built for short text: on review-length input it separates English, Japanese, Korean and Chinese by
script rules plus statistics (see tests/test_text.py). The detector is restricted to the languages
a storefront is likely to receive; restricting it raises accuracy on short text and keeps memory
near 450 MB per worker process instead of 1.3 GB for all 75 languages.

When a text is too short or ambiguous to tell ("Ok", "Nice"), the answer is ``None`` (undetermined)
rather than a guess: a wrong language would send a review to a detector that does not speak it.
A ``language`` given in the input always wins over detection.
"""
from __future__ import annotations

import functools
from typing import Optional

from lingua import Language, LanguageDetectorBuilder

SUPPORTED = (
    Language.ENGLISH, Language.JAPANESE, Language.KOREAN, Language.CHINESE, Language.FRENCH,
    Language.GERMAN, Language.SPANISH, Language.PORTUGUESE, Language.ITALIAN, Language.DUTCH,
    Language.RUSSIAN, Language.POLISH, Language.TURKISH, Language.ARABIC, Language.HINDI,
    Language.VIETNAMESE, Language.THAI, Language.INDONESIAN, Language.SWEDISH, Language.DANISH,
)
# Below this distance between the best and second-best language the answer is "undetermined".
MIN_RELATIVE_DISTANCE = 0.1


@functools.lru_cache(maxsize=1)
def _detector():
    return (LanguageDetectorBuilder.from_languages(*SUPPORTED)
            .with_minimum_relative_distance(MIN_RELATIVE_DISTANCE).build())


def detect_language(text: str) -> Optional[str]:
    """Returns the ISO 639-1 code (lower case) of ``text``'s language, or None when undetermined.

    >>> detect_language("배송이 빨라요 만족합니다")
    'ko'
    """
    if not text or not any(ch.isalpha() for ch in text):
        return None
    lang = _detector().detect_language_of(text)
    return lang.iso_code_639_1.name.lower() if lang is not None else None


def normalise_tag(tag: str) -> str:
    """Canonical casing of a BCP 47 tag: language lower, region upper, script title ('zh-Hant-TW')."""
    parts = tag.replace("_", "-").split("-")
    out = [parts[0].lower()]
    for p in parts[1:]:
        if len(p) == 2 and p.isalpha():
            out.append(p.upper())
        elif len(p) == 4 and p.isalpha():
            out.append(p.title())
        else:
            out.append(p.lower())
    return "-".join(out)


def version() -> str:
    from importlib.metadata import version as _v
    return _v("lingua-language-detector")
