"""Per-product documents: counts and rating histogram over all published reviews, withheld counts.

Batch: :class:`SummariseProducts` (one CombinePerKey). Streaming: :class:`StreamingProductUpdates`
(the same CombineFn as combining state, a document after every decision).

A withheld review (hold_for_review or reject) counts once, under its first (primary) reason, so
``withheld_by_reason`` sums to ``withheld_count`` and a widget can say
"12 reviews not shown: 10 duplicate spam, 2 personal data".
"""
from __future__ import annotations

from collections import Counter

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.transforms.userstate import CombiningValueStateSpec

from pipeline.display import star_bucket
from pipeline.transforms.common import KEYED, stage_failed
from schemas.codes import PUBLISH_DECISIONS, WITHHELD_DECISIONS
from schemas.records import Decision, ProductDoc


def is_syndicated(decision: Decision) -> bool:
    """Whether the review came from a syndication partner (declared by the input, ``syndicated`` label)."""
    return any(label.get("code") == "syndicated" for label in decision.labels)


class ProductAggregateFn(beam.CombineFn):
    """Accumulator: [published, rating_sum, histogram Counter, decisions Counter, withheld Counter,
    [site published, site rating_sum] or None]: "site" = published and not syndicated (what
    schema.org's AggregateRating may count); None = unknown (an accumulator an older version kept in
    streaming state, before site reviews were counted: its site totals would leave out every earlier
    review, so none are claimed)."""

    def create_accumulator(self):
        return [0, 0.0, Counter(), Counter(), Counter(), [0, 0.0]]

    @staticmethod
    def _site(acc):
        return acc[5] if len(acc) > 5 else None

    def add_input(self, acc, decision: Decision):
        """All or nothing: everything is read and checked before the accumulator changes, so a
        decision that cannot be counted leaves it as it was (streaming keeps it in state)."""
        kind = decision.decision
        published = kind in PUBLISH_DECISIONS
        if published:
            rating = float(decision.rating)
            bucket = star_bucket(rating)
            site = not is_syndicated(decision)
        elif kind in WITHHELD_DECISIONS:
            reason = str(decision.reasons[0]) if decision.reasons else "unspecified"
        if len(acc) < 6:
            acc.append(None)
        acc[3][kind] += 1
        if published:
            acc[0] += 1
            acc[1] += rating
            acc[2][bucket] += 1
            if site and acc[5] is not None:
                acc[5] = [acc[5][0] + 1, acc[5][1] + rating]
        elif kind in WITHHELD_DECISIONS:
            acc[4][reason] += 1
        return acc

    def merge_accumulators(self, accs):
        out = self.create_accumulator()
        for acc in accs:
            out[0] += acc[0]
            out[1] += acc[1]
            for i in (2, 3, 4):
                out[i].update(acc[i])
            site = self._site(acc)
            out[5] = None if site is None or out[5] is None else [out[5][0] + site[0], out[5][1] + site[1]]
        return out

    def extract_output(self, acc):
        return acc


def product_doc(product_id: str, acc, run_id: str) -> ProductDoc:
    """A :class:`ProductAggregateFn` accumulator → the product's document (batch and streaming)."""
    published, rating_sum, hist, decided, withheld = acc[:5]
    site = ProductAggregateFn._site(acc)
    site_count, site_sum = site if site is not None else (None, 0.0)
    return ProductDoc(
        product_id=product_id, published_count=published,
        average_rating=round(rating_sum / published, 3) if published else None,
        rating_histogram={str(s): hist.get(str(s), 0) for s in range(1, 6)},
        decisions=dict(sorted(decided.items())), withheld_count=sum(withheld.values()),
        withheld_by_reason=dict(sorted(withheld.items())), run_id=run_id,
        site_review_count=site_count, site_average_rating=round(site_sum / site_count, 3) if site_count else None)


class SummariseProducts(beam.PTransform):
    """PCollection[Decision] → PCollection[ProductDoc], one per product."""

    def __init__(self, run_id: str):
        super().__init__()
        self._run_id = run_id

    def expand(self, decisions):
        run_id = self._run_id

        def to_doc(kv) -> ProductDoc:
            return product_doc(kv[0], kv[1], run_id)

        return (decisions
                | "KeyByProduct" >> beam.Map(lambda d: (d.product_id, d))
                | "AggregatePerProduct" >> beam.CombinePerKey(ProductAggregateFn())
                | "ToProductDoc" >> beam.Map(to_doc))


# -- streaming ----------------------------------------------------------------------------------

class ProductUpdateFn(beam.DoFn):
    """Keyed by product_id: the running aggregate (:class:`ProductAggregateFn`, as combining state);
    emits the product's document after every decision for it, so a widget cache is never more than
    one pipeline latency behind. State per product: one accumulator (counts, no reviews)."""

    AGG = CombiningValueStateSpec("agg", PickleCoder(), ProductAggregateFn())

    def __init__(self, run_id: str):
        self._run_id = run_id

    def process(self, keyed, agg=beam.DoFn.StateParam(AGG)):
        product_id, decision = keyed
        try:
            # counted on a scratch accumulator first: a decision that cannot be counted never
            # reaches the state (Beam's combining state adds in place, or clears before adding)
            ProductAggregateFn().add_input(ProductAggregateFn().create_accumulator(), decision)
            agg.add(decision)
            doc = product_doc(product_id, agg.read(), self._run_id)
        except Exception as exn:  # noqa: BLE001 - the decision is already out; its product update is not
            stage_failed("product_updates", exn, decision.review_id)
            return
        yield doc


class StreamingProductUpdates(beam.PTransform):
    """PCollection[Decision] → PCollection[ProductDoc]: each product's running totals, kept current."""

    def __init__(self, run_id: str):
        super().__init__()
        self._run_id = run_id

    def expand(self, decisions):
        return (decisions
                | "KeyByProduct" >> beam.Map(lambda d: (d.product_id, d)).with_output_types(KEYED)
                | "RunningAggregate" >> beam.ParDo(ProductUpdateFn(self._run_id)))
