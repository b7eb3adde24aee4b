"""The eight aggregations as mergeable partials: per-day tile form, and how windows merge them.

Every aggregation is stored per key per day as one or more *partials* that merge
associatively, so any window of whole days is the merge of its days' tiles
(:mod:`featurekiln.compute.windows` merges them):

=============== ======================================== ===========
aggregation     partials (per key and day)               merge
=============== ======================================== ===========
count           n = count(*) or count(expr)              n + n
sum             s = sum(expr)                            s + s (null-aware)
avg             s = sum(expr), n = count(expr)           s + s, n + n
min / max       m = min(expr) / max(expr)                least / greatest
last            x = max(struct(micros(ts), expr))        greatest
first           x = max(struct(-micros(ts), expr))       greatest
count_distinct  set = collect_set(expr)                  array_union
=============== ======================================== ===========

``first``/``last`` order by (event time, value), so a tie on the timestamp is
broken by the largest value, as docs/semantics.md requires. Nulls of ``expr`` never enter
a partial. Spark aggregates the ``max`` of a struct only by sorting every event,
so where the session's JVM has featurekiln's ``MaxPair``
(:data:`~featurekiln.internals.jars.MAX_PAIR_CLASS`) the same struct comes from it,
through a hash aggregation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:

    from pyspark.sql import Column


@dataclass(frozen=True)
class Partial:
    """One mergeable column of an aggregation's tile."""

    suffix: str


_PARTIALS: dict[str, tuple[Partial, ...]] = {
    "count": (Partial("n"),),
    "sum": (Partial("s"),),
    "avg": (Partial("s"), Partial("n")),
    "min": (Partial("m"),),
    "max": (Partial("m"),),
    "last": (Partial("x"),),
    "first": (Partial("x"),),
    "count_distinct": (Partial("set"),),
}


def partials(agg: str) -> tuple[Partial, ...]:
    """The partial columns that ``agg`` keeps per tile."""
    return _PARTIALS[agg]


def tile_aggregates(agg: str, value: Column | None, ts: Column) -> list[Column]:
    """Spark aggregate expressions computing the partials of ``agg`` for one tile.

    Args:
        agg: the aggregation name.
        value: the evaluated ``expr`` column, or None for ``count`` without expr.
        ts: the event timestamp column.
    """
    from pyspark.sql import functions as F

    if agg == "count":
        return [F.count(F.lit(1)) if value is None else F.count(value)]
    if value is None:
        raise ValueError(f"aggregation {agg!r} needs a value")
    if agg == "sum":
        return [F.sum(value)]
    if agg == "avg":
        return [F.sum(value), F.count(value)]
    if agg == "min":
        return [F.min(value)]
    if agg == "max":
        return [F.max(value)]
    if agg in ("first", "last"):
        micros = F.unix_micros(ts)
        return [greatest_pair(micros if agg == "last" else -micros, value)]
    if agg == "count_distinct":
        return [F.collect_set(value)]
    raise ValueError(f"unknown aggregation {agg!r}")


def greatest_pair(order: Column, value: Column) -> Column:
    """The greatest ``(order, value)`` of the rows whose value is not null, as ``struct<o, v>`` (null if none).

    Through featurekiln's ``MaxPair`` (a hash aggregation) where the active
    session's JVM has it, else as Spark's ``max`` of the struct (a sort-based
    aggregation, logged at INFO): the same value either way.
    """
    from pyspark.sql import functions as F

    from featurekiln.internals import catalyst
    from featurekiln.internals.jars import MAX_PAIR_CLASS

    max_pair = catalyst.jvm_class(MAX_PAIR_CLASS, fallback="first/last tiles take Spark's max of a struct "
                                  "(a sort-based aggregation, the same values)")
    if max_pair is None:
        return F.max(F.when(value.isNotNull(), F.struct(order.alias("o"), value.alias("v"))))
    return catalyst.jvm_aggregate(max_pair, order, value)
