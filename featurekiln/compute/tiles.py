"""Daily tiles: one pass over the events gives the partials of every feature per key per day."""

from __future__ import annotations

from typing import TYPE_CHECKING

from featurekiln.compute import aggregations
from featurekiln.compute.sources import TS, value_column
from featurekiln.definitions.models import FeatureView

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

DAY = "_day"


def partial_column(index: int, suffix: str) -> str:
    """Name of the tile column that holds one partial of ``features[index]``."""
    return f"_p{index}_{suffix}"


def build_tiles(events: DataFrame, view: FeatureView) -> DataFrame:
    """Group events by key and UTC day into tiles.

    Args:
        events: the output of :func:`featurekiln.compute.sources.read_events`.
        view: the definition.

    Returns:
        One row per key and day that has at least one event: the keys, ``_day``
        (days since 1970-01-01, UTC) and the partial columns of every feature.
    """
    from pyspark.sql import functions as F

    aggregates = []
    for i, feature in enumerate(view.features):
        value = F.col(value_column(i)) if feature.expr is not None else None
        exprs = aggregations.tile_aggregates(feature.agg, value, F.col(TS))
        for partial, expr in zip(aggregations.partials(feature.agg), exprs, strict=True):
            aggregates.append(expr.alias(partial_column(i, partial.suffix)))
    day = F.unix_date(F.to_date(F.col(TS))).alias(DAY)
    return events.groupBy(*[F.col(k) for k in view.keys], day).agg(*aggregates)
