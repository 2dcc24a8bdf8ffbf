"""Corpora with injected near-duplicates, for measuring shingling and for `make bench-dedup`.

Reads ../shared/datasets (never copied into the repo): English from fake-reviews-8k.csv (text
only, evaluation use), Korean from the NSMC reviews. Copies are made with 1–5% of the words
(English) or characters (Korean) swapped, deleted, inserted, re-cased or re-punctuated, so the
ground truth is known.
"""
from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import List, Tuple

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
PUNCT = list(".,!?;:~")


def load_english(limit: int | None = None) -> List[str]:
    with (DATASETS / "fake-reviews-8k.csv").open(encoding="utf-8") as handle:
        texts = [row["text_"] for row in csv.DictReader(handle)]
    return texts[:limit] if limit else texts


def load_korean(limit: int | None = None) -> List[dict]:
    with (DATASETS / "nsmc-ko-reviews-bucket0.tsv").open(encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE) if r["review"].strip()]
    return rows[:limit] if limit else rows


def edit_words(text: str, rate: float, rng: random.Random, vocab: List[str]) -> str:
    words = text.split()
    for _ in range(max(1, round(len(words) * rate))):
        if not words:
            break
        i = rng.randrange(len(words))
        op = rng.choice(["swap", "delete", "insert", "recase", "repunct"])
        if op == "swap":
            words[i] = rng.choice(vocab)
        elif op == "delete" and len(words) > 1:
            words.pop(i)
        elif op == "insert":
            words.insert(i, rng.choice(vocab))
        elif op == "recase":
            words[i] = words[i].upper() if rng.random() < 0.5 else words[i].title()
        else:
            words[i] = words[i].rstrip("".join(PUNCT)) + rng.choice(PUNCT)
    return " ".join(words)


def edit_chars(text: str, rate: float, rng: random.Random, alphabet: str) -> str:
    chars = list(text)
    for _ in range(max(1, round(len(chars) * rate))):
        if not chars:
            break
        i = rng.randrange(len(chars))
        op = rng.choice(["swap", "delete", "insert", "space", "repunct"])
        if op == "swap":
            chars[i] = rng.choice(alphabet)
        elif op == "delete" and len(chars) > 1:
            chars.pop(i)
        elif op == "insert":
            chars.insert(i, rng.choice(alphabet))
        elif op == "space":
            chars.insert(i, " ")
        else:
            chars.insert(i, rng.choice(PUNCT))
    return "".join(chars)


def inject(texts: List[str], lang: str, n_copies: int, rng: random.Random,
           min_len: int) -> Tuple[List[str], List[Tuple[int, int]]]:
    """Appends ``n_copies`` edited copies of long-enough texts; returns (all texts, (orig, copy) pairs)."""
    out = list(texts)
    pairs = []
    candidates = [i for i, t in enumerate(texts) if (len(t.split()) if lang == "en" else len(t)) >= min_len]
    vocab = [w for t in texts[:2000] for w in t.split()][:20000]
    alphabet = "".join(sorted({ch for t in texts[:2000] for ch in t if ch.isalpha()}))
    for i in rng.sample(candidates, min(n_copies, len(candidates))):
        rate = rng.uniform(0.01, 0.05)
        copy = edit_words(texts[i], rate, rng, vocab) if lang == "en" else edit_chars(texts[i], rate, rng, alphabet)
        pairs.append((i, len(out)))
        out.append(copy)
    return out, pairs


def jaccard(a, b) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)
