"""Language identification with Lingua (``lingua-language-detector``).

Why Lingua: it is maintained, runs fully offline (its n-gram models ship inside the wheel), and is
built for short text: on review-length input it separates English, Japanese, Korean and Chinese by
script rules plus statistics (see tests/test_text.py). The detector is restricted to the languages
a storefront is likely to receive; restricting it raises accuracy on short text and keeps memory
near 450 MB per worker process instead of 1.3 GB for all 75 languages.

When a text is too short or ambiguous to tell ("Ok", "Nice"), the answer is ``None`` (undetermined)
rather than a guess: a wrong language would send a review to a detector that does not speak it.
A ``language`` given in the input wins over detection unless detection is confident that the text
is in another language the detector knows (``"fr"`` declared on plainly English text): a declared
tag is author-controlled, and a wrong one would switch detectors off (the classifier scores
English only). Then the detected language is used and the disagreement is recorded.
"""
from __future__ import annotations

import functools
import re
from typing import Optional, Tuple

from lingua import Language, LanguageDetectorBuilder

SUPPORTED = (
    Language.ENGLISH, Language.JAPANESE, Language.KOREAN, Language.CHINESE, Language.FRENCH,
    Language.GERMAN, Language.SPANISH, Language.PORTUGUESE, Language.ITALIAN, Language.DUTCH,
    Language.RUSSIAN, Language.POLISH, Language.TURKISH, Language.ARABIC, Language.HINDI,
    Language.VIETNAMESE, Language.THAI, Language.INDONESIAN, Language.SWEDISH, Language.DANISH,
)
# Below this distance between the best and second-best language the answer is "undetermined".
MIN_RELATIVE_DISTANCE = 0.1
# Confidence (Lingua's, 0..1) above which detection overrules a declared language it disagrees with.
OVERRULE_CONFIDENCE = 0.8
_SUPPORTED_CODES = frozenset(lang.iso_code_639_1.name.lower() for lang in SUPPORTED)


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


def confident_language(text: str, min_confidence: float = OVERRULE_CONFIDENCE) -> Optional[str]:
    """The ISO 639-1 code of ``text``'s language when Lingua's confidence in it is at least
    ``min_confidence``, else None."""
    if not text or not any(ch.isalpha() for ch in text):
        return None
    values = _detector().compute_language_confidence_values(text)
    if not values or values[0].value < min_confidence:
        return None
    return values[0].language.iso_code_639_1.name.lower()


# a sentence ends at a line break, or at . ! ? (and their CJK forms) followed by a space
_SENTENCE_END = re.compile(r"(?:\n+|(?<=[.!?。！？])\s+)")


def sentences_in(text: str, language: str, min_words: int = 3) -> Optional[str]:
    """The sentences of ``text`` that language id says are in ``language`` (ISO 639-1), joined with
    line breaks, or None where there are none.

    For a review whose whole reads as one language but which holds sentences of another: an English
    fake followed by a longer real review in Spanish is Spanish as a whole. One detection per
    sentence (~0.3 ms each), where Lingua's ``detect_multiple_languages_of`` took ~100 ms a review.

    A sentence under ``min_words`` words is too short to judge alone, so short sentences are judged
    together: each run of consecutive short sentences as one text, and then the short sentences
    that read as ``language`` on their own, wherever they stand, as one more text. An English fake
    cut into two-word sentences ("Great product. Works perfectly. Highly recommend.") inside a
    longer Spanish review is found either way, also when each piece stands between Spanish ones."""
    if not text:
        return None
    sentences = [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]
    words = [len(s.split()) for s in sentences]
    chosen, runs, run = set(), [], []
    for i, sentence in enumerate(sentences):
        if words[i] >= min_words:
            if run:
                runs.append(run)
                run = []
            if detect_language(sentence) == language:
                chosen.add(i)
        else:
            run.append(i)
    if run:
        runs.append(run)

    def reads_as(indices) -> bool:
        return (sum(words[i] for i in indices) >= min_words
                and detect_language(" ".join(sentences[i] for i in indices)) == language)

    left = []
    for run in runs:
        if reads_as(run):
            chosen.update(run)
        else:
            left += run
    alone = [i for i in left if detect_language(sentences[i]) == language]
    if reads_as(alone):
        chosen.update(alone)
    return "\n".join(sentences[i] for i in sorted(chosen)) or None


def reconcile(given: str, text: str) -> Tuple[str, str, Optional[str]]:
    """(language to use, language_source, the given tag if overruled) for a review that declares
    ``given``: the declared tag, unless detection is confident the text is another language the
    detector knows while the declared language is one it knows too (so it could have said so)."""
    tag = normalise_tag(given)
    primary = tag.split("-")[0]
    if primary not in _SUPPORTED_CODES:
        return tag, "given", None  # the detector cannot recognise the declared language: no say
    detected = confident_language(text)
    if detected is not None and detected != primary:
        return detected, "detected_over_given", tag
    return tag, "given", None


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
