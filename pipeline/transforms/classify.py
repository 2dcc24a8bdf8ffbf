"""Fake-review classifier stage: ``ClassifyReviews(model_dir)`` sets ``signals["fake_classifier"]``.

    items ─┬─ not English / too short / empty text ──────────────────────→ Signal("not_applicable")
           └─ GroupByKey(sha256(text)) → (copies, text) → RunInference(KeyedModelHandler(
              OnnxFakeReviewHandler)) → every copy, at its own event time ──→ Signal("scored")

* The model is the artifact directory written by ``make train`` (``pipeline/classifier/artifacts/...``), local
  or ``gs://``. ``OnnxFakeReviewHandler`` is a custom Beam ``ModelHandler`` (Beam's Hugging Face
  handler does not import with transformers 5): ONNX Runtime int8 encoder, intra-op threads set
  explicitly (1 by default: one model per worker process, parallelism across processes), loaded
  once per worker process through RunInference's shared model.
* Batching: RunInference's ``BatchElements`` gathers ``max_batch_size`` (512) texts per call; the
  handler then runs the int8 encoder one text at a time (``micro_batch=1``): no padding at all,
  and scores that do not depend on batch-mates (dynamic int8 quantisation made padded batches
  move a score by up to 0.33), which was also the fastest on this CPU. With ``micro_batch > 1``
  texts are sorted by token count and padded only to the longest of their micro-batch (Beam's own
  length bucketing only applies with streaming-style ``max_batch_duration_secs``).
* Exact copies (same text, by SHA-256) are grouped and scored once; the group rides through
  RunInference as its key, so there is no join afterwards. (A CoGroupByKey of items and scores
  fired per element in streaming, before the score arrived, and left the classifier ``not_run``.)
  Each copy carries its event time through the grouping and is emitted at it again, so
  streaming's event-time file windows see the review's time, not the end of the global window.
* A text in a language the artifact does not speak that holds an English review (at least the English
  minimum of Latin words, confidently English by language id: an English fake padded with Japanese)
  is scored on that English part (``english_inside``).
* Languages and lengths: only those the artifact was evaluated on (``config.json`` ``languages``:
  English; ``min_words``: texts shorter than that are too rare in the evaluation data for its
  error there to be known); for others, undetermined language, too short or empty text the signal
  is ``not_applicable``, so the classifier can never support rejecting them.
* Failures: ``RunInference(...).with_exception_handling()``. A failed batch never fails the job;
  its reviews keep flowing with ``status = "not_run"`` and the error in ``note`` (default), or, with
  ``dead_letters=True``, become ``internal_error`` dead letters of stage ``classify`` (the repo's
  stage convention: then ``expand`` returns ``(items, dead_letters)``).

Batch jobs use ``keyed_signals=True``: the grouping by text carries (review_id, text) instead of the
item, and the stage returns (review_id, Signal) for ``DetectFakes`` to join to the items together with
the other detectors' signals, in three PCollections (not applicable, scored, failed: see
``_keyed_signals``); streaming keeps the items flowing through, as above.

What is scored is the cleaned body (the classifier was trained on review bodies without titles).
"""
from __future__ import annotations

import hashlib
import threading
from typing import Any, Dict, Iterable, List, Optional, Sequence

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference
from apache_beam.transforms.window import TimestampedValue

from pipeline.classifier import runtime
from schemas.records import Item, Signal, pack, unpack

DETECTOR = "fake_classifier"
STAGE = "classify"


