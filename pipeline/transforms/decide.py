"""Decide stage: the policy turns an item's sentiment-neutral signals into a decision and reasons."""
from __future__ import annotations

from typing import NamedTuple

import apache_beam as beam

from pipeline.policy import DEFAULT_POLICY, Outcome, apply_override, override_for
from pipeline.transforms.common import safe_map
from pipeline.timestamps import utc_now
from schemas.records import Item

STAGE = "decide"


class Decided(NamedTuple):
    item: Item
    outcome: Outcome
    decided_at: str


class Decide(beam.PTransform):
    """PCollection[Item] → (PCollection[Decided], dead letters)."""

    def __init__(self, run_id: str, policy=DEFAULT_POLICY, overrides=None):
        super().__init__()
        self._run_id = run_id
        self._policy = policy
        self._overrides = dict(overrides or {})

    def expand(self, items):
        policy, overrides = self._policy, self._overrides

        def decide(it: Item) -> Decided:
            outcome = apply_override(policy.decide(it), override_for(overrides, it.review))
            return Decided(it, outcome, utc_now())

        return safe_map(items, "ApplyPolicy", decide, STAGE, self._run_id)
