"""Detection stage: the seam where the fake-review detectors plug in.

Two detectors are planned: near-duplicate detection with MinHash (``near_duplicate``) and a
transformer classifier (``fake_classifier``). Until they land, this stage records each as
``not_run``: a decision record never claims a check that did not happen.
"""
from __future__ import annotations

import apache_beam as beam

from schemas.records import Item, Signal

DETECTORS = ("near_duplicate", "fake_classifier")
NOT_RUN_NOTE = "detector not yet part of this pipeline version"


def mark_not_run(item: Item) -> Item:
    signals = dict(item.signals)
    for detector in DETECTORS:
        signals.setdefault(detector, Signal(status="not_run", version=None, note=NOT_RUN_NOTE))
    return item.replace(signals=signals)


class DetectFakes(beam.PTransform):
    """PCollection[Item] → PCollection[Item] with one signal per detector."""

    def expand(self, items):
        return items | "MarkDetectorsNotRun" >> beam.Map(mark_not_run)
