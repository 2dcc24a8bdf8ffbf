"""Personal-data redaction for published text (English, Japanese, Korean and any other language).

What is found (kind → marker, see ``MARKERS``): emails, also obfuscated ("jo at example dot com",
"jo (at) example (dot) com", spaced, zero-width characters, non-ASCII domains, 골뱅이/アットマーク);
phone numbers in any supported region's format whatever the review's language (E.164 with any
country code, national formats of US/KR/JP/GB/CN and more); payment cards with any separator
(spaces, dashes, dots, " - "), checked with Luhn *and* issuer ranges; national identifiers with
their check digits (Korean resident registration numbers, Japanese My Numbers, US SSNs); passport
numbers after a passport word; IBANs (ISO 7064 mod 97); street addresses (US street lines,
PO boxes, city-state-ZIP; Korean road-name and lot-number (지번) addresses and apartment units;
Japanese addresses with and without 丁目, 〒 postal codes; postal codes after a postal-code word);
URLs that carry credentials, session or tracking tokens (scheme and host kept, the rest dropped);
and personal names introduced by self-identification or contact phrases ("my name is", "ask for",
"私の名前は", "と申します", "担当の…さん", "제 이름은", "…라고 합니다", "담당자 …님").

Precision: a number right after "model", "part", "SKU", "serial", "order", "item", "型番", "品番",
"注文", "모델", "주문", "품번" … is a product or order code, never a phone, card or identifier (case
and ticket words are not: "just in case 415-555-2671 is my cell", "claim: <SSN>"; a case number that
looks like a phone or card is redacted); the store's own phones and emails
(:class:`PublicContacts`, ``--public_contacts``) are kept;
prices (currency signs and words), dates, times, quantities with units and ratings are kept. Every
rule only replaces spans with a visible marker: redaction never holds or rejects a review and does
not look at sentiment.

Libraries, and why:

* ``phonenumbers`` (Google's libphonenumber metadata): validates phone candidates per region. The
  candidates come from one regex and are parsed against the review's region *and* US, KR, JP, GB,
  CN (``parse`` + ``is_valid_number``), which finds foreign formats in any review; numbers with a
  ``+`` country code only need to be possible for their country. ``PhoneNumberMatcher`` run once
  per region was measured slower (it re-scans the whole text per region) and it cannot see the
  "model/order" context, so it is not used any more; a few unmistakable shapes ("(555) 013-4567",
  010-1234-5678) are accepted even when the range is unassigned (fictional numbers are still
  somebody's way of writing a phone).
* ``python-stdnum``: the check digits (Luhn for cards, ``kr.rrn``, ``jp.in_``, ``us.ssn``,
  ``iban``). Issuer ranges for cards are a small table here (stdnum has none).
* Presidio (``presidio-analyzer`` 2.2.366) was checked and rejected: its pattern recognizers are
  regexes plus the same kind of checksums, but the package hard-depends on spaCy (and thinc,
  preshed, pydantic, numpy < 2.5) even when no NLP model is loaded, pulls ``tldextract`` (which
  fetches the public-suffix list over the network on first use), has no Japanese recognizers, and
  its per-call engine overhead would break the normalisation stage's speed budget.
* Emails, addresses, URLs and names are regular expressions with explicit context words: no
  offline NER model for Japanese and Korean names exists in our dependency set, and names are only
  redacted where the text itself says "this is a name" (self-identification or contact phrases).

Zero-width characters (U+200B–U+200D, U+2060, U+FEFF, soft hyphen) are removed before detection:
they are invisible, and they are how addresses and numbers are smuggled past patterns. The input
is expected to be NFKC-normalised already (``clean.clean_text``), so full-width digits and
punctuation are plain ASCII here.

Known limits (measured by ``make bench-pii`` and ``tests/test_pii.py``): names are only found after
a self-identification or contact phrase (a bare "Jane Smith" is not redacted, nor are two-syllable
Korean names after "저는"); a code word *after* a number ("4155552671 is the part number") does not
protect it; addresses need a house number or postal code; Korean RRNs issued since 2020 (no check
digit) are only recognised with a dash or a 주민 context word; a partner name redacted to a marker
may make two partners look alike to the syndication check.
"""
from __future__ import annotations

import functools
import re
from collections import Counter
from typing import Dict, Iterable, List, NamedTuple, Optional, Tuple
from urllib.parse import parse_qsl, urlsplit

import phonenumbers
from stdnum import iban as _iban
from stdnum import luhn
from stdnum.jp import in_ as _jp_in
from stdnum.kr import rrn as _kr_rrn
from stdnum.us import ssn as _us_ssn

MARKERS = {
    "email": "[email removed]",
    "phone": "[phone removed]",
    "payment_card": "[card number removed]",
    "national_id": "[ID number removed]",
    "passport": "[passport number removed]",
    "iban": "[bank account removed]",
    "street_address": "[address removed]",
    "url_token": "[link details removed]",
    "person_name": "[name removed]",
}
# When two detectors claim overlapping text, the more specific one wins (lower number first).
_PRIORITY = {"url_token": 0, "email": 1, "iban": 2, "national_id": 3, "passport": 4, "payment_card": 5,
             "phone": 6, "street_address": 7, "person_name": 8}

_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e]")

# ---------------------------------------------------------------------------------------------
# Context: product/order codes, prices, dates, quantities.
# ---------------------------------------------------------------------------------------------
_CODE_CONTEXT = re.compile(
    r"(?:\b(?:model|part|sku|serial|order|item|product|catalog(?:ue)?|invoice|tracking|ref(?:erence)?|"
    r"lot|batch|barcode|upc|ean|isbn|asin|version|ver|firmware|s/n|p/n|sn|pn|mfr|mpn|article|art)"
    r"(?:\s*(?:no|nr|num|number|numbers|code|id|#))?\.?"
    r"|型番|品番|製品番号|商品番号|注文番号|注文|受注番号|シリアル(?:番号)?|製造番号|管理番号|伝票番号|追跡番号|問い合わせ番号|JAN(?:コード)?"
    r"|모델(?:명|번호)?|주문(?:번호)?|품번|제품번호|상품번호|시리얼(?:번호)?|일련번호|송장(?:번호)?|운송장(?:번호)?|바코드)"
    r"\s*(?:is|was|are|were|:|は|が|の|은|는|이|가)?\s*[:#：＃\-]?\s*$", re.IGNORECASE)
_CURRENCY_BEFORE = re.compile(r"(?:[$€£¥₩￥]|\b(?:USD|EUR|GBP|JPY|KRW|US\$|Rs\.?))\s*$", re.IGNORECASE)
_UNIT_AFTER = re.compile(
    r"^\s*(?:원|円|엔|달러|won|yen|dollars?|usd|krw|jpy|eur|€|개|명|점|번|회|일|월|년|시|분|초|살|층|세|장|권|병|캔|박스|"
    r"個|人|点|件|回|日|月|年|時|分|秒|歳|階|枚|冊|本|箱|%|percent|pcs|pieces|units|times|steps|views|"
    r"downloads|people|users|followers|likes|mah|mm|cm|km|kg|mg|ml|gb|mb|tb|kb|hz|w\b|v\b)", re.IGNORECASE)
_DATE_PREFIX = re.compile(r"^(?:19|20)\d\d[-/.](?:0?[1-9]|1[0-2])[-/.](?:0?[1-9]|[12]\d|3[01])(?!\d)")
_DATE_LIKE = re.compile(r"^(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}|\d{4}[-/.]\d{1,2}|"
                        r"\d{4}\s?[-–~]\s?\d{4})$")


def _code_context(text: str, start: int) -> bool:
    """True when the number at ``start`` is introduced as a model/part/order/serial code."""
    return bool(_CODE_CONTEXT.search(text[max(0, start - 32):start]))


