"""Issue #20 acceptance: sentiment twins. The same facts written as praise and as a complaint, with
opposite ratings, get the same decision and the same reasons: rating and sentiment are never
grounds to withhold, and the detectors (the classifier included, where it speaks) must not turn
polarity into a ground either. Run through the pipeline's own functions, each review on its own.
"""
from __future__ import annotations

import json

import pytest

from pipeline.classifier import runtime
from pipeline.policy import DEFAULT_POLICY
from pipeline.transforms.classify import DETECTOR
from pipeline.transforms.detect import mark_not_run
from pipeline.transforms.normalize import normalize_item
from pipeline.transforms.parse import parse_line
from schemas.records import InputRef, Item, RawLine, Signal

FACTS_EN = [
    ("The kettle arrived on Tuesday, boils 1.7 litres in about four minutes and clicks off by itself.",
     "I love it and would buy it again.", "I hate it and would never buy it again."),
    ("We stayed three nights in a room on the fifth floor facing the train station.",
     "It was wonderful and the staff were lovely.", "It was awful and the staff were rude."),
    ("The blender has a 1,200 watt motor, a glass jar and three speed settings.",
     "Smoothies come out perfectly smooth, great purchase.", "Smoothies come out lumpy, terrible purchase."),
    ("These headphones pair over Bluetooth 5.3 and the battery lasts about thirty hours.",
     "Sound is clear and rich, very happy.", "Sound is muddy and thin, very disappointed."),
    ("The delivery took six days and the box was left at the front door.",
     "Everything was packed carefully and arrived perfect.", "Everything was packed carelessly and arrived broken."),
    ("The vacuum weighs 2.5 kilograms and the dust bin holds about half a litre.",
     "It picks up pet hair brilliantly.", "It leaves pet hair everywhere, useless."),
    ("This novel is 412 pages long and follows a family across three generations in Lisbon.",
     "Beautifully written, I could not put it down.", "Badly written, I could not finish it."),
    ("The running shoes are a size 10 with a 8 mm drop and a breathable mesh upper.",
     "They are comfortable from the first run.", "They gave me blisters from the first run."),
    ("The restaurant serves a seven course tasting menu on weekday evenings only.",
     "Every dish was delicious and worth the price.", "Every dish was bland and not worth the price."),
    ("The phone case is made of silicone and covers the camera bump and all the buttons.",
     "It fits snugly and protects well.", "It fits loosely and protects nothing."),
    ("The air fryer has a 5 litre basket, a digital timer and goes up to 200 degrees.",
     "Chips come out crisp every time.", "Chips come out soggy every time."),
    ("The office chair has adjustable armrests, lumbar support and a mesh back.",
     "My back pain is gone after a month of use.", "My back pain is worse after a month of use."),
    ("The tent sleeps four people, weighs 4 kilograms and has two doors.",
     "It stayed dry through a night of heavy rain.", "It leaked through a night of heavy rain."),
    ("The coffee grinder has 40 grind settings and a 250 gram bean hopper.",
     "The grind is even and the espresso tastes great.", "The grind is uneven and the espresso tastes sour."),
    ("The hotel breakfast runs from seven to ten with hot dishes, fruit and pastries.",
     "A lovely start to each day.", "A miserable start to each day."),
]
FACTS_KO = [
    ("배송은 이틀 걸렸고 상자 안에 설명서와 충전기가 들어 있었어요.", "정말 만족합니다.", "정말 실망했습니다."),
    ("영화는 두 시간 십 분이고 주인공은 형사 역할을 맡았어요.", "연기가 훌륭했어요.", "연기가 형편없었어요."),
    ("이 식당은 점심에만 비빔밥을 팔고 반찬이 다섯 가지 나와요.", "맛있어서 또 갈 거예요.", "맛없어서 다시는 안 가요."),
    ("청소기는 무게가 이 킬로그램이고 배터리는 사십 분 갑니다.", "흡입력이 좋아요.", "흡입력이 약해요."),
    ("호텔 방은 십 층이었고 창밖으로 바다가 보였어요.", "최고의 여행이었어요.", "최악의 여행이었어요."),
]
FACTS_JA = [
    ("注文から三日で届き、箱には説明書と電源コードが入っていました。", "とても満足しています。", "とても不満です。"),
    ("このホテルは駅から徒歩五分で、朝食は七時から始まります。", "また泊まりたいです。", "二度と泊まりません。"),
    ("掃除機の重さは二キロで、バッテリーは四十分もちます。", "吸引力が強くて便利です。", "吸引力が弱くて不便です。"),
    ("この本は三百ページほどで、京都の家族の話です。", "感動しました。", "退屈でした。"),
    ("イヤホンはBluetoothで接続し、充電は一時間で終わります。", "音がきれいです。", "音がひどいです。"),
]
TWINS = [(lang, f"{facts} {good}", f"{facts} {bad}") for lang, pool in (("en", FACTS_EN), ("ko", FACTS_KO), ("ja", FACTS_JA))
         for facts, good, bad in pool]


@pytest.fixture(scope="module")
def classifier():
    return runtime.load()


def decide(body: str, rating: int, lang: str, review_id: str, clf):
    obj = {"review_id": review_id, "product_id": "p", "author_id": review_id, "rating": rating, "body": body,
           "created_at": "2026-11-25T12:00:00Z", "language": lang}
    item = parse_line(RawLine(ref=InputRef("twins.jsonl", 1), data=json.dumps(obj).encode()),
                      run_id="twins", ingested_at="2026-11-25T12:00:01Z")
    assert isinstance(item, Item), item
    item = normalize_item(item)
    text = item.clean_body or ""
    reason = runtime.not_applicable_reason(text, item.language, clf.languages, clf.min_length)
    if reason is None:
        p = float(clf.predict_proba([text])[0])
        signal = Signal("scored", clf.version, {"probability": round(p, 6), "band": clf.band(p),
                                                "thresholds": dict(clf.thresholds)})
    else:
        signal = Signal("not_applicable", clf.version, note=reason)
    item = mark_not_run(item.replace(signals={**item.signals, DETECTOR: signal}))
    outcome = DEFAULT_POLICY.decide(item)
    return outcome.decision, outcome.reasons, signal


def test_at_least_25_twins_in_three_languages():
    assert len(TWINS) >= 25 and {lang for lang, _, _ in TWINS} == {"en", "ko", "ja"}


@pytest.mark.parametrize("lang, praise, complaint", TWINS, ids=[f"{t[0]}-{i}" for i, t in enumerate(TWINS)])
def test_praise_and_complaint_with_the_same_facts_get_the_same_decision(classifier, lang, praise, complaint):
    d1, r1, s1 = decide(praise, 5, lang, "praise", classifier)
    d2, r2, s2 = decide(complaint, 1, lang, "complaint", classifier)
    assert (d1, r1) == (d2, r2), (s1.values, s2.values)
    assert s1.status == s2.status