def text_of(item: Item) -> str:
    return (item.clean_body if item.clean_body is not None else item.review.body or "").strip()


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def text_digest(text: str) -> bytes:
    """A 16-byte key for a text (where the DirectRunner holds every key: a third of the hex key's size)."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


class OnnxFakeReviewHandler(ModelHandler[str, Dict[str, Any], Any]):
    """ModelHandler[str → score dict] over a ``pipeline.classifier.runtime.FakeReviewClassifier``."""

    def __init__(self, model_dir: str, threads: int = 1, micro_batch: int = 1,
                 min_batch_size: int = 512, max_batch_size: int = 512, model_copies: Optional[int] = None):
        kwargs = {"min_batch_size": min(min_batch_size, max_batch_size), "max_batch_size": max_batch_size}
        if model_copies is not None:
            kwargs["model_copies"] = model_copies
        super().__init__(**kwargs)
        self._model_dir = str(model_dir or "")  # "" = the packaged default model
        self._threads = threads
        self._micro_batch = micro_batch

    def load_model(self):
        """One model per worker process and configuration. Beam's shared handle keeps it across
        bundles on Dataflow, but the streaming DirectRunner tears the DoFn down after every bundle
        (a reload was ~11% of its CPU at 20 msg/s, and 2.0.0 rebuilds its embedding table at load),
        so the process keeps it here too. ONNX Runtime sessions are safe to share between threads."""
        key = (self._model_dir, self._threads, self._micro_batch)
        with _MODELS_LOCK:
            if key not in _MODELS:
                _MODELS[key] = runtime.load(self._model_dir or None, threads=self._threads,
                                            batch_size=self._micro_batch)
            return _MODELS[key]

    def run_inference(self, batch: Sequence[Any], model, inference_args=None) -> Iterable[PredictionResult]:
        """``batch``: texts, or (text, its English sentences) pairs (``_Applicability.element``)."""
        texts = [e if isinstance(e, str) else e[0] for e in batch]
        parts = [None if isinstance(e, str) else e[1] for e in batch]
        # sorts by length inside: length-aware micro-batches
        probs = model.predict_proba(texts, english_parts=parts) if any(parts) else model.predict_proba(texts)
        for text, p in zip(batch, probs):
            p = float(p)
            yield PredictionResult(text, {"probability": round(p, 6), "band": model.band(p),
                                          "thresholds": dict(model.thresholds)}, model.version)

    def get_num_bytes(self, batch: Sequence[Any]) -> int:
        return sum(len(element_key_text(e).encode("utf-8")) for e in batch)

    def get_metrics_namespace(self) -> str:
        return "fake_classifier"


_MODELS: dict = {}
_MODELS_LOCK = threading.Lock()


def english_inside(text: str, languages: Sequence[str], min_length=0) -> Optional[str]:
    """The English review inside a text in a language the classifier does not speak (an English fake
    padded with Japanese, or with a longer real review in Spanish, to switch the classifier off):
    the first of ``runtime.english_readings`` that language id is confident is English, else its
    English sentences (:func:`english_sentences`), when English is served; else None."""
    if not text or "en" not in languages:
        return None
    from pipeline.text.langid import confident_language
    least = runtime.english_min_words(min_length)
    for reading in reversed(runtime.english_readings(text, least)):
        if confident_language(reading) == "en":   # the longest unbroken run first, then the whole Latin part
            return reading
    return english_sentences(text, least)


def english_sentences(text: str, least: int) -> Optional[str]:
    """The English sentences of a text that holds at least ``least`` Latin words, when they make an
    English review's worth (``least`` Latin words) and are not the whole text; else None."""
    if runtime.latin_words(text) < least:
        return None
    from pipeline.text.langid import sentences_in
    part = sentences_in(text, "en")
    if part is None or runtime.latin_words(part) < least or " ".join(part.split()) == " ".join(text.split()):
        return None
    return part


def element_key_text(element) -> str:
    """The handler's input as one string (what identifies it): the text, or text and English sentences."""
    return element if isinstance(element, str) else f"{element[0]}\x00{element[1]}"


class _Applicability:
    """Whether the classifier speaks for an item (runtime's one rule) and what text it scores: the
    cleaned body, or for a text in a language it was not evaluated on, the English review inside it."""

    def __init__(self, languages: Sequence[str], min_length=0):
        self._languages, self._min_length = tuple(languages), min_length

    def _served(self, item: Item) -> Optional[str]:
        return runtime.not_applicable_reason(text_of(item), item.language, self._languages, self._min_length)

    def reason(self, item: Item) -> Optional[str]:
        """None when the classifier applies; otherwise the reason it does not."""
        reason = self._served(item)
        if reason and reason.startswith("language") and english_inside(text_of(item), self._languages,
                                                                       self._min_length):
            return None
        return reason

    def text(self, item: Item) -> str:
        """What is scored (call only where :meth:`reason` is None)."""
        if self._served(item) is None:
            return text_of(item)
        return english_inside(text_of(item), self._languages, self._min_length) or text_of(item)

    def element(self, item: Item):
        """The handler's input (call only where :meth:`reason` is None): the scored text, or, for a
        review in another served language that holds English sentences (an English fake inside a
        longer German review), (text, those sentences): the English detector reads them too."""
        text = text_of(item)
        if self._served(item) is not None:
            return english_inside(text, self._languages, self._min_length) or text
        if (item.language or "").split("-")[0].lower() == "en" or "en" not in self._languages:
            return text
        part = english_sentences(text, runtime.english_min_words(self._min_length))
        return text if part is None else (text, part)