def _money_or_quantity(text: str, start: int, end: int) -> bool:
    return bool(_CURRENCY_BEFORE.search(text[max(0, start - 6):start]) or _UNIT_AFTER.match(text[end:end + 12]))


# ---------------------------------------------------------------------------------------------
# Emails
# ---------------------------------------------------------------------------------------------
_IDN_TLD = r"(?:한국|닷컴|닷넷|日本|中国|中國|公司|网络|テスト|コム|みんな|ストア|онлайн|рф)"
# Local parts in Latin script only: Japanese and Korean text runs straight into an address
# ("メールはyamada@…"), and \w would swallow the words before it.
_LCH = r"A-Za-z0-9À-ɏ_"
_LOCAL = rf"[{_LCH}.+%'-]*[{_LCH}+%-]"
_NOT_LOCAL_BEFORE = rf"(?<![{_LCH}.+%-])"
_DOMAIN_LABEL = r"[^\W_](?:[\w-]*[^\W_])?"
_EMAIL = re.compile(
    rf"{_NOT_LOCAL_BEFORE}{_LOCAL}[@＠]{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})*\.(?:[A-Za-z]{{2,24}}|{_IDN_TLD})(?![A-Za-z0-9-])")
_AT_WORD = r"(?:[\[\(\{<]\s*(?:at|@)\s*[\]\)\}>]|アットマーク|あっとまーく|アット|\bat\s?mark\b|\bat\b|골뱅이|엣|앳)"
_DOT_WORD = r"(?:[\[\(\{<]\s*(?:dot|\.)\s*[\]\)\}>]|\bdot\b|닷|쩜|점|ドット|どっと)"
_TLD = (r"(?:com|net|org|edu|gov|mil|int|info|biz|io|co|me|us|uk|jp|kr|de|fr|ca|au|cn|tw|hk|in|ru|br|"
        r"es|it|nl|se|ch|eu|xyz|app|dev|ai|tv|cc|ne|or|ac|go|pe|ad|gr|lg|ed|mail|한국|日本|コム|컴)")
# "jo @ example . com", "m a r k @ yahoo . com": spaces around @ and dots only with a known TLD.
_EMAIL_SPACED = re.compile(
    rf"{_NOT_LOCAL_BEFORE}(?:(?:[{_LCH}]\s){{2,}}[{_LCH}]|{_LOCAL})\s?[@＠]\s?{_DOMAIN_LABEL}(?:\s?\.\s?{_DOMAIN_LABEL})*?"
    rf"\s?\.\s?{_TLD}(?:\s?\.\s?{_TLD})*(?![A-Za-z0-9-])", re.IGNORECASE)
# Obfuscated forms are found from their "at" (on the lower-cased text): the domain and a known
# top-level domain must follow it, then the local part is read backwards.
_AT_FIND = re.compile(rf"{_AT_WORD}\s*")
_OBF_TAIL = re.compile(
    rf"({_DOMAIN_LABEL}(?:\s*(?:{_DOT_WORD}|\.)\s*{_DOMAIN_LABEL})*?)"
    rf"\s*(?:{_DOT_WORD}|\.)\s*{_TLD}(?:\s*(?:{_DOT_WORD}|\.)\s*{_TLD})*(?![a-z0-9])")
_OBF_HEAD = re.compile(rf"{_NOT_LOCAL_BEFORE}({_LOCAL}(?:\s*{_DOT_WORD}\s*{_LOCAL})*)\s*\Z")
_BRACKETED = re.compile(r"[\[\(\{<]|골뱅이|엣|앳|アット|あっと|mark", re.IGNORECASE)
_MAIL_PROVIDERS = re.compile(
    r"^(?:g\s?mail|googlemail|yahoo|ymail|hotmail|outlook|live|msn|aol|icloud|me|mac|proton(?:mail)?|pm|"
    r"gmx|mail|yandex|zoho|fastmail|naver|daum|hanmail|kakao|nate|korea|docomo|ezweb|softbank|i\.softbank|"
    r"au|ybb|nifty|biglobe|ocn|so-net|plala)\b", re.IGNORECASE)
_MAIL_CONTEXT = re.compile(r"(?:e-?mail|mail|contact|reach|write|send|address|이메일|메일|연락|メール|連絡|アドレス)",
                           re.IGNORECASE)


def _email_spans(text: str, lower: str) -> List[Tuple[int, int]]:
    spans = []
    if "@" in text or "＠" in text:
        spans += [m.span() for m in _EMAIL.finditer(text)]
        spans += [m.span() for m in _EMAIL_SPACED.finditer(text)]
    for m in _AT_FIND.finditer(lower):
        tail = _OBF_TAIL.match(lower, m.end())
        if not tail:
            continue
        head = _OBF_HEAD.search(lower, max(0, m.start() - 80), m.start())
        if not head:
            continue
        local, domain = head.group(1), tail.group(1)
        start = head.start(1)
        if not re.search(r"[^\W\d_]", local):   # "$140 at hotels.com" is a price
            continue
        strong = (_BRACKETED.search(m.group()) or re.search(r"[._\d]", local) or _MAIL_PROVIDERS.match(domain)
                  or _MAIL_CONTEXT.search(lower[max(0, start - 40):start]))
        if strong:
            spans.append((start, tail.end()))
    return spans


# ---------------------------------------------------------------------------------------------
# URLs with credentials or tokens
# ---------------------------------------------------------------------------------------------
_URL = re.compile(r"\b(?:(?:https?|ftp)://|www\.)[^\s<>\"'「」（）()]+", re.IGNORECASE)
# Query parameters whose value identifies a person or a session whatever it looks like, and weaker
# ones (ids, codes, refs) that only count when the value looks like a token.
_STRONG_PARAMS = frozenset("""token tok access auth session sess sessionid jsessionid phpsessid sid secret password passwd
pwd pass otp sig signature nonce jwt bearer cred creds credentials login user username userid uid email mail e-mail
phone tel mobile member memberid account acct customer cust fbclid gclid dclid msclkid mc eid mkt yclid igshid invite
recipient rcpt subscriber unsubscribe reset verify confirm apikey key ticket hash""".split())
_WEAK_PARAMS = frozenset("code id ref track trk tracking click clk campaign utm name client uuid guid order orderid".split())
_PARAM_SPLIT = re.compile(r"[_\-.\[\]]+")
_TOKEN_VALUE = re.compile(r"^(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9_\-.~%+/=]{12,}$|^[0-9a-f]{16,}$|^\d{8,}$|@", re.IGNORECASE)
_FILE_SEGMENT = re.compile(r"\.(?:jpe?g|png|gif|webp|svg|avif|ico|html?|php|aspx?|jsp|pdf|mp[34]|mov|css|js)$", re.IGNORECASE)
_TOKEN_SEGMENT = re.compile(r"^(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9_\-~%+=.]{16,}$|^[0-9a-f]{24,}$|@|"
                            r"^(?:session|token|sid|auth|track|click|unsubscribe|reset|verify|confirm|invite)\b",
                            re.IGNORECASE)


def _url_needs_redaction(url: str) -> bool:
    try:
        parts = urlsplit(url if "://" in url else "http://" + url)
        if parts.username or parts.password or "@" in parts.netloc:
            return True
    except ValueError:
        return True
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        key_parts = set(_PARAM_SPLIT.split(key.lower()))
        if (key_parts & _STRONG_PARAMS and value) or _TOKEN_VALUE.search(value):
            return True
    if parts.fragment and (_TOKEN_VALUE.search(parts.fragment) or "=" in parts.fragment):
        return True
    if ";" in parts.path and re.search(r";\s*(?:jsessionid|sid|session)", parts.path, re.IGNORECASE):
        return True
    return any(_TOKEN_SEGMENT.search(seg) for seg in parts.path.split("/") if seg and not _FILE_SEGMENT.search(seg))


