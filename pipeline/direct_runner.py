"""Streaming on the DirectRunner only: a Pub/Sub publisher shared per process and three patches of
Beam 2.77's local runner that remove its fixed cost per bundle (README "Latency"; measured with
py-spy on the stream demo). Dataflow uses none of this: ``pipeline.stream`` applies :func:`patch`
only when the pipeline's runner is the DirectRunner. The patches replace private Beam internals
(``decorators.get_signature``, ``_PubSubReadEvaluator._get_subscriber_client``,
``_TransformWatermarks.extract_transform_timers``), so a Beam upgrade must re-check each of them;
``tests/test_stream_parity.py`` runs with them active.
"""
from __future__ import annotations

import os
import threading
import weakref

import apache_beam as beam


def patch() -> None:
    """All three DirectRunner patches (idempotent)."""
    memoize_beam_signatures()
    pull_more_per_bundle()
    index_direct_timers()


class Publisher:
    """DirectRunner only: one publisher client per process; a bundle's messages in one request."""

    _client = None
    _lock = threading.Lock()

    @classmethod
    def publish(cls, topic: str, messages) -> None:
        with cls._lock:
            if cls._client is None:
                from google.cloud import pubsub
                cls._client = pubsub.PublisherClient().api
        for request in publish_requests(messages):
            cls._client.publish(topic=topic, messages=[
                {"data": m.data, "attributes": dict(m.attributes or {})} for m in request], timeout=300)


# Pub/Sub's limits on one publish request: 1,000 messages and 10 MB (data and attributes together).
PUBLISH_MAX_MESSAGES = 500
PUBLISH_MAX_BYTES = 9_000_000


def publish_requests(messages, max_messages: int = PUBLISH_MAX_MESSAGES, max_bytes: int = PUBLISH_MAX_BYTES):
    """``messages`` in order, cut into requests of at most ``max_messages`` messages and ``max_bytes``
    bytes (a message larger than ``max_bytes`` goes alone, for Pub/Sub to accept or refuse)."""
    request, size = [], 0
    for m in messages:
        n = len(m.data) + sum(len(k.encode()) + len(str(v).encode()) for k, v in (m.attributes or {}).items())
        if request and (len(request) >= max_messages or size + n > max_bytes):
            yield request
            request, size = [], 0
        request.append(m)
        size += n
    if request:
        yield request


def is_direct_runner(p: beam.Pipeline) -> bool:
    return "DirectRunner" in type(getattr(p, "runner", None)).__name__


_SIGNATURES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def memoize_beam_signatures() -> None:
    """DirectRunner only: remembers the signature Beam computes for each function or method.

    The streaming DirectRunner starts every bundle of every step by unpickling a fresh copy of the
    DoFn and inspecting the signature of each of its ~30 methods several times (state and timer
    specs, DoFnSignature); at a few messages per bundle that was half of the job's CPU (py-spy,
    README "Latency"). ``inspect.signature`` of one function object never changes, so the result
    is kept per function (weakly: a function that goes away takes its entry with it) and per
    bound/unbound use. Idempotent; the results Beam sees are the ones it would compute."""
    from apache_beam.transforms import core, ptransform, util
    from apache_beam.typehints import decorators
    if getattr(decorators.get_signature, "_memoized", False):
        return
    original = decorators.get_signature

    def get_signature(func):
        base = getattr(func, "__func__", None)
        key, bound = (base, True) if base is not None else (func, False)
        try:
            known = _SIGNATURES.get(key)
        except TypeError:   # not weakly referenceable: not cached
            return original(func)
        if known is None or bound not in known:
            known = _SIGNATURES.setdefault(key, {})
            known[bound] = original(func)
        return known[bound]

    get_signature._memoized = True
    for module in (decorators, core, ptransform, util):
        if getattr(module, "get_signature", None) is original:
            module.get_signature = get_signature


_EMULATOR_SUBSCRIBERS: dict = {}


def emulator_subscriber(host: str):
    """A subscriber client for the Pub/Sub emulator at ``host`` that receives messages of any size.

    In emulator mode google-cloud-pubsub opens its channel with gRPC's default 4 MiB receive limit,
    so one pull holding a message over ~4 MB fails (``ResourceExhausted``), is never acknowledged,
    and is redelivered to fail again with every message pulled beside it: the local job stalls.
    Against real Pub/Sub the client already lifts the limit. One client per host and process."""
    client = _EMULATOR_SUBSCRIBERS.get(host)
    if client is None:
        client = _EMULATOR_SUBSCRIBERS.setdefault(host, new_emulator_subscriber(host))
    return client


def new_emulator_subscriber(host: str):
    """A new subscriber client of the emulator at ``host`` without gRPC's 4 MiB receive limit."""
    import grpc
    from google.cloud import pubsub_v1
    from google.pubsub_v1.services.subscriber.transports.grpc import SubscriberGrpcTransport
    channel = grpc.insecure_channel(host, options=[("grpc.max_receive_message_length", -1),
                                                   ("grpc.max_send_message_length", -1)])
    return pubsub_v1.SubscriberClient(transport=SubscriberGrpcTransport(channel=channel))


