"""Personal-data redaction for published text: emails, phone numbers, payment cards, street addresses.

Libraries for the hard parts: ``phonenumbers`` (Google's libphonenumber) finds phone numbers in
free text and validates them per region, so order numbers and years are not taken for phones;
``python-stdnum`` checks payment-card candidates with the Luhn checksum. Emails and street
addresses are patterns: addresses only where a pattern is reliable (US-style street lines, Korean
road-name addresses with their district, Japanese postal codes and chōme-banchi), which is the
"where feasible" of the contract. Presidio was considered and not used: it needs a spaCy model
downloaded from a hub at run time, which offline workers cannot do.

Redaction replaces each span with a visible marker, so a reader sees that something was removed.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Dict, List, Optional, Tuple

import phonenumbers
from stdnum import luhn

MARKERS = {
    "email": "[email removed]",
    "phone": "[phone removed]",
    "payment_card": "[card number removed]",
    "street_address": "[address removed]",
}

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
_US_STREET = re.compile(
    r"\b\d{1,6}\s+(?:[NSEW]\.?\s+)?(?:[A-Z][A-Za-z0-9']*\.?\s+){1,4}"
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|"
    r"Parkway|Pkwy|Circle|Cir|Highway|Hwy)\b\.?"
    r"(?:,?\s+(?:Apt|Apartment|Suite|Ste|Unit|#)\.?\s*[A-Za-z0-9-]+)?")
_KO_ROAD = re.compile(r"(?:[가-힣]+(?:특별시|광역시|시|도)\s*)?[가-힣]+(?:구|군)\s*[가-힣0-9]+(?:로|길)\s*\d+(?:-\d+)?(?:\s*\d+동)?(?:\s*\d+호)?")
_JA_POSTAL = re.compile(r"〒\s?\d{3}-?\d{4}")
_JA_BANCHI = re.compile(r"\d+丁目\s?\d+(?:番地?|-)\s?\d*(?:号)?")

# Language → default region for numbers written without a country code.
_REGION = {"en": "US", "ko": "KR", "ja": "JP", "zh": "CN", "de": "DE", "fr": "FR", "es": "ES",
           "it": "IT", "pt": "BR", "nl": "NL", "pl": "PL", "ru": "RU", "tr": "TR"}
_DIGITS_FOR_PHONE = 7


def _card_spans(text: str) -> List[Tuple[int, int]]:
    spans = []
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if 13 <= len(digits) <= 19 and luhn.is_valid(digits):
            spans.append(m.span())
    return spans


def _phone_spans(text: str, language: Optional[str]) -> List[Tuple[int, int]]:
    if sum(ch.isdigit() for ch in text) < _DIGITS_FOR_PHONE:
        return []
    region = _REGION.get((language or "en").split("-")[0].lower(), "US")
    spans = set()
    for reg in {region, "US"}:
        for m in phonenumbers.PhoneNumberMatcher(text, reg, leniency=phonenumbers.Leniency.VALID):
            spans.add((m.start, m.end))
    return sorted(spans)


def find_personal_data(text: str, language: Optional[str] = None) -> List[Tuple[int, int, str]]:
    """Spans (start, end, kind) of personal data in ``text``, non-overlapping, in order."""
    found: List[Tuple[int, int, str]] = []
    found += [(*m.span(), "email") for m in _EMAIL.finditer(text)]
    found += [(s, e, "payment_card") for s, e in _card_spans(text)]
    found += [(s, e, "phone") for s, e in _phone_spans(text, language)]
    for pattern in (_US_STREET, _KO_ROAD, _JA_POSTAL, _JA_BANCHI):
        found += [(*m.span(), "street_address") for m in pattern.finditer(text)]
    # Earlier and longer spans win; a card number is never also reported as a phone.
    found.sort(key=lambda s: (s[0], -(s[1] - s[0])))
    out: List[Tuple[int, int, str]] = []
    for span in found:
        if out and span[0] < out[-1][1]:
            continue
        out.append(span)
    return out


def redact(text: str, language: Optional[str] = None) -> Tuple[str, Dict[str, int]]:
    """Replaces personal data with markers; returns the new text and counts per kind.

    >>> redact("Mail me at jo@example.com or call (415) 555-2671.")
    ('Mail me at [email removed] or call [phone removed].', {'email': 1, 'phone': 1})
    """
    spans = find_personal_data(text, language)
    if not spans:
        return text, {}
    parts, pos = [], 0
    for start, end, kind in spans:
        parts.append(text[pos:start])
        parts.append(MARKERS[kind])
        pos = end
    parts.append(text[pos:])
    return "".join(parts), dict(Counter(kind for _, _, kind in spans))


def version() -> str:
    from importlib.metadata import version as _v
    return f"phonenumbers-{_v('phonenumbers')}+stdnum-{_v('python-stdnum')}+patterns-1"