def _with_signal(item: Item, signal: Signal) -> Item:
    signals = dict(item.signals)
    signals[DETECTOR] = signal
    return item.replace(signals=signals)


class ClassifyReviews(beam.PTransform):
    """PCollection[Item] → PCollection[Item] with ``signals["fake_classifier"]`` set on every item.

    ``keyed_signals=True`` (batch only): (review_id, Signal) instead, one per item, for
    ``DetectFakes`` to join with the other detectors' signals in one grouping, as a tuple of
    PCollections (not applicable, scored, failed) that together hold one signal per item."""

    def __init__(self, model_dir=None, threads: int = 1, max_batch_size: int = 512,
                 dead_letters: bool = False, run_id: str = "", model_copies: Optional[int] = None,
                 handler: Optional[ModelHandler] = None, keyed_signals: bool = False):
        super().__init__()
        # "" = the packaged default, resolved where the model loads (a worker's install path differs)
        self._model_dir = str(model_dir or "")
        config = runtime.read_config(self._model_dir or runtime.default_model_dir())
        self._version = f'{config["name"]}/{config["version"]}'
        self._languages = tuple(config["languages"])
        self._thresholds = dict(config.get("thresholds") or {})
        self._min_length = runtime.min_length_rule(config)
        self._handler = handler or OnnxFakeReviewHandler(
            self._model_dir, threads=threads, min_batch_size=max_batch_size, max_batch_size=max_batch_size,
            model_copies=model_copies)
        if keyed_signals and dead_letters:
            raise ValueError("keyed_signals and dead_letters do not go together: a failure is a not_run signal")
        self._dead_letters = dead_letters
        self._keyed = keyed_signals
        self._run_id = run_id

    def expand(self, items):
        version, rule = self._version, _Applicability(self._languages, self._min_length)
        check, element_of = rule.reason, rule.element

        def route(item: Item, n):
            return 1 if check(item) is None else 0

        not_applicable, applicable = items | "Applicable" >> beam.Partition(route, 2)

        def mark_na(item: Item) -> Item:
            Metrics.counter(STAGE, "not_applicable").inc()
            return _with_signal(item, Signal(status="not_applicable", version=version, note=check(item)))

        if self._keyed:
            return self._keyed_signals(not_applicable, applicable, version, check, element_of)
        na_out = not_applicable | "MarkNotApplicable" >> beam.Map(mark_na)

        groups = (applicable
                  | "KeyByText" >> beam.Map(lambda it, ts=beam.DoFn.TimestampParam: (
                      text_key(element_key_text(element_of(it))), (it, ts)))
                  | "CopiesByText" >> beam.GroupByKey()
                  | "OneTextPerGroup" >> beam.Map(lambda kv: (tuple(kv[1]), element_of(next(iter(kv[1]))[0]))))
        scored, dlq = groups | "RunInference" >> RunInference(
            KeyedModelHandler(self._handler)).with_exception_handling()
        with_score = scored | "AttachScore" >> beam.FlatMap(_attach_score, version)
        failures = dlq.failed_inferences | "AttachFailure" >> beam.FlatMap(
            _attach_failure, version, self._dead_letters).with_outputs("failed", main="items")
        merged = (na_out, with_score, failures.items) | "Merge" >> beam.Flatten()
        if not self._dead_letters:
            return merged
        from pipeline.transforms.common import failure_to_dead_letter
        dead = failures.failed | "FailedToDeadLetters" >> beam.Map(failure_to_dead_letter(STAGE, self._run_id))
        return merged, dead

    def sample_signals(self) -> List[Signal]:
        """Typical signals (scored, not applicable): what ``DetectFakes`` makes its packing
        dictionary of (``schemas.records.Packer``); they change sizes, never values."""
        return [Signal("scored", self._version, {"probability": 0.012345, "band": "below_lower",
                                                 "thresholds": self._thresholds}),
                Signal("not_applicable", self._version,
                       note=runtime.not_applicable_reason("", None, self._languages, self._min_length)),
                Signal("not_applicable", self._version,
                       note=runtime.not_applicable_reason("ok", "xx", self._languages, self._min_length))]

    def _keyed_signals(self, not_applicable, applicable, version, check, element_of):
        """Batch only (``keyed_signals=True``): (review_id, Signal) per item, for ``DetectFakes`` to
        join with the other detectors' signals. The grouping by text carries (review_id, text)
        pickled to one bytes object under a 16-byte key, not the item, so the DirectRunner holds a
        fraction of it. The three parts are returned unflattened: not-applicable signals are made
        in the stage that reads the items and scored ones in another, and the DirectRunner holds a
        flatten across stages as a buffer of its own; the caller packs each part where it is made."""

        def na_signal(item: Item):
            Metrics.counter(STAGE, "not_applicable").inc()
            return item.review.review_id, Signal(status="not_applicable", version=version, note=check(item))

        def by_text(item: Item):
            element = element_of(item)
            return text_digest(element_key_text(element)), pack((item.review.review_id, element))

        na_out = not_applicable | "NotApplicableSignals" >> beam.Map(na_signal)
        groups = (applicable
                  | "KeyByText" >> beam.Map(by_text)
                  | "CopiesByText" >> beam.GroupByKey()
                  | "OneTextPerGroup" >> beam.Map(_ids_and_text))
        scored, dlq = groups | "RunInference" >> RunInference(
            KeyedModelHandler(self._handler)).with_exception_handling()
        with_score = scored | "ScoreSignals" >> beam.FlatMap(_score_signals, version)
        failures = dlq.failed_inferences | "FailureSignals" >> beam.FlatMap(_failure_signals, version)
        return na_out, with_score, failures