def _scheme_host(url: str) -> Tuple[str, str]:
    parts = urlsplit(url if "://" in url else "http://" + url)
    scheme = parts.scheme if "://" in url else ""
    host = (parts.hostname or "").rstrip(".")
    if parts.port:
        host = f"{host}:{parts.port}"
    return scheme, host


def _url_spans(text: str) -> List[Tuple[int, int, str]]:
    """(start, end, replacement prefix) of URLs to redact: from after ``scheme://host/`` to the end of
    the URL, or the whole URL (replaced by ``scheme://host/``) when it carries credentials."""
    out = []
    for m in _URL.finditer(text):
        url = m.group().rstrip(".,;:!?)]}'\"。、！？")
        if not _url_needs_redaction(url):
            continue
        try:
            scheme, host = _scheme_host(url)
        except ValueError:
            out.append((m.start(), m.start() + len(url), ""))
            continue
        after = url.find("://") + 3 if "://" in url else 0
        ends = [i for i in (url.find("/", after), url.find("?", after), url.find("#", after)) if i >= 0]
        auth_end = min(ends) if ends else len(url)
        if "@" in url[after:auth_end]:
            out.append((m.start(), m.start() + len(url), (f"{scheme}://" if scheme else "") + host + "/"))
        elif url[auth_end:auth_end + 1] == "/":
            out.append((m.start() + auth_end + 1, m.start() + len(url), ""))
        else:
            out.append((m.start() + auth_end, m.start() + len(url), "/"))
    return out


def redact_url(url: Optional[str]) -> Tuple[Optional[str], Dict[str, int]]:
    """A URL field (``source.url``): credentials and token-carrying path/query/fragment dropped,
    scheme and host kept ("https://shop.example/"); other URLs unchanged."""
    if not url:
        return url, {}
    stripped = _INVISIBLE.sub("", url).strip()
    if not _url_needs_redaction(stripped):
        return url, {}
    try:
        scheme, host = _scheme_host(stripped)
    except ValueError:
        return "", {"url_token": 1}
    return f"{scheme or 'https'}://{host}/", {"url_token": 1}


# ---------------------------------------------------------------------------------------------
# Numbers: cards, national IDs, IBAN, passports, phones
# ---------------------------------------------------------------------------------------------
_SEP = r"(?:\s?[-.–]\s?|\s)"
_CARD = re.compile(rf"(?<![A-Za-z0-9.\-])\d(?:{_SEP}?\d){{12,18}}(?![0-9])")
# Issuer (IIN) ranges: Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro, Mir, RuPay,
# Korean and Japanese domestic BC/local ranges fall inside these.
_ISSUER = re.compile(r"^(?:4\d{12}(?:\d{3}){0,2}|5[1-5]\d{14}|2(?:22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)\d{12}|"
                     r"3[47]\d{13}|6(?:011|5\d\d|4[4-9]\d)\d{12,15}|35(?:2[89]|[3-8]\d)\d{12,15}|"
                     r"3(?:0[0-59]|[689]\d)\d{11,16}|62\d{14,17}|(?:50|5[6-9]|6\d)\d{10,17}|220[0-4]\d{12})$")

_RRN = re.compile(r"(?<![0-9A-Za-z\-])(?<!\d[\s.\-–])(\d{2})(\d{2})(\d{2})\s?([-–]?)\s?([1-8])(\d{6})(?![0-9])(?![\s.\-–]\d)")
_MYNUMBER = re.compile(r"(?<![0-9A-Za-z\-])(?<!\d[\s.\-–])\d{4}([\s\-–.]?)\d{4}\1\d{4}(?![0-9])(?![\s.\-–]\d)")
_MYNUMBER_CONTEXT = re.compile(r"(?:マイナンバー|マイナ|個人番号|my\s?number|mynumber|マイナンバーカード|個人番号カード|通知カード)",
                               re.IGNORECASE)
_SSN = re.compile(r"(?<![0-9A-Za-z\-])(?<!\d[\s.\-–])\d{3}([\s\-–.])\d{2}\1\d{4}(?![0-9])(?![\s.\-–]\d)|(?<![0-9A-Za-z\-])\d{9}(?![0-9])")
_RRN_SPLIT = re.compile(r"앞\s?자리\s?(?:는|은)?\s?[:：]?\s?(\d{6})(?!\d)\D{1,12}?뒷\s?자리\s?(?:는|은)?\s?[:：]?\s?([1-8]\d{6})(?!\d)")
_RRN_CONTEXT = re.compile(r"(?:주민|등록번호|외국인등록|rrn|resident\s?registration)", re.IGNORECASE)
_SSN_CONTEXT = re.compile(r"(?:ssn|social\s?security|soc\.?\s?sec|tin|itin|taxpayer|사회보장번호|社会保障番号)", re.IGNORECASE)
_IBAN_START = re.compile(r"[A-Za-z]{2}\d{2}")
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[ \-]?[A-Z0-9]){11,32}(?![A-Za-z0-9])", re.IGNORECASE)
_PASSPORT = re.compile(
    r"(?:passport|passeport|pass\s?no|여권|旅券|パスポート|护照|護照)[^\n\d]{0,24}?"
    r"(?<![A-Za-z0-9])([A-Za-z]{1,2}\s?\d{6,8}|[A-Za-z]\d{3}[A-Za-z]\d{4}|\d{9}|\d{2}[A-Za-z]{2}\d{5})(?![A-Za-z0-9])",
    re.IGNORECASE)

_PHONE_CAND = re.compile(
    r"(?<![A-Za-z0-9.+\-/#])(?:(?:\+|00)\s?\d{1,3}(?:\s?\(0\))?(?:\s?[-.–]\s?|\s)?|1[\s.\-]?(?=\())?(?:\(\d{1,5}\)\s?[-.–]?\s?)?"
    r"\d{1,12}(?:(?:\s?[-.–]\s?|\s|\)\s?|\s?\(\s?(?=\d{1,5}\)))\d{1,8}){0,5}(?![0-9])")
_PHONE_REGIONS = ("US", "KR", "JP", "GB", "CN")
_REGION = {"en": "US", "ko": "KR", "ja": "JP", "zh": "CN", "de": "DE", "fr": "FR", "es": "ES",
           "it": "IT", "pt": "BR", "nl": "NL", "pl": "PL", "ru": "RU", "tr": "TR", "ro": "RO"}
_STRONG_PHONE = re.compile(
    r"^(?:\(\d{3}\)\s?\d{3}\s?[-.–]?\s?\d{4}"          # (555) 013-4567
    r"|\d{3}\s?[-.–]\s?\d{3}\s?[-.–]\s?\d{4}"          # 555-013-4567
    r"|1\s?[-.–]\s?\d{3}\s?[-.–]\s?\d{3}\s?[-.–]\s?\d{4}"
    r"|0\d{1,2}\s?[-.–]\s?\d{3,4}\s?[-.–]\s?\d{4}"     # 010-1234-5678, 02-123-4567
    r"|0\d{1,4}\s?[-.–]\s?\d{1,4}\s?[-.–]\s?\d{3,4}"   # 03-1234-5678, 0120-123-456
    r"|0\d{2,4}\s\d{3,4}\s\d{3,4}"                      # 020 7946 0958
    r"|01[016789]\d{7,8})$")                            # 01012345678
_MIN_PHONE_DIGITS = 7


def _digits(s: str) -> str:
    return re.sub(r"\D", "", s)


def _luhn_ok(d: str) -> bool:
    try:
        return luhn.is_valid(d)
    except Exception:  # noqa: BLE001 - stdnum raises its own ValidationError family
        return False


def _card_spans(text: str) -> List[Tuple[int, int]]:
    out = []
    for m in _CARD.finditer(text):
        d = _digits(m.group())
        if 13 <= len(d) <= 19 and _ISSUER.match(d) and _luhn_ok(d) and not _code_context(text, m.start()):
            out.append(m.span())
    return out


