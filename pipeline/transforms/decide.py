"""Decide stage: the policy turns an item's sentiment-neutral signals into a decision and reasons."""
from __future__ import annotations

from typing import NamedTuple

import apache_beam as beam

from pipeline.policy import DEFAULT_POLICY, Outcome
from pipeline.transforms.common import safe_map
from pipeline.transforms.parse import utc_now
from schemas.records import Item

STAGE = "decide"


class Decided(NamedTuple):
    item: Item
    outcome: Outcome
    decided_at: str


class Decide(beam.PTransform):
    """PCollection[Item] → (PCollection[Decided], dead letters)."""

    def __init__(self, run_id: str, policy=DEFAULT_POLICY):
        super().__init__()
        self._run_id = run_id
        self._policy = policy

    def expand(self, items):
        policy = self._policy
        return safe_map(items, "ApplyPolicy", lambda it: Decided(it, policy.decide(it), utc_now()),
                        STAGE, self._run_id)
