"""Settings of near-duplicate detection, validated once; LSH bands and rows derived from them."""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Dict, Optional, Tuple

from pipeline.dedup import shingles as sh
from pipeline.dedup.signatures import lsh_params


@dataclass(frozen=True)
class DedupConfig:
    """Near-duplicate detection settings.

    The short-text rule (docs/dedup.md has the measurements behind the defaults): similarity is
    evidence only when both texts have at least ``min_shingles`` distinct shingles for their script
    family; and a short text (at most ``common_max_shingles`` shingles) shared by at least
    ``common_min_authors`` authors across at least ``common_min_products`` products, spread so that
    products ≥ ``common_spread`` × authors, is a *common phrase* ("Great product, fast shipping"),
    written independently by real people, not a campaign.
    """

    num_perm: int = 128
    threshold: float = 0.8
    seed: int = 1
    word_ngram: int = sh.WORD_NGRAM
    cjk_ngram: Dict[str, int] = field(default_factory=lambda: dict(sh.CJK_NGRAM))
    min_shingles: Dict[str, int] = field(default_factory=lambda: {"words": 6, "ko": 10, "ja": 10, "zh": 8})
    common_max_shingles: Dict[str, int] = field(default_factory=lambda: {"words": 15, "ko": 25, "ja": 25, "zh": 20})
    common_min_authors: int = 5
    common_min_products: int = 5
    common_spread: float = 0.5
    # Buckets up to this size compare every pair; larger ones compare each member with at most
    # ``max_leaders`` earlier members (the bucket's leaders), so work per bucket stays linear.
    lsh_weights: Tuple[float, float] = (0.05, 0.95)  # false-positive, false-negative weights
    all_pairs_bucket: int = 64
    max_leaders: int = 16
    signature_store: Optional[str] = None
    retention_days: int = 90

    def __post_init__(self):
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"dedup threshold must be between 0 and 1, got {self.threshold}")
        if self.num_perm < 16 or self.num_perm > 1024:
            raise ValueError(f"num_perm must be between 16 and 1024, got {self.num_perm}")
        if self.retention_days < 1:
            raise ValueError("retention_days must be at least 1")

    def signer(self):
        """A :class:`~pipeline.dedup.signatures.Signer` for these settings."""
        from pipeline.dedup.signatures import Signer
        return Signer(self.num_perm, self.seed, self.threshold, self.lsh_weights)

    @property
    def bands_rows(self):
        return lsh_params(self.threshold, self.num_perm, *self.lsh_weights)

    @property
    def version(self) -> str:
        bands, rows = self.bands_rows
        return (f"minhash-datasketch{version('datasketch')}-p{self.num_perm}-t{self.threshold}-b{bands}r{rows}"
                f"-w{self.word_ngram}c{self.cjk_ngram.get('ko', 2)}-v2")