def _valid_date(yy: str, mm: str, dd: str) -> bool:
    return 1 <= int(mm) <= 12 and 1 <= int(dd) <= 31


def _id_spans(text: str, lower: str, n_digits: int) -> List[Tuple[int, int, str]]:
    out = []
    for m in _RRN.finditer(text) if n_digits >= 13 else ():
        d = _digits(m.group())
        if _code_context(text, m.start()) or not _valid_date(m.group(1), m.group(2), m.group(3)):
            continue
        # RRNs issued since October 2020 have no check digit: a dashed YYMMDD-Gxxxxxx is enough.
        if m.group(4) or _kr_rrn.is_valid(d) or _RRN_CONTEXT.search(text[max(0, m.start() - 20):m.start()]):
            out.append((m.start(), m.end(), "national_id"))
    if n_digits >= 13 and "자리" in text:
        for m in _RRN_SPLIT.finditer(text):
            out += [(m.start(1), m.end(1), "national_id"), (m.start(2), m.end(2), "national_id")]
    for m in _MYNUMBER.finditer(text) if n_digits >= 12 else ():
        d = _digits(m.group())
        if _code_context(text, m.start()) or not _jp_in.is_valid(d):
            continue
        if m.group(1) or _MYNUMBER_CONTEXT.search(text[max(0, m.start() - 30):m.start()]):
            out.append((m.start(), m.end(), "national_id"))
    for m in _SSN.finditer(text) if n_digits >= 9 else ():
        d = _digits(m.group())
        if _code_context(text, m.start()) or not _us_ssn.is_valid(d):
            continue
        sep = m.group(1)
        if sep == "-" or sep == "–" or _SSN_CONTEXT.search(text[max(0, m.start() - 30):m.start()]):
            out.append((m.start(), m.end(), "national_id"))
    if n_digits >= 8 and _IBAN_START.search(text):
        for m in _IBAN.finditer(text):
            s, e = _iban_span(text, m.start(), m.end())
            if e:
                out.append((s, e, "iban"))
    for m in _PASSPORT.finditer(text) if any(w in lower for w in _PASSPORT_WORDS) else ():
        out.append((m.start(1), m.end(1), "passport"))
    return out


def _iban_span(text: str, start: int, end: int) -> Tuple[int, int]:
    """The longest prefix of text[start:end] that is a valid IBAN (trailing words trimmed)."""
    candidate = text[start:end]
    for cut in range(len(candidate), 14, -1):
        if not candidate[cut - 1].isalnum():
            continue
        compact = re.sub(r"[\s\-]", "", candidate[:cut]).upper()
        if 15 <= len(compact) <= 34 and _iban_ok(compact):
            return start, start + cut
    return start, 0


def _iban_ok(compact: str) -> bool:
    """ISO 13616 country, length and mod-97 check (the national BBAN checks are left out: a typo'd
    or foreign-format account number is still somebody's account number)."""
    try:
        _iban.validate(compact, check_country=False)
        return True
    except Exception:  # noqa: BLE001
        return False


@functools.lru_cache(maxsize=4096)
def _phone_ok(cand: str, regions: Tuple[str, ...]) -> bool:
    d = _digits(cand)
    if not (_MIN_PHONE_DIGITS <= len(d) <= 15) or _DATE_LIKE.match(cand) or _DATE_PREFIX.match(cand) \
            or d in "01234567890123456789" or d in "98765432109876543210":
        return False
    s = cand.strip()
    if s.startswith("+") or s.startswith("00"):
        try:
            num = phonenumbers.parse("+" + s[2:] if s.startswith("00") else s, None)
            return phonenumbers.is_possible_number(num)
        except phonenumbers.NumberParseException:
            return False
    if _STRONG_PHONE.match(s):
        return True
    if len(d) > 12 or s.count(".") > 0 and not re.search(r"\d{3}\.\d{3,4}\.\d{4}", s):
        return False
    for region in regions:
        try:
            if phonenumbers.is_valid_number(phonenumbers.parse(s, region)):
                return True
        except phonenumbers.NumberParseException:
            continue
    return False


def _phone_spans(text: str, language: Optional[str]) -> List[Tuple[int, int]]:
    region = _REGION.get((language or "en").split("-")[0].lower(), "US")
    regions = (region,) + tuple(r for r in _PHONE_REGIONS if r != region)
    out = []
    for m in _PHONE_CAND.finditer(text):
        cand = m.group()
        if sum(c.isdigit() for c in cand) < _MIN_PHONE_DIGITS:
            continue
        if _code_context(text, m.start()):
            continue
        # Try the whole candidate, then without trailing groups ("010-1234-5678 2개").
        groups = list(re.finditer(r"\d+", cand))
        for k in range(len(groups), max(0, len(groups) - 3), -1):
            end = groups[k - 1].end()
            sub = cand[:end]
            if sum(c.isdigit() for c in sub) < _MIN_PHONE_DIGITS:
                break
            if _phone_ok(sub, regions):
                if not _money_or_quantity(text, m.start(), m.start() + end) and text[m.start() + end:m.start() + end + 1] != ":":
                    out.append((m.start(), m.start() + end))
                break
    return out


# ---------------------------------------------------------------------------------------------
# Street addresses
# ---------------------------------------------------------------------------------------------
_STREET_TYPES = (r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|"
                 r"Terrace|Ter|Parkway|Pkwy|Circle|Cir|Highway|Hwy|Square|Sq|Trail|Trl|Alley|Plaza|Loop|Row)")
_US_STATES = (r"(?:AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|"
              r"NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|PR)")
_CITY_STATE_ZIP = rf"(?:,?\s+(?:[A-Z][a-z]+\.?\s?){{1,3}},?\s+{_US_STATES}\.?(?:\s+\d{{5}}(?:-\d{{4}})?)?)?"
_US_STREET = re.compile(
    r"(?<![\w-])\d{1,6}(?:-\d{1,4})?[A-Za-z]?\s+(?:[NSEW]\.?\s+|(?:North|South|East|West)\s+)?"
    r"(?:[A-Z0-9][A-Za-z0-9'’]*\.?\s+){1,4}" + _STREET_TYPES + r"\b\.?(?:\s+(?:NE|NW|SE|SW|N|S|E|W)\b\.?)?"
    r"(?:,?\s+(?:Apt|Apartment|Suite|Ste|Unit|Fl|Floor|Rm|Room|#)\.?\s*#?[A-Za-z0-9-]+)?" + _CITY_STATE_ZIP)
_PO_BOX = re.compile(r"\b(?:P\.?\s?O\.?\s?Box|Post\s+Office\s+Box|PO\s?B|Postfach|私書箱|사서함)\s*(?:No\.?\s*)?#?\s*\d{1,7}"
                     + _CITY_STATE_ZIP, re.IGNORECASE)
_CITY_ZIP = re.compile(rf"\b(?:[A-Z][a-z]+\s){{0,2}}[A-Z][a-z]+,\s+{_US_STATES}\s+\d{{5}}(?:-\d{{4}})?\b")
_POSTAL_CONTEXT = re.compile(
    r"(?:zip(?:\s?code)?|postal\s?code|postcode|post\s?code|우편\s?번호|우편|郵便番号|〒)\s*(?:is|:|：|は|는|은)?\s*[:：]?\s*"
    r"(\d{3}-?\d{4}(?![\d-])|\d{5}(?:-\d{4})?(?![\d-])|[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}\b)", re.IGNORECASE)
_UK_POSTCODE = re.compile(r"\b(?:[A-PR-UWYZ][A-HK-Y]?\d[A-Z\d]?)\s\d[ABD-HJLNP-UW-Z]{2}\b")
_JA_POSTAL = re.compile(r"〒\s?\d{3}\s?[-‐−ー]?\s?\d{4}")

