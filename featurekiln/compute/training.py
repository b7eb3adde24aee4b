"""Point-in-time joins of a spine with feature tables, on Spark.

A spine row at time ``t`` gets the snapshot ``ds = date_utc(t) - 1 day`` of each
view: a left equi-join on ``(keys, ds)``. A feature table has at most one row per
``(keys, ds)``, so a left join can neither drop nor repeat a spine row: every
spine row, duplicates and rows with null keys or timestamps included, comes out
exactly once (nulls never match, so those rows get null features). The views
are joined one after another; each join is a shuffle (or a broadcast, when Spark
finds the needed snapshot rows small) and adaptive execution splits partitions
skewed by a few very hot keys. Nothing is collected to the driver but the
per-day row counts of the spine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from featurekiln.errors import TrainingSetError
from featurekiln.planning.training import ViewSelection

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, Observation

DS = "__kiln_ds"
_INTEGRAL = frozenset({"tinyint", "smallint", "int", "bigint"})
_MICROS_PER_DAY = 86_400_000_000


@dataclass(frozen=True)
class FeatureInput:
    """One view to join: what is selected, and its feature table limited to the usable ``ds`` days.

    ``frame`` has the view's key columns, ``ds`` and at least the selected features.
    """

    selection: ViewSelection
    frame: DataFrame


def snapshot_day(spine: DataFrame, timestamp: str) -> Column:
    """``date_utc(t) - 1 day`` for the spine's ``timestamp`` column, whatever the session time zone.

    ``timestamp`` may be a timestamp (an instant), a timestamp_ntz (read as UTC) or a
    date (midnight UTC).

    Raises:
        TrainingSetError: the column is missing or of another type.
    """
    from pyspark.sql import functions as F

    types = dict(spine.dtypes)
    if timestamp not in types:
        raise TrainingSetError(f"the spine has no timestamp column {timestamp!r} (columns: {', '.join(spine.columns)})")
    kind = types[timestamp]
    column = F.col(timestamp)
    if kind == "timestamp":
        day = F.date_from_unix_date(F.floor(F.unix_micros(column) / _MICROS_PER_DAY).cast("int"))
    elif kind == "timestamp_ntz":
        day = F.to_date(column)
    elif kind == "date":
        day = column
    else:
        raise TrainingSetError(
            f"the spine's timestamp column {timestamp!r} is {kind}, not a timestamp or date; cast it first"
        )
    return F.date_sub(day, 1)


def spine_days(spine: DataFrame, timestamp: str) -> dict[date | None, int]:
    """Spine rows per snapshot day they need (``None``: rows with a null timestamp). One Spark aggregation."""
    counted = spine.groupBy(snapshot_day(spine, timestamp).alias(DS)).count().collect()
    return {row[DS]: int(row["count"]) for row in counted}


def check_key_types(spine: DataFrame, inputs: list[FeatureInput]) -> None:
    """Refuse spine key columns whose type differs from the view's key type (integer widths may differ).

    Raises:
        TrainingSetError: one line per mismatching key.
    """
    spine_types = dict(spine.dtypes)
    problems = []
    for item in inputs:
        table_types = dict(item.frame.dtypes)
        for key, column in zip(item.selection.view.keys, item.selection.key_columns, strict=True):
            have, want = spine_types[column], table_types[key]
            if have != want and not (have in _INTEGRAL and want in _INTEGRAL):
                problems.append(
                    f"{item.selection.view.name}: key {key} is {want} in the feature table but spine column "
                    f"{column!r} is {have}; cast the spine column (a type mismatch would silently match nothing)"
                )
    if problems:
        raise TrainingSetError("\n".join(problems))


def hit_column(index: int) -> str:
    """The helper column that is true where view number ``index`` matched a snapshot row."""
    return f"__kiln_hit{index}"


def point_in_time_join(
    spine: DataFrame, timestamp: str, inputs: list[FeatureInput], observation: Observation | None = None
) -> DataFrame:
    """The spine with ``<view>__<feature>`` columns from each view's snapshot ``date_utc(t) - 1 day``.

    Args:
        spine: any DataFrame; every row comes out exactly once, with all its columns first.
        timestamp: the spine's event-time column (see :func:`snapshot_day`).
        inputs: the views to join, their frames limited to the days that may be used.
        observation: if given, filled when the result is computed (written, counted) with
            ``rows``, per view ``<view>__matched`` (rows that found a snapshot row) and per
            output column ``<column>__nulls``.

    Raises:
        TrainingSetError: the timestamp column is unusable or a key's type does not match.
    """
    from pyspark.sql import functions as F

    check_key_types(spine, inputs)
    out = spine.withColumn(DS, snapshot_day(spine, timestamp))
    helpers = [DS]
    for index, item in enumerate(inputs):
        selection = item.selection
        keys = [f"__kiln_k{index}_{j}" for j in range(len(selection.key_columns))]
        right_ds = f"__kiln_ds{index}"
        right = item.frame.select(
            *[F.col(key).alias(alias) for key, alias in zip(selection.view.keys, keys, strict=True)],
            F.col("ds").alias(right_ds),
            F.lit(True).alias(hit_column(index)),
            *[F.col(f).alias(selection.output_column(f)) for f in selection.features],
        )
        condition = F.col(DS) == F.col(right_ds)
        for column, alias in zip(selection.key_columns, keys, strict=True):
            condition = condition & (F.col(column) == F.col(alias))
        out = out.join(right, on=condition, how="left").drop(right_ds, *keys)
        helpers.append(hit_column(index))
    if observation is not None:
        metrics = [F.count(F.lit(1)).alias("rows")]
        for index, item in enumerate(inputs):
            metrics.append(F.count(hit_column(index)).alias(f"{item.selection.view.name}__matched"))
            metrics += [F.count_if(F.col(c).isNull()).alias(f"{c}__nulls") for c in item.selection.output_columns]
        out = out.observe(observation, *metrics)
    return out.drop(*helpers)
