"""Assemble daily snapshots from tiles in one vectorized pass, at a cost that does not grow with the window.

Snapshot ``ds`` aggregates the tiles of days ``ds - W + 1 .. ds`` (its cut-off is
``ds + 1`` at 00:00 UTC and windows are whole days, so tiles are exact). The
tiles may come from any producer (built from events, or read back from a
store): the assembly needs only keys, ``_day`` and the partial columns.

How:

1. **Shuffle once.** Tiles that no snapshot of the interval can see are dropped;
   the rest are hash-partitioned by key and sorted by key and day, and each Spark
   task streams its partition through :class:`Assembler` with ``mapInArrow``.
   The assembler cuts the stream at key boundaries (a key split across two Arrow
   batches waits for the next one), so memory is bounded by a batch plus one
   key's tiles, and nothing reaches the driver.
2. **Grid.** Per group of whole keys, every tile of day ``d`` owns the rows of days
   ``d .. min(next tile - 1, d + H - 1)`` of one flat array (``H`` is the horizon,
   the longest of ttl and windows); a key's last tile owns the rows up to the
   interval's last day, and as many more as the next key's windows reach back
   before its first row: ``P - (first - d0)`` where ``P + 1`` is the longest window,
   ``first`` the interval's first day and ``d0`` the next key's first tile day
   (none when ``d0 <= first - P``, as for any key active a window before the
   interval; a nightly run's grid is a third shorter than with ``P`` rows after
   every key). Inside a run of rows the days are consecutive; each run ends with at
   least ``P`` tile-free rows before the next run starts, and each key with as
   many as the next key's published windows reach into it. So the ``W`` rows
   ending at the row of a published day ``ds`` hold exactly the tiles of that
   key's days ``ds - W + 1 .. ds``: if the rows cross a gap or the start of the
   key, the rows before it are tile-free.
3. **Windows.** Each feature is a sliding-window reduction of ``W`` rows of the
   flat array, by a kernel of :mod:`featurekiln.compute.scans` whose cost per row
   does not depend on ``W``: exact running totals for integer counts and sums,
   block scans for float sums and for min/max (non-numeric values by their rank
   in sort order), the latest/earliest non-empty row for last/first, and a
   difference array for count_distinct.
4. **Rows.** A row is published iff its day is in the interval and its owning
   (latest) tile is within the ttl (``ds - d < ttl``).

``first``/``last`` need no comparison of the partials: a day's partial orders by
``±micros(ts)`` of an event of that day, so across days the latest (earliest)
non-empty day wins, and that day's partial already holds the tie-break.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from featurekiln.compute import scans
from featurekiln.compute.tiles import DAY, feature_columns
from featurekiln.definitions.models import FeatureView
from featurekiln.planning.intervals import Interval, epoch_days

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType

MICROS_PER_DAY = 86_400_000_000
# Values held per processing group (grid rows x columns): bounds the worker's memory.
CELL_BUDGET = 1 << 22


@dataclass(frozen=True)
class FeaturePlan:
    """One feature as the assembler computes it: aggregation, window in rows, tile columns."""

    name: str
    agg: str
    width: int
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Assembler:
    """The ``mapInArrow`` function: day-sorted tiles of whole keys in, snapshot rows out.

    Attributes:
        keys: the entity key columns.
        first: first snapshot day (days since 1970-01-01).
        stop: the day after the last snapshot.
        ttl: a key has a row on ``ds`` iff it has a tile in ``ds - ttl + 1 .. ds``.
        horizon: the longest of ttl and windows.
        features: the features in definition order.
        cells: grid cells (rows x columns) assembled at once; a group holds at
            least one whole key. Bounds the worker's memory whatever the number of keys.
    """

    keys: tuple[str, ...]
    first: int
    stop: int
    ttl: int
    horizon: int
    features: tuple[FeaturePlan, ...]
    cells: int = CELL_BUDGET

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """Assemble a partition's batches; a key split across batches waits for its end."""
        import pyarrow as pa

        carry: pa.RecordBatch | None = None
        for batch in batches:
            if batch.num_rows == 0:
                continue
            table = batch if carry is None else pa.concat_batches([carry, batch])
            starts = np.flatnonzero(self._key_starts(table))
            tail = int(starts[-1])  # the last key may go on in the next batch
            if tail > 0:
                yield from self._groups(table.slice(0, tail))
            carry = table.slice(tail)
        if carry is not None:
            yield from self._groups(carry)

    def _key_starts(self, table: pa.RecordBatch) -> np.ndarray:
        import pyarrow.compute as pc

        starts = np.zeros(table.num_rows, dtype=bool)
        starts[0] = True
        if table.num_rows > 1:
            for key in self.keys:
                column = table.column(key)
                changed = pc.not_equal(column.slice(1), column.slice(0, table.num_rows - 1)).fill_null(True)
                starts[1:] |= changed.to_numpy(zero_copy_only=False)
        return starts

    def _groups(self, table: pa.RecordBatch) -> Iterator[pa.RecordBatch]:
        """Cut whole keys into groups of at most ``cells`` grid cells plus one key's, and assemble each."""
        starts = self._key_starts(table)
        day = table.column(DAY).to_numpy().astype(np.int64)
        rows = self._run_lengths(day, starts)
        key_starts = np.flatnonzero(starts)
        key_rows = np.add.reduceat(rows, key_starts)
        budget = max(1, self.cells // (len(self.features) + len(self.keys) + 2))
        group = (np.cumsum(key_rows) - key_rows) // budget
        cuts = [*key_starts[np.flatnonzero(np.diff(group)) + 1].tolist(), table.num_rows]
        begin = 0
        for end in cuts:
            out = self._assemble(table.slice(begin, end - begin), day[begin:end], rows[begin:end])
            if out is not None:
                yield out
            begin = end

    def _run_lengths(self, day: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """Grid rows each tile owns (step 2 of the module docstring)."""
        last_of_key = np.append(starts[1:], True)
        following = np.append(day[1:], 0)
        pad = max(f.width for f in self.features) - 1
        inside = np.minimum(following - 1, day + self.horizon - 1)
        # The rows the next key's windows reach back before its first row: none when its first tile is P days
        # or more before the interval (its first published row has P rows of its own behind it).
        reach = np.where(np.arange(len(day)) < len(day) - 1, pad - np.clip(self.first - following, 0, pad), 0)
        last = np.minimum(day + self.horizon - 1, np.maximum(self.stop - 1, day + reach))
        return np.where(last_of_key, last, inside) - day + 1

    def _assemble(self, table: pa.RecordBatch, day: np.ndarray, rows: np.ndarray) -> pa.RecordBatch | None:
        import pyarrow as pa

        offset = np.cumsum(rows) - rows  # the row of each tile
        tile_of_row = np.repeat(np.arange(len(day)), rows)
        row_day = np.repeat(day - offset, rows) + np.arange(int(rows.sum()))
        keep = (row_day >= self.first) & (row_day < self.stop) & (row_day - day[tile_of_row] < self.ttl)
        out = np.flatnonzero(keep)
        if len(out) == 0:
            return None
        grid = _Grid(offset=offset, tile_of_row=tile_of_row, out=out)
        ds = row_day[out]
        columns = [table.column(k).take(pa.array(tile_of_row[out])) for k in self.keys]
        columns.append(pa.array(ds.astype(np.int32), type=pa.date32()))
        columns.append(pa.array((ds + 1) * MICROS_PER_DAY, type=pa.timestamp("us", tz="UTC")))
        columns.extend(_feature(feature, [table.column(c) for c in feature.columns], grid) for feature in self.features)
        names = [*self.keys, "ds", "feature_ts", *(f.name for f in self.features)]
        return pa.RecordBatch.from_arrays(columns, names=names)


@dataclass(frozen=True)
class _Grid:
    """The flat row layout of a group: each tile's row, each row's tile, the published rows."""

    offset: np.ndarray
    tile_of_row: np.ndarray
    out: np.ndarray

    @property
    def size(self) -> int:
        return len(self.tile_of_row)

    def spread(self, values: np.ndarray, fill: object) -> np.ndarray:
        """Tile values on their rows, ``fill`` elsewhere."""
        dense = np.full(self.size, fill, dtype=values.dtype)
        dense[self.offset] = values
        return dense


def _feature(feature: FeaturePlan, parts: list[pa.Array], grid: _Grid) -> pa.Array:
    """One feature's values on the published rows of ``grid``."""
    import pyarrow as pa

    width, agg = feature.width, feature.agg
    if agg == "count":
        return pa.array(scans.running_total(grid.spread(_integers(parts[0]), 0), width)[grid.out])
    if agg == "count_distinct":
        return pa.array(_distinct(parts[0], width, grid))
    if agg in ("first", "last"):
        present = grid.spread(_valid(parts[0]), False)
        pick = scans.latest_present if agg == "last" else scans.earliest_present
        row = pick(present, width)[grid.out]
        return _take(parts[0].field("v"), grid.tile_of_row[row], row < 0)
    if agg in ("min", "max"):
        return _extreme(parts[0], agg, width, grid)
    total, empty = _total(parts[0], width, grid)
    if agg == "sum":
        return _array(total, empty, parts[0].type)
    counts = scans.running_total(grid.spread(_integers(parts[1]), 0), width)[grid.out]
    mean = np.divide(total.astype(np.float64), counts, out=np.zeros(len(counts)), where=counts > 0)
    return pa.array(mean, mask=counts <= 0)


def _total(part: pa.Array, width: int, grid: _Grid) -> tuple[np.ndarray, np.ndarray]:
    """Window sums of a ``sum`` partial on the published rows, and where the window is empty."""
    import pyarrow as pa

    empty = scans.running_total(grid.spread(_valid(part).astype(np.int64), 0), width)[grid.out] == 0
    if pa.types.is_integer(part.type):
        return scans.running_total(grid.spread(_integers(part), 0), width)[grid.out], empty
    if pa.types.is_floating(part.type):
        values = part.cast(pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False)
        return scans.ordered_sum(grid.spread(values, 0.0), width, grid.out), empty
    # Decimals and other exact types: Python objects, still O(1) per row.
    values = np.array([0 if v is None else v for v in part.to_pylist()], dtype=object)
    return scans.block_scan(grid.spread(values, 0), width, np.add, 0)[grid.out], empty


def _extreme(part: pa.Array, agg: str, width: int, grid: _Grid) -> pa.Array:
    """min/max: numbers directly, every other type by its rank in sort order."""
    import pyarrow as pa
    import pyarrow.compute as pc

    op = np.minimum if agg == "min" else np.maximum
    valid = _valid(part)
    if pa.types.is_integer(part.type) or pa.types.is_floating(part.type):
        kind = np.int64 if pa.types.is_integer(part.type) else np.float64
        limits = np.iinfo(kind) if kind is np.int64 else None
        identity = (limits.max if agg == "min" else limits.min) if limits else (np.inf if agg == "min" else -np.inf)
        values = part.cast(pa.from_numpy_dtype(kind)).fill_null(identity).to_numpy(zero_copy_only=False)
        empty = scans.running_total(grid.spread(valid.astype(np.int64), 0), width)[grid.out] == 0
        best = scans.block_scan(grid.spread(values, identity), width, op, identity)[grid.out]
        return _array(best, empty, part.type)
    order = pc.sort_indices(part).to_numpy()  # nulls last, so they never win a min below
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    identity = len(order) if agg == "min" else -1
    rank[~valid] = identity
    best = scans.block_scan(grid.spread(rank, identity), width, op, identity)[grid.out]
    empty = (best < 0) | (best >= len(order))
    return _take(part, order[np.where(empty, 0, best)], empty)


def _distinct(part: pa.Array, width: int, grid: _Grid) -> np.ndarray:
    import pyarrow.compute as pc

    values = part.flatten()
    parents = pc.list_parent_indices(part).to_numpy()
    kept = _valid(values)
    codes = pc.dictionary_encode(values).indices.to_numpy(zero_copy_only=False)
    positions = grid.offset[parents[kept]]
    return scans.distinct_counts(positions, codes[kept].astype(np.int64), width, grid.size)[grid.out]


def _valid(part: pa.Array) -> np.ndarray:
    return part.is_valid().to_numpy(zero_copy_only=False)


def _integers(part: pa.Array) -> np.ndarray:
    import pyarrow as pa

    return part.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)


def _take(values: pa.Array, index: np.ndarray, empty: np.ndarray) -> pa.Array:
    import pyarrow as pa

    return values.take(pa.array(np.where(empty, 0, index), mask=empty))


def _array(values: np.ndarray, empty: np.ndarray, kind: pa.DataType) -> pa.Array:
    import pyarrow as pa

    if values.dtype == object:
        return pa.array([None if e else v for v, e in zip(values, empty, strict=True)], type=kind)
    return pa.array(values, mask=empty).cast(kind)


def _output_schema(tiles: StructType, view: FeatureView) -> StructType:
    from pyspark.sql.types import DateType, DoubleType, LongType, StructField, StructType, TimestampType

    fields = [tiles[k] for k in view.keys]
    fields += [StructField("ds", DateType()), StructField("feature_ts", TimestampType())]
    for i, feature in enumerate(view.features):
        first_partial = feature_columns(view, i)[0]
        if feature.agg in ("count", "count_distinct"):
            kind = LongType()
        elif feature.agg == "avg":
            kind = DoubleType()
        elif feature.agg in ("first", "last"):
            kind = tiles[first_partial].dataType["v"].dataType
        else:
            kind = tiles[first_partial].dataType
        fields.append(StructField(feature.name, kind, True))
    return StructType(fields)


def assembler(view: FeatureView, interval: Interval) -> Assembler:
    """The :class:`Assembler` of ``view``'s snapshots ``interval[0] <= ds < interval[1]``."""
    features = tuple(
        FeaturePlan(
            name=feature.name,
            agg=feature.agg,
            width=view.window_days(feature),
            columns=feature_columns(view, i),
        )
        for i, feature in enumerate(view.features)
    )
    first, stop = epoch_days(interval)
    return Assembler(keys=tuple(view.keys), first=first, stop=stop, ttl=view.ttl_days, horizon=view.horizon_days,
                     features=features)


def assembly_input(tiles: DataFrame, view: FeatureView, interval: Interval) -> DataFrame:
    """The tiles the snapshots of ``interval`` can see, partitioned by key and sorted by key and day: what
    :class:`Assembler` reads."""
    from pyspark.sql import functions as F

    first, stop = epoch_days(interval)
    # Features may share partials.
    columns = list(dict.fromkeys(c for i in range(len(view.features)) for c in feature_columns(view, i)))
    seen = (F.col(DAY) > first - view.horizon_days) & (F.col(DAY) < stop)
    return (
        tiles.where(seen)
        .select(*view.keys, F.col(DAY).cast("int").alias(DAY), *columns)
        .repartition(*view.keys)
        .sortWithinPartitions(*view.keys, DAY)
    )


def snapshots(tiles: DataFrame, view: FeatureView, interval: Interval) -> DataFrame:
    """Snapshots ``interval[0] <= ds < interval[1]`` of ``view`` from its tiles.

    Args:
        tiles: daily tiles as :func:`featurekiln.compute.tiles.build_tiles` makes
            them (keys, ``_day``, partial columns), covering at least the days
            ``interval[0] - horizon + 1 .. interval[1] - 1``; other days are ignored.
        view: the definition.
        interval: half-open range of snapshot days.

    Returns:
        The feature table rows: keys, ``ds`` (date), ``feature_ts`` (the cut-off,
        ``ds + 1`` at 00:00 UTC), then the features in definition order.
    """
    return assembly_input(tiles, view, interval).mapInArrow(assembler(view, interval),
                                                            _output_schema(tiles.schema, view))
