"""The stored tiles' layout: 32-day blocks, days replaced inside a block, tables written by day keep their layout."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from featurekiln.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

EPOCH = date(1970, 1, 1)


def _tiles(spark: SparkSession, first: date, days: int, value: int) -> DataFrame:
    """Tiles of keys 1 and 2 for ``days`` days from ``first``: ``_p_n`` is ``value`` plus the day's number."""
    from pyspark.sql.types import IntegerType, LongType, StructField, StructType

    start = (first - EPOCH).days
    rows = [(key, start + n, value + n) for n in range(days) for key in (1, 2)]
    schema = StructType([StructField("user_id", LongType()), StructField("_day", IntegerType()),
                         StructField("_p_n", LongType())])
    return spark.createDataFrame(rows, schema)


def _write(spark: SparkSession, settings: Settings, path: str, first: date, days: int, value: int) -> None:
    from featurekiln.offline.tile_store import tile_metadata, write_tiles

    interval = (first, first + timedelta(days=days))
    metadata = tile_metadata("v", ["g"], interval, read="source", run_id=f"r{value}", trigger="test")
    write_tiles(spark, settings, path, _tiles(spark, first, days, value), interval, metadata, "v")


def _stored(spark: SparkSession, path: str) -> dict[tuple[int, int], int]:
    return {(r["user_id"], r["_day"]): r["_p_n"] for r in spark.read.format("delta").load(path).collect()}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(warehouse=str(tmp_path / "wh"), spark_master="local[2]")


def test_tiles_are_stored_in_32_day_blocks(spark: SparkSession, settings: Settings, tmp_path: Path) -> None:
    from delta.tables import DeltaTable

    path = str(tmp_path / "tiles")
    first = date(1969, 12, 1)  # days -31 .. 68 since 1970-01-01: blocks -1, 0, 1 and 2
    _write(spark, settings, path, first, 100, 0)
    detail = DeltaTable.forPath(spark, path).detail().first()
    assert list(detail["partitionColumns"]) == ["_block"]
    assert detail["numFiles"] == 4, "one file per block"
    rows = spark.read.format("delta").load(path).collect()
    assert len(rows) == 200
    assert all(r["_block"] == r["_day"] // 32 for r in rows)
    assert sorted(p.name for p in Path(path).glob("_block=*")) == ["_block=-1", "_block=0", "_block=1", "_block=2"]


def test_replacing_days_keeps_the_other_days_of_their_blocks(
    spark: SparkSession, settings: Settings, tmp_path: Path
) -> None:
    from featurekiln.offline.tile_store import held_tiles, read_tiles

    path = str(tmp_path / "tiles")
    first = date(2025, 1, 1)
    _write(spark, settings, path, first, 90, 0)
    before = _stored(spark, path)
    changed = first + timedelta(days=30)  # days 30..34: across the border of two blocks
    _write(spark, settings, path, changed, 5, 1000)
    after = _stored(spark, path)
    replaced = {(k, d) for k, d in before if 30 <= d - (first - EPOCH).days < 35}
    assert len(replaced) == 10
    assert {k: v for k, v in after.items() if k not in replaced} == {k: v for k, v in before.items() if k not in replaced}
    assert all(after[(key, d)] == 1000 + d - (changed - EPOCH).days for key, d in replaced)
    assert set(held_tiles(settings, path)) == {first + timedelta(days=n) for n in range(90)}
    window = read_tiles(spark, path, (changed, changed + timedelta(days=2)), ["user_id", "_day", "_p_n"]).collect()
    assert sorted((r["user_id"], r["_day"]) for r in window) == sorted(k for k in replaced if k[1] < (changed - EPOCH).days + 2)


def test_a_table_partitioned_by_day_keeps_its_layout(spark: SparkSession, settings: Settings, tmp_path: Path) -> None:
    from delta.tables import DeltaTable

    path = str(tmp_path / "tiles")
    first = date(2025, 1, 1)
    _tiles(spark, first, 40, 0).write.format("delta").partitionBy("_day").save(path)  # as featurekiln wrote them before
    _write(spark, settings, path, first + timedelta(days=10), 3, 500)
    assert list(DeltaTable.forPath(spark, path).detail().first()["partitionColumns"]) == ["_day"]
    stored = _stored(spark, path)
    assert len(stored) == 80
    start = (first - EPOCH).days
    assert {d - start for (_, d), v in stored.items() if v >= 500} == {10, 11, 12}


def test_a_write_replaces_its_days_in_the_blocks_that_hold_them() -> None:
    """Days 20452..20454 (2025-12-30..2026-01-01) lie in block 639; 20479..20480 straddle blocks 639 and 640."""
    from featurekiln.offline.tile_store import block_where

    assert block_where((date(2025, 12, 30), date(2026, 1, 2))) == (
        "_block >= 639 AND _block <= 639 AND _day >= 20452 AND _day < 20455", 1)
    assert block_where((date(2026, 1, 26), date(2026, 1, 28))) == (
        "_block >= 639 AND _block <= 640 AND _day >= 20479 AND _day < 20481", 2)
