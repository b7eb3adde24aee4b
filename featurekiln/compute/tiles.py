"""Daily tiles: one pass over the events gives the partials of every feature per key per day.

A tile's partial columns are named by the feature's partial group
(:meth:`FeatureView.partial_group`): a hash of what the partials depend on, so
the stored tiles of a view keep their columns when features are renamed,
re-windowed, reordered or added, and two features that aggregate the same
expression the same way share them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from featurekiln.compute import aggregations
from featurekiln.compute.sources import TS, value_column
from featurekiln.definitions.models import FeatureView
from featurekiln.layout import TILE_DAY

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

DAY = TILE_DAY


def partial_column(group: str, suffix: str) -> str:
    """Name of the tile column that holds one partial of a partial group."""
    return f"_p{group}_{suffix}"


def feature_columns(view: FeatureView, index: int) -> tuple[str, ...]:
    """The tile columns of ``features[index]``."""
    feature = view.features[index]
    group = view.partial_group(feature)
    return tuple(partial_column(group, p.suffix) for p in aggregations.partials(feature.agg))


def build_tiles(events: DataFrame, view: FeatureView, groups: Iterable[str] | None = None) -> DataFrame:
    """Group events by key and UTC day into tiles.

    Args:
        events: the output of :func:`featurekiln.compute.sources.read_events`.
        view: the definition.
        groups: the partial groups to compute (default: all of the view's).

    Returns:
        One row per key and day that has at least one event: the keys, ``_day``
        (days since 1970-01-01, UTC) and the partial columns of the groups.
    """
    from pyspark.sql import functions as F

    every = view.partial_groups()
    wanted = list(every) if groups is None else list(groups)
    aggregates = []
    for group in wanted:
        i = every[group]
        feature = view.features[i]
        value = F.col(value_column(i)) if feature.expr is not None else None
        exprs = aggregations.tile_aggregates(feature.agg, value, F.col(TS))
        for partial, expr in zip(aggregations.partials(feature.agg), exprs, strict=True):
            aggregates.append(expr.alias(partial_column(group, partial.suffix)))
    day = F.unix_date(F.to_date(F.col(TS))).alias(DAY)
    return events.groupBy(*[F.col(k) for k in view.keys], day).agg(*aggregates)
