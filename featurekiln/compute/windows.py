"""Assemble daily snapshots from tiles, at a cost that does not grow with the window.

Snapshot ``ds`` aggregates the tiles of days ``ds - W + 1 .. ds`` (its cut-off is
``ds + 1`` at 00:00 UTC and windows are whole days, so tiles are exact).

How, per key (one Spark window partition, ordered by day):

1. **Grid.** Every tile of day ``d`` extends to the rows ``d .. min(next tile - 1,
   d + H - 1, last snapshot)``, where ``H`` is the horizon (the longest of ttl and
   windows). Inside a run of rows the days are consecutive; between runs there is
   a gap, and every run ends with at least ``H - 1`` rows without a tile. So the
   ``W`` rows ending at a row of day ``ds`` hold exactly the tiles of
   ``ds - W + 1 .. ds``, even across gaps: lags by rows are lags by days.
2. **Levels.** ``L0`` is a partial; ``L(k+1)`` merges ``Lk`` with its lags by
   ``j * RADIX**k`` for ``j = 1 .. RADIX-1``, so it covers ``RADIX**(k+1)`` rows
   ending at the current one (a sparse table).
3. **Window value.** A window of ``W`` rows is the merge of, for each base-RADIX
   digit of ``W``, that many blocks of its level at increasing lags: ``O(log W)``
   merges per row, one sort per backfill, no per-window re-aggregation.
4. A row is published iff its last tile is within the ttl (``ds - d < ttl``).
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from featurekiln.compute import aggregations
from featurekiln.compute.tiles import DAY, partial_column
from featurekiln.planning.intervals import Interval
from featurekiln.definitions.models import FeatureView

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

DS = "_ds"
# Each level covers RADIX times the rows of the one below. Spark's Window operator
# costs more per operator than per lag column, so a wide radix (few operators,
# several lags each) is faster than doubling: a 90d window needs 3 operators.
RADIX = 8
EPOCH = date(1970, 1, 1)


def _epoch_day(day: date) -> int:
    return (day - EPOCH).days


def _digits(width: int) -> list[int]:
    """Base-RADIX digits of ``width``, least significant first."""
    out = []
    while width:
        out.append(width % RADIX)
        width //= RADIX
    return out


def _level(column: str, k: int) -> str:
    return f"{column}__l{k}"


def snapshots(tiles: DataFrame, view: FeatureView, interval: Interval) -> DataFrame:
    """Snapshots ``interval[0] <= ds < interval[1]`` of ``view`` from its tiles.

    Args:
        tiles: the output of :func:`featurekiln.compute.tiles.build_tiles`, covering
            at least the days ``interval[0] - horizon + 1 .. interval[1] - 1``.
        view: the definition.
        interval: half-open range of snapshot days.

    Returns:
        The feature table rows: keys, ``ds`` (date), ``feature_ts`` (the cut-off,
        ``ds + 1`` at 00:00 UTC), then the features in definition order.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    keys = view.keys
    first, stop = _epoch_day(interval[0]), _epoch_day(interval[1])
    horizon, ttl = view.horizon_days, view.ttl_days
    by_key = Window.partitionBy(*keys).orderBy(DS)

    # 1. Grid: each tile row expands to the days it can be seen from.
    next_day = F.lead(F.col(DAY)).over(Window.partitionBy(*keys).orderBy(DAY))
    last_row = F.least(F.coalesce(next_day - 1, F.lit(stop - 1)), F.col(DAY) + (horizon - 1), F.lit(stop - 1))
    partial_names = [c for c in tiles.columns if c.startswith("_p")]
    grid = tiles.where(F.col(DAY) < stop).select(*keys, DAY, *partial_names, last_row.alias("_last"))
    grid = grid.select(*keys, DAY, *partial_names, F.explode(F.sequence(F.col(DAY), F.col("_last"))).alias(DS))
    on_tile = F.col(DS) == F.col(DAY)
    grid = grid.select(*keys, DAY, DS, *[F.when(on_tile, F.col(c)).alias(_level(c, 0)) for c in partial_names])

    # 2. Levels: L(k+1) merges RADIX lags of Lk, so it covers RADIX**(k+1) rows.
    needs: dict[str, tuple[str, int]] = {}
    for i, feature in enumerate(view.features):
        depth = len(_digits(view.window_days(feature))) - 1
        for partial in aggregations.partials(feature.agg):
            name = partial_column(i, partial.suffix)
            needs[name] = (partial.merge, max(needs.get(name, (partial.merge, 0))[1], depth))
    for k in range(max((d for _, d in needs.values()), default=0)):
        step = RADIX**k
        new = []
        for name, (kind, depth) in needs.items():
            if k < depth:
                lags = [F.lag(_level(name, k), j * step).over(by_key) for j in range(1, RADIX)]
                new.append(aggregations.merge(kind, [F.col(_level(name, k)), *lags]).alias(_level(name, k + 1)))
        grid = grid.select("*", *new)

    # 3. A window of W rows: for each base-RADIX digit of W, that many blocks of its level.
    def window_merge(name: str, kind: str, width: int) -> Column:
        blocks: list[Column] = []
        offset = 0
        for k, digit in reversed(list(enumerate(_digits(width)))):
            for _ in range(digit):
                blocks.append(F.col(_level(name, k)) if offset == 0 else F.lag(_level(name, k), offset).over(by_key))
                offset += RADIX**k
        return aggregations.merge(kind, blocks)

    types = dict(tiles.dtypes)
    features = []
    for i, feature in enumerate(view.features):
        width = view.window_days(feature)
        merged = [
            window_merge(partial_column(i, p.suffix), p.merge, width) for p in aggregations.partials(feature.agg)
        ]
        value = aggregations.final_value(feature.agg, merged)
        if feature.agg == "sum":
            value = value.cast(types[partial_column(i, "s")])
        features.append(value.alias(feature.name))

    ds = F.date_from_unix_date(F.col(DS))
    cutoff = F.timestamp_seconds((F.col(DS) + 1).cast("bigint") * 86400)
    out = grid.select(*keys, F.col(DAY), F.col(DS), *features)
    # 4. Publish rows inside the snapshot range whose key was seen within the ttl.
    out = out.where((F.col(DS) >= first) & (F.col(DS) < stop) & (F.col(DS) - F.col(DAY) < ttl))
    return out.select(*keys, ds.alias("ds"), cutoff.alias("feature_ts"), *[f.name for f in view.features])
