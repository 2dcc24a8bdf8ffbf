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
from schemas.records import InputRef, Item, Packer, Review, Signal

BEHAVIOUR_DETECTORS = ("coordinated_group", "author_velocity", "product_burst")
DETECTORS = ("near_duplicate", "fake_classifier") + BEHAVIOUR_DETECTORS
NOT_RUN_NOTE = "detector not part of this run"


def mark_not_run(item: Item) -> Item:
    signals = dict(item.signals)
    for detector in DETECTORS:
        signals.setdefault(detector, Signal(status="not_run", version=None, note=NOT_RUN_NOTE))
    return item.replace(signals=signals)


ITEM = "item"


def _sample_item() -> Item:
    """A typical item, for the packing dictionary (``schemas.records.Packer``)."""
    review = Review("review-000000", "product-000000", "author-000000", 5, "A typical review of a product.",
                    "2026-01-01T00:00:00Z")
    return Item(review, InputRef("gs://bucket/reviews/part-000000.jsonl", 1), "2026-01-01T00:00:00.000000Z",
                clean_body=review.body, language="en", language_source="detected", content_sha256="0" * 64)


class _AttachSignalsFn(beam.DoFn):
    """(review_id, packed item and packed signals) → the item with every detector's signal.

    A detector that ran but has no signal for the review records ``not_run`` with its own note
    (``near_duplicate``: no fingerprint; behavioural: not covered by the analysis). Where a detector
    sends more than one signal (group) for a review, its ``choose`` function picks one (near-duplicate
    detection: the cluster's signal over the one every review gets); else the first is kept."""

    def __init__(self, packer: Packer, missing, choose=None):
        self._packer = packer
        self._missing = missing  # {signal group: {detector: Signal}} for a review a detector did not cover
        self._choose = choose or {}  # {signal group: [signal groups] → the one to keep}

    def process(self, keyed):
        _, packed = keyed
        items, found = [], {}
        for data in packed:
            tag, value = self._packer.unpack(data)
            if tag == ITEM:
                items.append(value)
            else:
                found.setdefault(tag, []).append(value)
        chosen = {tag: self._choose[tag](values) if tag in self._choose else values[0]
                  for tag, values in found.items()}
        for item in items:
            signals = dict(item.signals)
            for group, missing in self._missing.items():
                signals.update(chosen.get(group, missing))
            yield item.replace(signals=signals)


def _choose_within(detector: str, choose):
    """A chooser of signal groups {detector: Signal} from a chooser of the detector's signals."""
    def choose_group(groups):
        return {detector: choose([g[detector] for g in groups])}
    return choose_group


def _packed(packer: Packer, tag: str, detector: Optional[str] = None):
    """(review_id, value) → (review_id, packed (tag, value)); ``detector`` wraps a lone signal as {detector: signal}."""
    def pack_value(kv):
        return kv[0], packer.pack((tag, {detector: kv[1]} if detector else kv[1]))
    return pack_value


class DetectFakes(beam.PTransform):
    """PCollection[Item] → (PCollection[Item] with one signal per detector, this run's fingerprints,
    product alerts or None).

    ``dedup=None`` switches near-duplicate detection off (recorded as not_run); ``stored`` is the
    signature store's fingerprints from earlier runs (or None); ``behaviour=None`` switches the
    behavioural detectors off (not_run).

    Batch: each detector works on its own projection of the items (fingerprints, (review_id, text),
    behavioural events) and yields (review_id, signal); one grouping by review_id then joins every
    signal to the items. What waits in that grouping is packed (``schemas.records.Packer``: pickled,
    deflated with a dictionary of typical signals and items), because the DirectRunner holds it
    all in memory: ~0.5 KB a review instead of ~1.7 KB pickled or several KB decoded.
    Streaming: the stateful detectors, one after the other, on the items themselves.
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
        signals, samples, missing, choose = [], [], {}, {}  # (label, tag, detector or None, PCollection); packing samples
        fingerprints = alerts = None
        if self._dedup is not None:
            from pipeline.transforms.dedup import (DETECTOR, NearDuplicateSignals, choose_signal, no_fingerprint,
                                                   sample_signals)
            found, fingerprints = items | "NearDuplicates" >> NearDuplicateSignals(self._dedup, self._stored)
            choose[DETECTOR] = _choose_within(DETECTOR, choose_signal)
            signals.append(("NearDuplicates", DETECTOR, DETECTOR, found))
            samples += [(DETECTOR, {DETECTOR: s}) for s in sample_signals(self._dedup)]
            missing[DETECTOR] = {DETECTOR: no_fingerprint(self._dedup.version)}
        if self._classifier is not None:
            from pipeline.transforms.classify import DETECTOR as CLASSIFIER, ClassifyReviews
            classify = ClassifyReviews(self._classifier or None, threads=self._classifier_threads,
                                       run_id=self._run_id, keyed_signals=True)
            signals.append(("FakeClassifier", CLASSIFIER, CLASSIFIER, items | "FakeClassifier" >> classify))
            samples += [(CLASSIFIER, {CLASSIFIER: s}) for s in classify.sample_signals()]
            missing[CLASSIFIER] = {}  # every item gets one (scored, not_applicable or a failure's not_run)
        if self._behaviour is not None:
            from pipeline.transforms.behaviour import BehaviourSignals, not_run, sample_signals
            found, alerts = items | "Behaviour" >> BehaviourSignals(self._behaviour, self._stored)
            signals.append(("Behaviour", "behaviour", None, found))
            samples += [("behaviour", s) for s in sample_signals(self._behaviour)]
            missing["behaviour"] = not_run(self._behaviour.version)
        packer = Packer(samples + [(ITEM, _sample_item())])
        keyed = [items | "PackItems" >> beam.Map(lambda it: (it.review.review_id, packer.pack((ITEM, it))))]
        # a detector's signals may come in parts made in different stages: each is packed where it is made
        keyed += [part | f"Pack{label}{i or ''}" >> beam.Map(_packed(packer, tag, detector))
                  for label, tag, detector, found in signals
                  for i, part in enumerate(found if isinstance(found, tuple) else (found,))]
        detected = (tuple(keyed)
                    | "AllSignals" >> beam.Flatten()
                    | "JoinSignals" >> beam.GroupByKey()
                    | "AttachSignals" >> beam.ParDo(_AttachSignalsFn(packer, missing, choose)))
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
