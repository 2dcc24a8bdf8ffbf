"""Paths, datasets and seeds shared by training, evaluation and benchmarks of the classifier.

The labelled datasets live beside the repository in ``../shared/datasets`` (never copied into it:
two of them carry non-commercial or unclear licences). Embedding caches go to ``.cache/``
(git-ignored).
"""
from __future__ import annotations

import csv
import os
import random
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
CACHE = ROOT / ".cache" / "classifier"
ARTIFACTS = ROOT / "pipeline" / "classifier" / "artifacts"  # what the pipeline serves
FAKE_REVIEWS = DATASETS / "fake-reviews-8k.csv"
OTT = DATASETS / "ott-deceptive-opinion-16hotels.csv"
SEED = 20251125


def seed_everything(seed: int = SEED) -> None:
    random.seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    try:
        import numpy as np
        np.random.seed(seed)
    except ImportError:  # pragma: no cover
        pass
    try:
        import torch
        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover
        pass


def read_csv(path: Path) -> List[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


# How a CSV written by pandas spells a missing cell. MAiDE-up's shared file holds the literal "nan" in
# 454 text parts, every one of a generated review (real reviews' missing parts are empty), so a model
# that read it would learn "nan" = generated: a label leak no store's text has.
MISSING_TEXT = frozenset({"", "nan"})


def joined_text(parts) -> str:
    """Review text from several columns (MAiDE-up's positive and negative text): joined by a newline,
    missing parts (:data:`MISSING_TEXT`, after stripping) left out."""
    return "\n".join(p for p in parts if p and p.strip().lower() not in MISSING_TEXT)


def fake_reviews() -> List[dict]:
    """Rows of fake-reviews-8k.csv with ``text``, ``y`` (1 = computer-generated) and ``split``."""
    return [{"text": r["text_"], "y": int(r["label"] == "CG"), "split": r["orig_split"]}
            for r in read_csv(FAKE_REVIEWS)]


def ott() -> List[dict]:
    """Rows of the Ott corpus with ``text``, ``y`` (1 = deceptive), ``hotel`` and ``polarity``."""
    return [{"text": r["text"], "y": int(r["deceptive"] == "deceptive"), "hotel": r["hotel"],
             "polarity": r["polarity"], "source": r["source"]} for r in read_csv(OTT)]


def ott_hotel_folds(rows: List[dict], k: int = 4) -> List[int]:
    """Fold index per row: the 16 hotels in sorted order go round-robin into k folds (4 hotels each)."""
    hotels = sorted({r["hotel"] for r in rows})
    fold_of = {h: i % k for i, h in enumerate(hotels)}
    return [fold_of[r["hotel"]] for r in rows]