_KO_ADMIN = (r"(?:(?:[가-힣]{1,6}(?:특별시|광역시|특별자치시|특별자치도|도|시)|서울|부산|대구|인천|광주|대전|울산|세종|경기|강원|"
             r"충북|충남|전북|전남|경북|경남|제주)\s)")
_KO_DISTRICT = r"(?:[가-힣]{1,5}(?:시|군|구)\s)"
_KO_APT_BRANDS = r"(?:힐스테이트|래미안|자이|푸르지오|아이파크|e편한세상|롯데캐슬|더샵|위브|센트레빌|두산위브|해링턴플레이스|스카이뷰)"
_KO_UNIT = (r"(?:\s?,?\s?(?:[가-힣A-Za-z0-9]{0,12}(?:아파트|빌라|맨션|오피스텔|타워|빌딩)\s?|" + _KO_APT_BRANDS
            + r"[가-힣A-Za-z0-9]{0,8}\s?)?(?:\d{1,4}\s?동\s?)?\d{1,5}\s?호|\s?,?\s?(?:지하\s?)?\d{1,3}\s?층)?")
_KO_ROAD = re.compile(
    rf"(?:{_KO_ADMIN}?{_KO_DISTRICT}{{1,2}}[가-힣0-9]{{1,10}}(?:대로|로|길)\s?\d{{1,4}}(?:번?길\s?\d{{1,4}})?(?:-\d{{1,4}})?"
    rf"|[가-힣0-9]{{1,10}}(?:대로|로)\s?\d{{1,4}}번?길\s?\d{{1,4}}(?:-\d{{1,4}})?"
    rf"|[가-힣]{{1,8}}대로\s?\d{{1,4}}(?:-\d{{1,4}})?(?![\d가-힣])"
    rf"|[가-힣]{{2,8}}(?:(?<!으)로|길)\s?\d{{1,4}}(?:-\d{{1,4}})?(?!\d)(?=\s?,?\s?(?:\d{{1,4}}\s?동|\d{{1,5}}\s?호|\d{{1,3}}\s?층|[가-힣A-Za-z0-9]{{1,12}}(?:아파트|빌라|빌딩)|{_KO_APT_BRANDS}|\())"
    rf"){_KO_UNIT}(?:\s?\([가-힣]{{1,6}}동(?:,\s?[가-힣A-Za-z0-9]{{1,12}})?\))?")
_KO_LOT = re.compile(
    rf"(?:{_KO_ADMIN}?{_KO_DISTRICT}{{1,2}}(?:[가-힣0-9]{{1,6}}(?:읍|면)\s?)?[가-힣0-9]{{1,8}}(?:동|리|가)\s?\d{{1,5}}(?:-\d{{1,5}})?(?:\s?번지)?"
    rf"|[가-힣0-9]{{1,8}}(?:동|리|가)\s?\d{{1,5}}(?:-\d{{1,5}}\s?번지|-\d{{1,5}}(?=\s?(?:번지|,|\s[가-힣]{{1,12}}(?:아파트|빌라))))"
    rf"|[가-힣0-9]{{1,8}}(?:동|리)\s?\d{{1,5}}\s?번지){_KO_UNIT}")
_KO_APT = re.compile(r"(?:[가-힣A-Za-z0-9]{0,12}(?:아파트|빌라|맨션|오피스텔)\s?|" + _KO_APT_BRANDS + r"[가-힣A-Za-z0-9]{0,8}\s?)?"
                     r"\d{1,4}\s?동\s?\d{2,5}\s?호")
_KO_RELATIVE_WORDS = re.compile(r"^(?:이|그|저|요|이번|지난|다음|한|두|세|네|어느|다른|우리|몇|여러|아|잘|또|더|좀)(?:\s|\d)")

_JA_PREF = (r"(?:北海道|東京都|(?:京都|大阪)府|(?:青森|岩手|宮城|秋田|山形|福島|茨城|栃木|群馬|埼玉|千葉|神奈川|新潟|富山|石川|福井|"
            r"山梨|長野|岐阜|静岡|愛知|三重|滋賀|兵庫|奈良|和歌山|鳥取|島根|岡山|広島|山口|徳島|香川|愛媛|高知|福岡|佐賀|長崎|"
            r"熊本|大分|宮崎|鹿児島|沖縄)県)")
_JA_NAME = r"[一-龥々ヶケァ-ヴー]"
_JA_MUNI = rf"(?:{_JA_NAME}{{1,6}}?(?:市|区|町|村|郡))"
_JA_TOWN = rf"(?:{_JA_NAME}|の){{1,10}}?"
_JA_NUM = r"(?:\d{1,3}条(?:[東西南北]\d{1,3}丁目)?(?:\s?\d{1,4}(?:[-‐−]\d{1,4})?(?:番地?|号)?)?|\d{1,4}丁目\s?\d{1,4}(?:(?:番地?|-)\s?\d{0,4}(?:号)?(?:\s?-\s?\d{1,4})?)?|\d{1,4}丁目|\d{1,4}番地?\s?\d{1,4}号?|\d{1,4}\s?[-‐−]\s?\d{1,4}(?:\s?[-‐−]\s?\d{1,4})?)"
_JA_ADDRESS = re.compile(
    rf"(?:{_JA_PREF}\s?{_JA_MUNI}{{0,3}}{_JA_TOWN}{_JA_NUM}"
    rf"|{_JA_MUNI}{{1,3}}{_JA_TOWN}(?:\d{{1,3}}条(?:[東西南北]\d{{1,3}}丁目)?(?:\s?\d{{1,4}}(?:[-‐−]\d{{1,4}})?(?:番地?|号)?)?|\d{{1,4}}丁目(?:\s?\d{{1,4}}(?:(?:番地?|-)\s?\d{{0,4}}(?:号)?)?)?|\d{{1,4}}番地?\s?\d{{1,4}}号?"
    rf"|\d{{1,4}}\s?[-‐−]\s?\d{{1,4}}\s?[-‐−]\s?\d{{1,4}}|\d{{1,4}}\s?[-‐−]\s?\d{{1,4}}(?=\s?(?:[一-龥ァ-ヺーA-Za-z]{{0,12}}(?:マンション|ハイツ|アパート|ビル|荘|コーポ|レジデンス|メゾン|パレス)|\d{{1,4}}号室)))"
    rf"|{_JA_MUNI}{{1,3}}[ぁ-ゖ一-龥ァ-ヺー々]{{1,10}}?\d{{1,4}}\s?[-‐−]\s?\d{{1,4}}\s?[-‐−]\s?\d{{1,4}}"
    rf"|\d{{1,4}}丁目\s?\d{{1,4}}(?:番地?|-)\s?\d{{0,4}}(?:号)?)"
    rf"(?:\s?[一-龥ァ-ヺーA-Za-z]{{1,12}}(?:マンション|ハイツ|アパート|ビル|荘|コーポ|レジデンス)?\s?\d{{1,4}}号室|\s?\d{{2,4}}号室)?")
_JA_BAD_MUNI = re.compile(r"^(?:地区|区別|区間|市場|市販|町内|村上)")

