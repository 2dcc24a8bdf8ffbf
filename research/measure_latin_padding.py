"""Probe (issue #22): an English review padded with real reviews in another language, so that the
whole text reads as that language. Does the classifier still meet the English review?

    python -m research.measure_latin_padding [--n 200] [--languages es,fr,de,it,zh]

For each padding language: 200 computer-generated (CG) and 200 human-written (OR) fake-reviews test
reviews, each followed by real MAiDE-up reviews of that language (label ``real``, taken in order)
until the padding is at least 1.5× the review's length. The language is what the pipeline's
language id says of the whole text (declared as the padding language, as an attacker would); the
text scored and whether the classifier applies follow ``pipeline.transforms.classify``'s rule
(``_Applicability.element``: the text, and for another served language its English sentences too).
Prints, per language, the share flagged at ``lower``/``upper`` plain and padded, and how many
padded texts the classifier did not speak for. Measurement only: nothing here is tuned on.

``--form short``: the English review is first cut into two-word sentences ("Great product. Works
perfectly."), too short for language id alone, then padded (``--words 1``: one-word sentences).
``--form interleaved``: each piece stands between two sentences of the padding. ``--real``: also the real MAiDE-up reviews of
each padding language, unpadded, as the pipeline scores them (what the rule costs honest reviews).
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from models import common
from models.multilingual import maide
from pipeline.classifier import runtime
from pipeline.text.langid import _SENTENCE_END, reconcile
from pipeline.transforms.classify import _Applicability


class _Item:  # what _Applicability reads of an item
    def __init__(self, text, language):
        self.clean_body, self.language = text, language
        self.review = None


def two_word_sentences(text: str, size: int = 2):
    """The text cut into sentences of ``size`` words ("Great product. Works perfectly.")."""
    words = [w.strip(".,!?;:") for w in text.split()]
    words = [w for w in words if w]
    return [" ".join(words[i:i + size]).capitalize() + "." for i in range(0, len(words), size)]


def _pad(english: str, pad, form: str, size: int = 2) -> str:
    if form == "whole":
        return english + "\n" + "\n".join(pad)
    pieces = two_word_sentences(english, size)
    if form == "short":
        return " ".join(pieces) + "\n" + "\n".join(pad)
    padding = [s for s in _SENTENCE_END.split(" ".join(pad)) if s.strip()]
    out = []
    for i in range(max(len(pieces), len(padding))):
        out += pieces[i:i + 1] + padding[i:i + 1]
    return " ".join(out)


def _score_real(clf, rule, texts, lang):
    """Real reviews of ``lang`` as the pipeline scores them: shares at or above each threshold."""
    items = [_Item(t, reconcile(lang, t)[0]) for t in texts]
    idx = [i for i, item in enumerate(items) if rule.reason(item) is None]
    elements = [rule.element(items[i]) for i in idx]
    p = np.zeros(len(texts))
    if idx:
        p[idx] = clf.predict_proba([e if isinstance(e, str) else e[0] for e in elements],
                                   english_parts=[None if isinstance(e, str) else e[1] for e in elements])
    return {"n": len(texts), "scored": len(idx), "with_english_part": sum(not isinstance(e, str) for e in elements),
            "lower": round(float(np.mean(p >= clf.thresholds["lower"])), 4),
            "upper": round(float(np.mean(p >= clf.thresholds["upper"])), 4)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--languages", default="es,fr,de,it,zh")
    ap.add_argument("--form", choices=("whole", "short", "interleaved"), default="whole")
    ap.add_argument("--real", action="store_true")
    ap.add_argument("--words", type=int, default=2, help="words per sentence of the cut (--form short|interleaved)")
    ap.add_argument("--classifier_model", default=None, help="another artifact folder (default: the served one)")
    args = ap.parse_args(argv)
    clf = runtime.load(args.classifier_model)
    rule = _Applicability(clf.languages, clf.min_length)
    lower, upper = clf.thresholds["lower"], clf.thresholds["upper"]
    test = [r for r in common.fake_reviews() if r["split"] == "test"]
    rng = np.random.default_rng(0)
    sets = {}
    for y, name in ((1, "CG"), (0, "OR")):
        rows = [r["text"] for r in test if r["y"] == y and len(r["text"].split()) >= 10]
        sets[name] = [rows[i] for i in rng.choice(len(rows), args.n, replace=False)]
    m = maide()
    out = {}
    for name, texts in sets.items():
        p = clf.predict_proba(texts)
        out[f"{name} plain"] = {"lower": round(float(np.mean(p >= lower)), 3), "upper": round(float(np.mean(p >= upper)), 3)}
        if args.form != "whole":   # the cut alone changes the text: its own unpadded figure
            p = clf.predict_proba([" ".join(two_word_sentences(t, args.words)) for t in texts])
            out[f"{name} {args.form} unpadded"] = {"lower": round(float(np.mean(p >= lower)), 3),
                                                  "upper": round(float(np.mean(p >= upper)), 3)}
    for lang in args.languages.split(","):
        pool = list(m.texts[(m.language == lang) & (m.y == 0)])
        k = 0
        for name, texts in sets.items():
            padded, languages = [], []
            for t in texts:
                pad = []
                while sum(len(x) for x in pad) < 1.5 * len(t):
                    pad.append(pool[k % len(pool)]); k += 1
                text = _pad(t, pad, args.form, args.words)
                padded.append(text)
                languages.append(reconcile(lang, text)[0])
            scored, speaks = [], []
            for text, language in zip(padded, languages):
                item = _Item(text, language)
                ok = rule.reason(item) is None
                speaks.append(ok)
                scored.append(rule.element(item) if ok else None)   # what the handler is given
            p = np.zeros(len(padded))
            idx = [i for i, ok in enumerate(speaks) if ok]
            if idx:
                elements = [scored[i] for i in idx]
                p[idx] = clf.predict_proba([e if isinstance(e, str) else e[0] for e in elements],
                                           english_parts=[None if isinstance(e, str) else e[1] for e in elements])
            out[f"{name} {args.form} + {lang}"] = {"lower": round(float(np.mean(p >= lower)), 3),
                                       "upper": round(float(np.mean(p >= upper)), 3),
                                       "not_applicable": len(padded) - len(idx),
                                       "language": dict(zip(*np.unique(languages, return_counts=True)))}
        if args.real:
            out[f"real {lang}"] = _score_real(clf, rule, list(m.texts[(m.language == lang) & (m.y == 0)]), lang)
    print(json.dumps(out, indent=1, default=int))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
