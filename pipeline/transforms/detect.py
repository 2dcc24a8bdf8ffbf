"""Detection stage: the fake-review detectors, each recording a signal per review.

* ``near_duplicate``: MinHash near-duplicate detection (pipeline/transforms/dedup.py).
* ``fake_classifier``: the transformer classifier (pipeline/transforms/classify.py, models/),
  scored for the languages it was evaluated on, ``not_applicable`` for others.
* ``coordinated_group``, ``author_velocity``, ``product_burst``: behavioural detectors that never
  see the rating or the text (pipeline/transforms/behaviour.py, pipeline/behaviour/; streaming:
  pipeline/transforms/behaviour_stream.py, stateful by product and by author with timers).

A detector that did not run says so: a decision record never claims a check that did not happen.
"""
from __future__ import annotations

from typing import Optional

import apache_beam as beam

from pipeline.behaviour.config import BehaviourConfig
from pipeline.dedup.config import DedupConfig
from schemas.records import Item, Signal

BEHAVIOUR_DETECTORS = ("coordinated_group", "author_velocity", "product_burst")
DETECTORS = ("near_duplicate", "fake_classifier") + BEHAVIOUR_DETECTORS
NOT_RUN_NOTE = "detector not part of this run"


def mark_not_run(item: Item) -> Item:
    signals = dict(item.signals)
    for detector in DETECTORS:
        signals.setdefault(detector, Signal(status="not_run", version=None, note=NOT_RUN_NOTE))
    return item.replace(signals=signals)


class DetectFakes(beam.PTransform):
    """PCollection[Item] → (PCollection[Item] with one signal per detector, this run's fingerprints,
    product alerts or None).

    ``dedup=None`` switches near-duplicate detection off (recorded as not_run); ``stored`` is the
    signature store's fingerprints from earlier runs (or None); ``behaviour=None`` switches the
    behavioural detectors off (not_run).
    """

    def __init__(self, dedup: Optional[DedupConfig] = None, stored=None, streaming: bool = False,
                 classifier: Optional[str] = None, run_id: str = "", classifier_threads: int = 1,
                 behaviour: Optional[BehaviourConfig] = None):
        super().__init__()
        self._behaviour = behaviour
        self._dedup = dedup
        self._stored = stored
        self._streaming = streaming  # stateful band buckets with retention (pipeline/stream.py)
        self._classifier = classifier  # model directory (local or gs://); None: not run
        self._classifier_threads = classifier_threads
        self._run_id = run_id

    def expand(self, items):
        fingerprints = None
        if self._dedup is not None and self._streaming:
            from pipeline.transforms.dedup_stream import StreamingNearDuplicates
            items = items | "NearDuplicates" >> StreamingNearDuplicates(self._dedup)
        elif self._dedup is not None:
            from pipeline.transforms.dedup import DetectNearDuplicates
            items, fingerprints = items | "NearDuplicates" >> DetectNearDuplicates(self._dedup, self._stored)
        if self._classifier is not None:
            from pipeline.transforms.classify import ClassifyReviews
            items = items | "FakeClassifier" >> ClassifyReviews(
                self._classifier or None, threads=self._classifier_threads, run_id=self._run_id)
        alerts = None
        if self._behaviour is not None and self._streaming:
            from pipeline.transforms.behaviour_stream import StreamingBehaviour
            items, alerts = items | "Behaviour" >> StreamingBehaviour(self._behaviour)
        elif self._behaviour is not None:
            from pipeline.transforms.behaviour import DetectBehaviour
            items, alerts = items | "Behaviour" >> DetectBehaviour(self._behaviour, self._stored)
        return items | "MarkDetectorsNotRun" >> beam.Map(mark_not_run), fingerprints, alerts