# ---------------------------------------------------------------------------------------------
# Names introduced by self-identification or contact phrases
# ---------------------------------------------------------------------------------------------
_EN_STOP = frozenset("""a an the and or but so if i me my we you he she it they them this that there here is am are was
were be been being to of in on at for from with by as not no yes very really just also too customer service support
team manager store staff department the amazon best buy walmart target google apple samsung sony lg costco ebay
great good bad product company help desk sales agent rep representative someone anyone everyone nobody them us him
her today tomorrow yesterday now then again please thanks thank hello hi hey dear sir madam who what when where why how
back out up down over after before about regarding re your our their its his ok okay sure happy sorry glad
mr mrs ms miss dr prof sir english spanish french german chinese japanese korean italian russian arabic reception
front desk concierge housekeeping security billing management corporate headquarters hq technical tech it hr
someone somebody nobody everybody another other""".split())
_EN_NAME_TOKEN = r"(?:Mc|Mac|O['’])?[A-Z][a-z]+(?:[-'’][A-Z]?[a-z]+)*|[A-Z]\."
_EN_SELF = re.compile(
    r"(?:my\s+name\s+is|my\s+name's|name's|(?:full\s+)?name(?=\s*:)|i\s+am\s+called|i'm\s+called|they\s+call\s+me|my\s+full\s+name\s+is|"
    r"this\s+is(?=(?-i:\s+[A-Z][a-z]+\s+[A-Z][a-z'’]+\s+(?:from|here|speaking|writing))))\s*[,:\-]?\s+"
    r"((?:Mr|Mrs|Ms|Miss|Dr|Prof)\.?\s+)?([A-Za-z][a-z'’\-]+(?:\s+(?:[A-Z]\.\s*)?[A-Za-z][a-z'’\-]+){0,2})",
    re.IGNORECASE)
_EN_SIGNOFF = re.compile(
    r"(?:signed|yours\s+truly|sincerely|regards|cheers|best|xoxo)\s*([,:\-]?)\s+"
    r"((?-i:(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.?\s+))?((?-i:(?:" + _EN_NAME_TOKEN + r")(?:\s+(?:[A-Z]\.\s*)?(?:" + _EN_NAME_TOKEN + r")){0,2}))",
    re.IGNORECASE)
_CONTACT_WORDS = ("ask for", "contact", "speak", "talk", "spoke", "reach out", "call", "text", "email", "e-mail",
                  "message", "dm", "write to", "helped by", "served by", "thanks to", "our ", "salesman",
                  "saleswoman", "salesperson", "agent", "rep ", "technician", "installer", "driver", "realtor",
                  "manager", "i'm", "i am", "me,")
_EN_CONTACT = re.compile(
    r"(?:ask\s+for|contact|speak\s+(?:to|with)|talk\s+to|talked\s+to|spoke\s+(?:to|with)|reach\s+out\s+to|"
    r"call|text|email|e-mail|message|dm|write\s+to|helped\s+by|served\s+by|thanks\s+to|"
    r"our\s+(?:salesman|saleswoman|salesperson|agent|rep|technician|tech|installer|driver|realtor)|"
    r"(?:salesman|saleswoman|salesperson|agent|rep|technician|installer|driver|realtor|manager)\s+named|"
    r"i'm|i\s+am|me,)"
    r"\s+((?-i:(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.?\s+))?((?-i:(?:" + _EN_NAME_TOKEN + r")(?:\s+(?:" + _EN_NAME_TOKEN + r")){0,2}))",
    re.IGNORECASE)
_THANKS_TAIL = re.compile(
    r"\s+(?:for\s+(?:the|your|his|her|their|all|such|great|fast|quick|excellent|prompt|kind|good|helping|sorting|fixing)\b|"
    r"at\s+the\s+(?:store|shop|desk|counter|front)|in\s+(?:customer|sales|support|service|the\s+store))", re.IGNORECASE)
_EN_CONTACT_TAIL = re.compile(r"^\s*(?:at|on|@|via|by\s+(?:phone|email|mail)|directly|-|:|,\s*(?:at|on)|\(|who|from|in\s+sales)", re.IGNORECASE)

_JA_NAME_CHARS = r"[一-龥々ァ-ヴーぁ-ゖ]"
_JA_LABEL = re.compile(r"(?:氏名|お名前|名前|フルネーム)\s?[:：]\s?([一-龥々ァ-ヴー]{2,8}(?:\s[一-龥々ァ-ヴー]{1,6})?)")
_JA_SELF = re.compile(
    r"(?:(?:私|わたし|僕|ぼく|俺|おれ|自分)の(?:名前|氏名|なまえ)は|(?:名前|氏名|なまえ)は|氏名[:：]|名前[:：]|フルネームは)\s?"
    r"([一-龥々ァ-ヴー]{1,8}(?:(?!です|でした|と申|とい|と言|だ|って)[ぁ-ゖ]){0,4}(?:\s[一-龥々ァ-ヴーぁ-ゖ]{1,6})?|(?:(?!です|でした|と申|とい|と言|だ|って)[ぁ-ゖ]){2,8}|[A-Za-z][a-z]+(?:\s[A-Za-z][a-z]+)?)"
    r"(?=です|でした|と申します|といいます|と言います|と申す|だ|って|[、。,.!！?？\s]|$)")
_JA_MOUSU = re.compile(r"([一-龥々ァ-ヴー]{1,6}(?:\s?[一-龥々ァ-ヴーぁ-ゖ]{1,6})?)(?:と申します|と申す者|といいます|と言います|と名乗)")
_JA_STAFF = re.compile(
    r"(?:担当(?:者)?(?:の|は|が)?|店員(?:の|さん)?|スタッフ(?:の)?|販売員(?:の)?|営業(?:の)?|配達員(?:の)?|"
    r"(?:^|[、。\s])(?:連絡先|問い合わせ先)(?:は)?)\s?([一-龥々ァ-ヴー]{1,6}(?:\s[一-龥々ァ-ヴー]{1,6})?)\s?(?=さん|様|氏|くん|君|まで|に連絡|へ連絡)")
_JA_HONORIFIC_CONTACT = re.compile(
    r"([一-龥々]{1,4}(?:\s?[一-龥々ァ-ヴーぁ-ゖ]{1,4})?|[ァ-ヴー]{2,8})(?:さん|様|氏)(?:に|まで|へ)(?:連絡|電話|メール|お問い合わせ|問い合わせ|ご連絡)")
_JA_NOT_NAME = re.compile(r"^(?:お客|皆|みな|店員|担当|スタッフ|社長|先生|お店|会社|メーカー|お母|お父|奥|旦那|息子|娘|彼|彼女|友達|家族|誰|私|僕|俺)")

_KO_SURNAMES = set("김이박최정강조윤장임한오서신권황안송류유전홍고문양손배백허남심노하곽성차주우구민진나지엄채원천방공현함변염여추도소석선설마길연위표명기반라왕금옥육인맹제모탁국어은편용예경봉사부")
_KO_SELF = re.compile(
    r"(?:((?:제|내|저의|나의|본인)\s?이름은|(?:성함|성명|이름)\s?[:：])|(?:이름|성함|성명)\s?은)\s?"
    r"([가-힣]\s?[가-힣]{1,3}|[A-Za-z][a-z]+(?:\s[A-Za-z][a-z]+)?)"
    r"(?:(?=\s?(?:입니다|이에요|예요|이예요|이고|이며|이야|이다|인데|라고|이라고|씨|님))|(?=[\s,.!?]|$))")
_KO_COPULA = re.compile(r"\s?(?:입니다|이에요|예요|이예요|이고|이며|이야|이다|인데|라고|이라고|씨|님)")
# "X(이)라고 합니다": after a greeting or "저는" a 2-3 syllable name; elsewhere only a 3-syllable name
# that does not end in 이 ("정품이라고 합니다" is "it is said to be genuine").
_KO_CALLED = re.compile(r"(?:저는|제가|전|저|안녕하세요|반갑습니다|처음 뵙겠습니다)[,.!]?\s?"
                        r"([가-힣]{2,3})(?:이?라고\s?(?:합니다|해요|하는|불러요|부릅니다|하고요)|이?라는\s?사람)")
