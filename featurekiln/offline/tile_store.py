"""Stored daily tiles: one Delta table per view under ``_tiles/<view>``, partitioned by blocks of 32 days.

A tile holds the mergeable partials of every feature of a view per key and
event day (:mod:`featurekiln.compute.tiles`), in columns named by partial group
(:meth:`FeatureView.partial_group`). Every write replaces whole days in one
commit whose ``userMetadata`` says which days and which groups they now hold::

    {"view", "kind": "tiles", "groups": [...], "start", "end", "read": "source" | "tiles+source",
     "run_id", "trigger"}

so the table's own Delta log is its ledger (:func:`held_tiles`): a tile day is
known with exactly the groups of the last commit that wrote it, whatever
happened to the process after that commit.

The table is partitioned by ``_block`` (``_day`` floor-divided by 32), not by
day: a year of tiles is a dozen files rather than 365 small ones, which halves
the time to write them and to read them back. A write replaces its days with a
``replaceWhere`` on ``_block`` and ``_day`` (Delta rewrites the other days of a
block it touches, in the same commit); reads filter on ``_day`` and Delta skips
the files by their ``_day`` statistics. A table written before blocks (partitioned
by ``_day``) keeps that layout.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

from featurekiln.layout import BLOCK_DAYS, TILE_BLOCK, TILE_DAY
from featurekiln.offline.delta_log import DeltaLog
from featurekiln.offline.delta_table import CommitInfo, replace_days, table_exists
from featurekiln.offline.materialized import each_day
from featurekiln.planning.intervals import Interval, epoch_days
from featurekiln.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

KIND = "tiles"


def held_tiles(settings: Settings, path: str) -> dict[date, frozenset[str]]:
    """Every tile day the table at ``path`` holds, with the partial groups it holds them for (read without Spark)."""
    held: dict[date, frozenset[str]] = {}
    for commit in DeltaLog.of(path, settings).commits():
        body = commit.metadata
        if body.get("kind") != KIND:
            continue
        first, last = date.fromisoformat(str(body["start"])), date.fromisoformat(str(body["end"]))
        held.update(dict.fromkeys(each_day(first, last), frozenset(map(str, body["groups"]))))  # type: ignore[call-overload]
    return held


def tile_metadata(
    view: str, groups: list[str], interval: Interval, *, read: str, run_id: str, trigger: str
) -> dict[str, object]:
    """The commit metadata of a tile write: its inclusive day range and the groups those days now hold."""
    return {
        "view": view,
        "kind": KIND,
        "groups": sorted(groups),
        "start": interval[0].isoformat(),
        "end": (interval[1] - timedelta(days=1)).isoformat(),
        "read": read,
        "run_id": run_id,
        "trigger": trigger,
    }


def block_where(interval: Interval) -> tuple[str, int]:
    """The ``replaceWhere`` predicate of a write of the tile days ``interval`` into their blocks, and how many
    blocks it touches."""
    first, stop = epoch_days(interval)
    low, high = first // BLOCK_DAYS, (stop - 1) // BLOCK_DAYS
    return (f"{TILE_BLOCK} >= {low} AND {TILE_BLOCK} <= {high} AND {TILE_DAY} >= {first} AND {TILE_DAY} < {stop}",
            high - low + 1)


def write_tiles(
    spark: SparkSession, settings: Settings, path: str, tiles: DataFrame, interval: Interval,
    metadata: dict[str, object], name: str,
) -> CommitInfo:
    """Replace the tile days ``interval`` by ``tiles`` in one commit (new partial columns are added).

    The days are written into their 32-day blocks; a table partitioned by day
    (written before blocks) stays so.
    """
    from pyspark.sql import functions as F

    tiles = tiles.drop(TILE_BLOCK)
    if table_exists(spark, path) and TILE_BLOCK not in spark.read.format("delta").load(path).columns:
        first, stop = epoch_days(interval)
        return replace_days(spark, settings, path, tiles, interval, metadata, name,
                            where=f"{TILE_DAY} >= {first} AND {TILE_DAY} < {stop}", partition=TILE_DAY, evolve=True)
    where, blocks = block_where(interval)
    tiles = tiles.withColumn(TILE_BLOCK, F.floor(F.col(TILE_DAY) / BLOCK_DAYS).cast("int"))
    return replace_days(spark, settings, path, tiles, interval, metadata, name, where=where, partition=TILE_BLOCK,
                        parts=blocks, evolve=True)


def read_tiles(spark: SparkSession, path: str, interval: Interval, columns: list[str]) -> DataFrame:
    """The stored tiles of days ``interval`` with the keys and ``columns`` asked for (files skipped by ``_day``)."""
    from pyspark.sql import functions as F

    first, stop = epoch_days(interval)
    frame = spark.read.format("delta").load(path)
    return frame.where((F.col(TILE_DAY) >= first) & (F.col(TILE_DAY) < stop)).select(*columns)
