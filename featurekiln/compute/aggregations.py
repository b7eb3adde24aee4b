"""The eight aggregations as mergeable partials: per-day tile form, combine, final value.

Every aggregation is stored per key per day as one or more *partials* that merge
associatively, so any window of whole days is the merge of its days' tiles:

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
broken by the largest value, as DESIGN.md requires. Nulls of ``expr`` never enter
a partial.
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
    merge: str  # "add", "least", "greatest" or "union"


_PARTIALS: dict[str, tuple[Partial, ...]] = {
    "count": (Partial("n", "add"),),
    "sum": (Partial("s", "add"),),
    "avg": (Partial("s", "add"), Partial("n", "add")),
    "min": (Partial("m", "least"),),
    "max": (Partial("m", "greatest"),),
    "last": (Partial("x", "greatest"),),
    "first": (Partial("x", "greatest"),),
    "count_distinct": (Partial("set", "union"),),
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
        order = micros if agg == "last" else -micros
        return [F.max(F.when(value.isNotNull(), F.struct(order.alias("o"), value.alias("v"))))]
    if agg == "count_distinct":
        return [F.collect_set(value)]
    raise ValueError(f"unknown aggregation {agg!r}")


def merge(kind: str, parts: list[Column]) -> Column:
    """Merge partials; null stands for "no data" and is the identity.

    The expression grows linearly with ``len(parts)`` (no operand is repeated in
    a nested way), which keeps Spark's generated code small.
    """
    from pyspark.sql import functions as F

    if len(parts) == 1:
        return parts[0]
    if kind == "add":
        total = F.coalesce(parts[0], F.lit(0))
        for part in parts[1:]:
            total = total + F.coalesce(part, F.lit(0))
        return F.when(F.coalesce(*parts).isNotNull(), total)
    if kind == "least":
        return F.least(*parts)
    if kind == "greatest":
        return F.greatest(*parts)
    if kind == "union":
        empty = F.filter(F.coalesce(*parts), lambda _: F.lit(False))
        return F.array_distinct(F.flatten(F.array(*[F.coalesce(p, empty) for p in parts])))
    raise ValueError(f"unknown merge {kind!r}")


def final_value(agg: str, merged: list[Column]) -> Column:
    """The feature value from the merged partials of a whole window.

    Empty window: 0 for count and count_distinct, null for the others.
    """
    from pyspark.sql import functions as F

    if agg == "count":
        return F.coalesce(merged[0], F.lit(0)).cast("bigint")
    if agg == "count_distinct":
        return F.when(merged[0].isNull(), F.lit(0)).otherwise(F.size(merged[0])).cast("bigint")
    if agg == "avg":
        total, count = merged
        return F.when(count > 0, total.cast("double") / count)
    if agg in ("first", "last"):
        return merged[0].getField("v")
    return merged[0]