_KO_CALLED_START = re.compile(r"(?:^|(?<=[.!?。\s]))([가-힣]{2}[가-힣](?<!이))(?:이?라고\s?(?:합니다|해요|불러요|부릅니다))")
_KO_NOUNS = frozenset("최고급 최신형 최저가 신제품 신상품 정품 한정판 기본형 조립식 전용품 고급형 보급형 국산품 수입품".split())
_KO_IAM = re.compile(r"(?<![가-힣])(?:저는|전|나는|난|안녕하세요[,.!]?|반갑습니다[,.!]?)\s([가-힣]{3})(?:입니다|이에요|예요|이고요|이라고)")
_KO_SIGNED = re.compile(r"(?<![가-힣])([가-힣]{3})\s?(?:드림|올림)(?=[\s.!~]|$)")
# The most common Korean surnames (about 90% of people): where the phrase alone is weak evidence.
_KO_COMMON_SURNAMES = set("김이박최정강조윤장임한오서신권황안송류유전홍고문양손배백허남심노하곽성차주우구민진")
_KO_STAFF = re.compile(
    r"(?:담당자|담당|매니저|기사님?|직원|상담원|상담사|판매원|점원|사장님?|설치기사)\s?(?:분\s?)?(?:(?:은|는|이|인)\s|:\s?)?"
    r"([가-힣]{2,4})\s?(?=씨|님|과장|대리|팀장|실장|부장|주임|사원|매니저|기사|선생)")
_KO_CONTACT = re.compile(r"(?<![가-힣])([가-힣]{2,4})\s?(?:씨|님)(?:에게|한테|께|께서|한테서)?\s?(?:로\s?)?(?:연락|전화|문의|문자|메일|카톡)")
_KO_NOT_NAME = re.compile(r"^(?:고객|기사|사장|선생|직원|여러분|손님|형|누나|언니|오빠|엄마|아빠|친구|남편|아내|와이프|아들|딸|"
                          r"판매자|판매|담당|상담|배송|택배|이분|그분|저분|모든|우리|당신|누구|본인|자기)")


def _trim_en_name(name: str, need_caps: bool) -> str:
    out = []
    for tok in name.split():
        if tok.lower().strip(".") in _EN_STOP or (need_caps and not tok[0].isupper()):
            break
        out.append(tok)
    return " ".join(out)


def _at_words(rx, text: str, lower: str, words) -> List:
    """Matches of ``rx`` (which starts with one of ``words``) at each word-initial occurrence of the
    words in ``lower``: far cheaper than letting the regex engine try every position."""
    found = {}
    for w in words:
        i = lower.find(w)
        while i >= 0:
            if (i == 0 or not lower[i - 1].isalnum()) and i not in found:
                m = rx.match(text, i)
                if m:
                    found[i] = m
            i = lower.find(w, i + 1)
    return [found[i] for i in sorted(found)]


def _name_spans(text: str, lower: str) -> List[Tuple[int, int]]:
    out: List[Tuple[int, int]] = []
    if "name" in lower or "call" in lower or "this is" in lower:
        for m in _at_words(_EN_SELF, text, lower, ("my name", "name", "full name", "i am called", "i'm called",
                                                   "they call", "this is")):
            label = ":" in text[m.start():m.start(2)]     # "Name: Jane Doe" (a form-like label)
            name = _trim_en_name(m.group(2), need_caps=label)
            if name:
                out.append((m.start(1) if m.group(1) else m.start(2), m.start(2) + len(name)))
    if any(w in lower for w in _SIGNOFF_WORDS):
        for m in _at_words(_EN_SIGNOFF, text, lower, _SIGNOFF_WORDS):
            # A sign-off ("Best, Anna", "Regards Tom Lee"): capitalised, not shouting; "best",
            # "love", "thanks" need the comma and are only sign-offs at the end of the text or
            # before the next sentence.
            name = _trim_en_name(m.group(3), need_caps=True)
            if not name or name.isupper():
                continue
            phrase = text[m.start():m.start(1)].lower()
            if not m.group(1) and not re.match(r"signed|yours|sincerely|regards", phrase):
                continue
            after = text[m.start(3) + len(name):]
            unambiguous = re.match(r"signed|yours|sincerely|regards", phrase)
            if re.match(r"\s+[a-z]", after):
                if not unambiguous:
                    continue
                if len(name.split()) == 3:    # "Regards, Jo Lee Worked great": the next sentence
                    name = name.rsplit(" ", 1)[0]
            elif not m.group(1) and after.strip(" .!)\n"):
                continue
            out.append((m.start(2) if m.group(2) else m.start(3), m.start(3) + len(name)))
    for m in _at_words(_EN_CONTACT, text, lower, _CONTACT_WORDS) if _HAS_UPPER_WORD.search(text) else ():
        name = _trim_en_name(m.group(2), need_caps=True)
        if not name:
            continue
        e = m.start(2) + len(name)
        phrase = m.group(0)[: m.start(1 if m.group(1) else 2) - m.start()].lower().strip()
        self_id = phrase.startswith(("i'm", "i am"))
        if phrase.startswith("thanks") and not _THANKS_TAIL.match(text, e):
            continue    # "thanks to Jane Austen and the publisher": only staff thanked for a service
        if m.group(1) is None and phrase.startswith(("call", "text", "email", "e-mail", "message", "dm", "contact",
                                                       "write", "i'm", "i am", "me,")):
            # "call Dave at …", "I'm Jane Doe from …": only with what follows a name in such phrases.
            tail = text[e:e + 24]
            if not (_EN_CONTACT_TAIL.match(tail) or (self_id and len(name.split()) >= 2
                                                      and re.match(r"^\s*(?:,|and|from|here|\.|$)", tail))):
                continue
        out.append((m.start(1) if m.group(1) else m.start(2), e))
    if not _HAS_CJK.search(text):
        return out
    if _HAS_JA.search(text):
        for rx, words in _JA_RULES:
            if any(w in text for w in words):
                for m in rx.finditer(text):
                    if not _JA_NOT_NAME.match(m.group(1)):
                        out.append(m.span(1))
    if _HAS_KO.search(text):
        for rx, words in _KO_RULES:
            if any(w in text for w in words):
                for m in rx.finditer(text):
                    if rx is _KO_SELF:
                        # "제 이름은 X" is enough when X ends the clause or has a surname; a bare
                        # "이름은 X" (a movie's line) needs "X입니다"-style copula after it.
                        name, strong = m.group(2), m.group(1)
                        copula = _KO_COPULA.match(text, m.end(2))
                        if copula or (strong and (name[0] in _KO_SURNAMES or not name[0] >= "가"
                                                  or re.match(r"\s?(?:[,.!?]|$)", text[m.end(2):]))):
                            out.append(m.span(2))
                        continue
                    name = m.group(1)
                    surnames = _KO_COMMON_SURNAMES if rx in (_KO_IAM, _KO_CALLED_START, _KO_SIGNED) else _KO_SURNAMES
                    if (name[0] in surnames and not _KO_NOT_NAME.match(name) and name not in _KO_NOUNS
                            and name[-1] not in "의을를"):
                        out.append(m.span(1))
    return out


_SIGNOFF_WORDS = ("signed", "yours", "sincerely", "regards", "cheers", "best", "xoxo")
_HAS_UPPER_WORD = re.compile(r"[A-Z][a-z]")
_HAS_JA = re.compile(r"[一-龥ぁ-ゖァ-ヺ]")
_HAS_KO = re.compile(r"[가-힣]")
_JA_RULES = ((_JA_LABEL, ("名前", "氏名", "フルネーム")), (_JA_SELF, ("名前", "氏名", "なまえ", "フルネーム")), (_JA_MOUSU, ("申", "いいます", "言います", "名乗")),
             (_JA_STAFF, ("担当", "店員", "スタッフ", "販売員", "営業", "配達員", "連絡先", "問い合わせ先")),
             (_JA_HONORIFIC_CONTACT, ("さん", "様", "氏")))
_KO_RULES = ((_KO_SELF, ("이름", "성함", "성명")), (_KO_CALLED, ("라고", "라는")), (_KO_CALLED_START, ("라고",)), (_KO_IAM, ("저는", "전 ", "나는", "난 ", "안녕하세요", "반갑습니다")), (_KO_SIGNED, ("드림", "올림")),
             (_KO_STAFF, ("담당", "매니저", "기사", "직원", "상담", "판매원", "점원", "사장")), (_KO_CONTACT, ("씨", "님")))
