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
from schemas.records import Item, Signal, pack, unpack

BEHAVIOUR_DETECTORS = ("coordinated_group", "author_velocity", "product_burst")
DETECTORS = ("near_duplicate", "fake_classifier") + BEHAVIOUR_DETECTORS
NOT_RUN_NOTE = "detector not part of this run"


def mark_not_run(item: Item) -> Item:
    signals = dict(item.signals)
    for detector in DETECTORS:
        signals.setdefault(detector, Signal(status="not_run", version=None, note=NOT_RUN_NOTE))
    return item.replace(signals=signals)


ITEM = "item"


class _AttachSignalsFn(beam.DoFn):
    """(review_id, packed item and packed signals) → the item with every detector's signal.

    A detector that ran but has no signal for the review records ``not_run`` with its own note
    (``near_duplicate``: no fingerprint; behavioural: not covered by the analysis)."""

    def __init__(self, missing):
        self._missing = missing  # {signal group: {detector: Signal}} for a review a detector did not cover

    def process(self, keyed):
        _, packed = keyed
        items, found = [], {}
        for data in packed:
            tag, value = unpack(data)
            if tag == ITEM:
                items.append(value)
            else:
                found.setdefault(tag, value)  # one signal (group) per review and detector
        for item in items:
            signals = dict(item.signals)
            for group, missing in self._missing.items():
                signals.update(found.get(group, missing))
            yield item.replace(signals=signals)


def _packed(tag: str):
    def pack_value(kv):
        return kv[0], pack((tag, kv[1]))
    return pack_value


class DetectFakes(beam.PTransform):
    """PCollection[Item] → (PCollection[Item] with one signal per detector, this run's fingerprints,
    product alerts or None).

    ``dedup=None`` switches near-duplicate detection off (recorded as not_run); ``stored`` is the
    signature store's fingerprints from earlier runs (or None); ``behaviour=None`` switches the
    behavioural detectors off (not_run).

    Batch: each detector works on its own projection of the items (fingerprints, (review_id, text),
    behavioural events) and yields (review_id, signal); one grouping by review_id then joins every
    signal to the items, pickled (``schemas.records.pack``) so the DirectRunner holds one bytes
    object a value. Streaming: the stateful detectors, one after the other, on the items themselves.
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
        if self._streaming:
            return self._expand_streaming(items)
        keyed = [items | "PackItems" >> beam.Map(lambda it: (it.review.review_id, pack((ITEM, it))))]
        missing = {}
        fingerprints = alerts = None
        if self._dedup is not None:
            from pipeline.transforms.dedup import DETECTOR, NearDuplicateSignals, no_fingerprint
            signals, fingerprints = items | "NearDuplicates" >> NearDuplicateSignals(self._dedup, self._stored)
            keyed.append(signals | "PackNearDuplicates" >> beam.Map(
                lambda kv: (kv[0], pack((DETECTOR, {DETECTOR: kv[1]})))))
            missing[DETECTOR] = {DETECTOR: no_fingerprint(self._dedup.version)}
        if self._classifier is not None:
            from pipeline.transforms.classify import DETECTOR as CLASSIFIER, ClassifyReviews
            signals = items | "FakeClassifier" >> ClassifyReviews(
                self._classifier or None, threads=self._classifier_threads, run_id=self._run_id, keyed_signals=True)
            keyed.append(signals | "PackClassifier" >> beam.Map(
                lambda kv: (kv[0], pack((CLASSIFIER, {CLASSIFIER: kv[1]})))))
            missing[CLASSIFIER] = {}  # every item gets one (scored, not_applicable or a failure's not_run)
        if self._behaviour is not None:
            from pipeline.transforms.behaviour import BehaviourSignals, not_run
            signals, alerts = items | "Behaviour" >> BehaviourSignals(self._behaviour, self._stored)
            keyed.append(signals | "PackBehaviour" >> beam.Map(_packed("behaviour")))
            missing["behaviour"] = not_run(self._behaviour.version)
        detected = (tuple(keyed)
                    | "AllSignals" >> beam.Flatten()
                    | "JoinSignals" >> beam.GroupByKey()
                    | "AttachSignals" >> beam.ParDo(_AttachSignalsFn(missing)))
        return detected | "MarkDetectorsNotRun" >> beam.Map(mark_not_run), fingerprints, alerts

    def _expand_streaming(self, items):
        if self._dedup is not None:
            from pipeline.transforms.dedup_stream import StreamingNearDuplicates
            items = items | "NearDuplicates" >> StreamingNearDuplicates(self._dedup)
        if self._classifier is not None:
            from pipeline.transforms.classify import ClassifyReviews
            items = items | "FakeClassifier" >> ClassifyReviews(
                self._classifier or None, threads=self._classifier_threads, run_id=self._run_id)
        alerts = None
        if self._behaviour is not None:
            from pipeline.transforms.behaviour_stream import StreamingBehaviour
            items, alerts = items | "Behaviour" >> StreamingBehaviour(self._behaviour)
        return items | "MarkDetectorsNotRun" >> beam.Map(mark_not_run), None, alerts