DIRECT_PULL_MAX_MESSAGES = 200
DIRECT_PULL_TIMEOUT_S = 2


class _PullUpTo:
    """A Pub/Sub subscriber client whose ``pull`` asks for up to ``max_messages`` at a time and
    waits at most ``timeout_s`` for an empty subscription."""

    def __init__(self, client, max_messages: int, timeout_s: float):
        self._client = client
        self._max = max_messages
        self._timeout = timeout_s

    def pull(self, *args, **kwargs):
        kwargs["max_messages"] = max(int(kwargs.get("max_messages") or 0), self._max)
        kwargs["timeout"] = min(float(kwargs.get("timeout") or self._timeout), self._timeout)
        return self._client.pull(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)


def pull_more_per_bundle(max_messages: int = DIRECT_PULL_MAX_MESSAGES,
                         timeout_s: float = DIRECT_PULL_TIMEOUT_S) -> None:
    """DirectRunner only: its Pub/Sub read takes up to ``max_messages`` per pull (Beam asks for 10)
    and waits at most ``timeout_s`` on an empty subscription (Beam waits 30 s).

    The DirectRunner runs every step on one thread, one bundle at a time, and the read's bundle is
    whatever one pull returns; each bundle then costs every step a fixed amount, however few
    elements it holds. Capped at 10 messages a bundle the job could not keep up beyond a few
    messages a second; a pull still returns as soon as any message is there, so a quiet stream is
    not delayed. While a pull waits, nothing else runs and the watermark stands still: with
    Beam's 30 s, the last windowed files and late panes were written up to a minute after the
    last message, and a demo that stopped earlier missed decisions in its files. Idempotent."""
    from apache_beam.runners.direct import transform_evaluator as te
    evaluator = te._PubSubReadEvaluator
    if getattr(evaluator, "_pull_up_to", None) == (max_messages, timeout_s):
        return
    original = getattr(evaluator, "_original_get_subscriber_client", None) or evaluator._get_subscriber_client.__func__
    evaluator._original_get_subscriber_client = original

    def client(cls, transform):
        host = os.environ.get("PUBSUB_EMULATOR_HOST")
        return _PullUpTo(emulator_subscriber(host) if host else original(cls, transform), max_messages, timeout_s)

    evaluator._get_subscriber_client = classmethod(client)
    evaluator._pull_up_to = (max_messages, timeout_s)


def _timer_summary(state):
    """(earliest event-time timer in micros or None, whether any other timer is set) of a keyed state."""
    from apache_beam.transforms.timeutil import TimeDomain
    earliest, other = None, False
    for timers in state.timers.values():
        for (_, domain, _), timestamp in timers.items():
            if domain == TimeDomain.WATERMARK:
                micros = timestamp.micros
                earliest = micros if earliest is None or micros < earliest else earliest
            else:
                other = True
    return earliest, other


def index_direct_timers() -> None:
    """DirectRunner only: its timer scan looks only at keys that can have a timer due.

    After every bundle the DirectRunner asks every key ever seen by every stateful step or
    GroupByKey for its due timers, comparing each timer's time in Python. Keys only accumulate
    (a review id for redeliveries, 16 band keys per review, a review id while its bands are
    collected, authors, products, texts), so that scan grew with the stream: 41% of the job's CPU
    after 1,230 messages (py-spy), and latency rose through a run. Committed keyed state is never
    changed in place (a bundle works on a copy that replaces it), so each key's earliest
    event-time timer is worked out once per committed state and compared as an integer; only keys
    with a timer due (or a processing-time timer) are asked, as before. The timers fired are the
    ones Beam's own scan would fire. Idempotent."""
    from apache_beam.runners.direct import watermark_manager as wm
    cls = wm._TransformWatermarks
    if getattr(cls, "_indexed_timers", False):
        return

    def extract_transform_timers(self):
        with self._lock:
            cache = self.__dict__.setdefault("_timer_index", {})
            fired, has_realtime_timer = [], False
            watermark, now = self._input_watermark, self._clock.time()
            watermark_micros = watermark.micros
            for encoded_key, state in self._keyed_states.items():
                entry = cache.get(encoded_key)
                if entry is None or entry[0] is not state:
                    entry = cache[encoded_key] = (state,) + _timer_summary(state)
                _, earliest, other = entry
                if not other and (earliest is None or earliest > watermark_micros):
                    continue
                timers, had_realtime_timer = state.get_timers(watermark=watermark, processing_time=now)
                has_realtime_timer = has_realtime_timer or had_realtime_timer
                for window, (name, time_domain, timestamp, dynamic_timer_tag) in timers:
                    fired.append(wm.TimerFiring(encoded_key, window, name, time_domain, timestamp,
                                                dynamic_timer_tag=dynamic_timer_tag))
            self._fired_timers.update(fired)
            return fired, has_realtime_timer

    cls.extract_transform_timers = extract_transform_timers
    cls._indexed_timers = True