_HAS_CJK = re.compile(r"[가-힣一-龥ぁ-ゖァ-ヴ]")
_AT_WORDS = ("at", "골뱅이", "엣", "앳", "アット", "あっと")
_POSTAL_WORDS = ("zip", "postal", "postcode", "post code", "우편", "郵便", "〒")
_PASSPORT_WORDS = ("passport", "passeport", "pass no", "여권", "旅券", "パスポート", "护照", "護照")
_HAS_KANJI = re.compile(r"[一-龥]")


def strip_invisible(text: str) -> str:
    """Text without zero-width characters (what detection and redaction work on)."""
    return _INVISIBLE.sub("", text)


class PublicContacts(NamedTuple):
    """The store's own public phone numbers and email addresses (``--public_contacts``): not
    personal data, so a complaint that quotes them ("I called 1-800-555-0199 five times") keeps
    them. Phones are given with their country code (+1 800 555 0199) and match a number in a
    review only when that number, read in the review's region (from its language; a number without
    a "+" in a review whose language has no region here is not matched), is the same E.164 number: a Korean customer's 031-234-5678
    is not the Tokyo line 03-1234-5678, though the digits are the same. Emails match exactly,
    ignoring case. Everything else is redacted as before."""

    phones: frozenset = frozenset()
    emails: frozenset = frozenset()

    @classmethod
    def parse(cls, values: Iterable[str]) -> "PublicContacts":
        phones, emails = set(), set()
        for value in values:
            value = value.strip()
            if not value:
                continue
            if "@" in value:
                emails.add(value.lower())
                continue
            try:
                number = phonenumbers.parse(value, None)
            except phonenumbers.NumberParseException:
                number = None
            if number is None or re.search(r"[A-Za-z]", value) or not phonenumbers.is_possible_number(number):
                raise ValueError(f"public contact {value!r} is neither an email address nor a phone number "
                                 "with its country code (e.g. +1 800 555 0199, +82 1588 1234)")
            phones.add(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
        return cls(frozenset(phones), frozenset(emails))

    def covers(self, found: str, kind: str, language: Optional[str] = None) -> bool:
        if kind == "email":
            return found.strip().lower() in self.emails
        if kind == "phone" and self.phones:
            region = _REGION.get(language.split("-")[0].lower()) if language else None
            return any(e in self.phones for e in _e164(found, (region,) if region else ()))
        return False


def _e164(number: str, regions: Tuple[str, ...]) -> List[str]:
    """The E.164 forms of ``number`` read in ``regions`` (possible readings only). A number with its
    own "+" country code reads the same everywhere; without one, and without a region (a review in
    a language with no region here, or none), it is read nowhere: the same digits are a private
    number in some other country (helper round 3: Gothenburg's 031 in a Swedish review)."""
    if number.lstrip().startswith("+"):
        regions = (None,)
    out = []
    for region in regions:
        try:
            parsed = phonenumbers.parse(number, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(parsed):
            out.append(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))
    return out


def find_personal_data(text: str, language: Optional[str] = None) -> List[Tuple[int, int, str]]:
    """Spans (start, end, kind) of personal data in ``text``, non-overlapping, in order.

    Offsets refer to ``text`` as given; call :func:`strip_invisible` first if it may hold
    zero-width characters (``redact`` does)."""
    found: List[Tuple[int, int, str]] = []
    n_digits = sum(map(str.isdigit, text))
    lower = text.lower()
    if len(lower) != len(text):  # "İ" lower-cases to two characters: keep offsets aligned
        lower = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
    if "://" in text or "www." in lower:
        found += [(s, e, "url_token") for s, e, _ in _url_spans(text)]
    if "@" in text or "＠" in text or any(w in lower for w in _AT_WORDS):
        found += [(s, e, "email") for s, e in _email_spans(text, lower)]
    if n_digits >= 6:
        found += _id_spans(text, lower, n_digits)
    if n_digits >= 13:
        found += [(s, e, "payment_card") for s, e in _card_spans(text)]
    if n_digits >= _MIN_PHONE_DIGITS:
        found += [(s, e, "phone") for s, e in _phone_spans(text, language)]
    if n_digits:
        found += [(s, e, "street_address") for s, e in _address_spans(text, lower, n_digits)]
    found += [(s, e, "person_name") for s, e in _name_spans(text, lower)]
    if not found:
        return []
    # The more specific detector wins an overlap, then the longer span.
    found.sort(key=lambda s: (_PRIORITY[s[2]], -(s[1] - s[0]), s[0]))
    taken: List[Tuple[int, int, str]] = []
    for span in found:
        if span[1] <= span[0] or any(span[0] < t[1] and t[0] < span[1] for t in taken):
            continue
        taken.append(span)
    taken.sort()
    return taken


def _address_spans(text: str, lower: str, n_digits: int) -> List[Tuple[int, int]]:
    out: List[Tuple[int, int]] = []
    if _HAS_UPPER_WORD.search(text):
        out += [m.span() for m in _US_STREET.finditer(text)]
        if "box" in lower or "postfach" in lower:
            out += [m.span() for m in _PO_BOX.finditer(text)]
        if n_digits >= 5 and ", " in text:
            out += [m.span() for m in _CITY_ZIP.finditer(text)]
        out += [m.span() for m in _UK_POSTCODE.finditer(text)]
    if any(w in lower for w in _POSTAL_WORDS):
        out += [m.span(1) for m in _POSTAL_CONTEXT.finditer(text)]
    if "〒" in text:
        out += [m.span() for m in _JA_POSTAL.finditer(text)]
    if _HAS_KO.search(text):
        for rx in (_KO_ROAD, _KO_LOT, _KO_APT):
            for m in rx.finditer(text):
                if _KO_RELATIVE_WORDS.match(m.group()) and not re.search(r"(?:시|군|구)\s", m.group()):
                    continue
                if _money_or_quantity(text, m.start(), m.end()):
                    continue
                out.append(m.span())
        if "사서함" in text:
            out += [m.span() for m in _PO_BOX.finditer(text) if "사서함" in m.group()]
    if "私書箱" in text:
        out += [m.span() for m in _PO_BOX.finditer(text) if "私書箱" in m.group()]
    if _HAS_KANJI.search(text):
        for m in _JA_ADDRESS.finditer(text):
            if _JA_BAD_MUNI.match(m.group()):
                continue
            out.append(m.span())
    return out


def redact(text: str, language: Optional[str] = None,
           public: Optional[PublicContacts] = None) -> Tuple[str, Dict[str, int]]:
    """Replaces personal data with markers; returns the new text and counts per kind. The store's
    own ``public`` contacts are kept.

    >>> redact("Mail me at jo@example.com or call (415) 555-2671.")
    ('Mail me at [email removed] or call [phone removed].', {'email': 1, 'phone': 1})
    """
    if _INVISIBLE.search(text):
        text = _INVISIBLE.sub("", text)
    spans = find_personal_data(text, language)
    if spans and public:
        spans = [sp for sp in spans if not public.covers(text[sp[0]:sp[1]], sp[2], language)]
    if not spans:
        return text, {}
    parts, pos = [], 0
    url_tails = {(s, e): keep for s, e, keep in _url_spans(text)} if any(k == "url_token" for *_, k in spans) else {}
    for start, end, kind in spans:
        parts.append(text[pos:start])
        if kind == "url_token":
            keep = url_tails.get((start, end), "")
            parts.append(keep + MARKERS[kind])
        else:
            parts.append(MARKERS[kind])
        pos = end
    parts.append(text[pos:])
    return "".join(parts), dict(Counter(kind for _, _, kind in spans))


def version() -> str:
    from importlib.metadata import version as _v
    return f"phonenumbers-{_v('phonenumbers')}+stdnum-{_v('python-stdnum')}+patterns-3"