def _attach_score(keyed_result, version) -> Iterable[TimestampedValue]:
    """(copies, PredictionResult) → every copy with the score, at the copy's own event time."""
    copies, result = keyed_result
    Metrics.counter(STAGE, "scored").inc(len(copies))
    Metrics.counter(STAGE, "scored_unique").inc()
    for item, ts in copies:
        yield TimestampedValue(_with_signal(item, Signal(status="scored", version=version,
                                                         values=result.inference)), ts)


def _ids_and_text(keyed):
    """(text key, [packed (review_id, text)]) → (review ids, the text once)."""
    _, copies = keyed
    copies = [unpack(c) for c in copies]
    return tuple(review_id for review_id, _ in copies), copies[0][1]


def _score_signals(keyed_result, version):
    """(review ids, PredictionResult) → (review_id, scored Signal) for every copy."""
    review_ids, result = keyed_result
    Metrics.counter(STAGE, "scored").inc(len(review_ids))
    Metrics.counter(STAGE, "scored_unique").inc()
    for review_id in review_ids:
        yield review_id, Signal(status="scored", version=version, values=result.inference)


def _failure_signals(bad, version):
    """A failed RunInference batch → (review_id, not_run Signal) for each copy of each text."""
    batch, err = bad
    exc_type, exc_repr = (err[0], err[1]) if isinstance(err, tuple) else (type(err), repr(err))
    error = f"{getattr(exc_type, '__name__', str(exc_type))}: {exc_repr}"[:500]
    for review_ids, _text in batch:
        Metrics.counter(STAGE, "inference_failed").inc(len(review_ids))
        for review_id in review_ids:
            yield review_id, Signal(status="not_run", version=version, note=f"inference failed: {error}")


def _attach_failure(bad, version, dead_letters):
    """A failed RunInference batch → each copy of each text ``not_run`` (or a failure to dead-letter)."""
    batch, err = bad
    exc_type, exc_repr = (err[0], err[1]) if isinstance(err, tuple) else (type(err), repr(err))
    error = f"{getattr(exc_type, '__name__', str(exc_type))}: {exc_repr}"[:500]
    for copies, _text in batch:
        Metrics.counter(STAGE, "inference_failed").inc(len(copies))
        for item, ts in copies:
            if dead_letters:
                yield beam.pvalue.TaggedOutput("failed", (item, (RuntimeError, f"inference failed: {error}", None)))
            else:
                yield TimestampedValue(_with_signal(item, Signal(status="not_run", version=version,
                                                                 note=f"inference failed: {error}")), ts)
