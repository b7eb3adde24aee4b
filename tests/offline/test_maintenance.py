"""Table maintenance on real Spark and Delta: a warehouse after nightly runs with lookback, then ``maintain``.

The retention is set per test through ``Settings.retain_days``: 1 day keeps
every file written during the test (compaction then runs, VACUUM deletes
nothing), 0 days lets VACUUM delete every replaced file (no run is concurrent
with those tests). Versions are judged by their commit times, as written: no
timestamp is aged.
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pytest
import yaml

from featurekiln.settings import Settings
from tests.offline.test_incremental import RAW, VIEW, day, land, make_events, view_of

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

NIGHTS = 4


def listing(root: Path) -> dict[str, tuple[int, int]]:
    """Every file below ``root`` with its size and modification time (ns)."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def data_files(table: Path) -> set[str]:
    return {str(p.relative_to(table)) for p in table.rglob("*.parquet") if "_delta_log" not in p.parts}


def live_files(spark: SparkSession, table: Path) -> set[str]:
    from urllib.parse import unquote

    root = table.resolve().as_uri().replace("file:///", "file:/")
    return {unquote(f.replace(root, "").lstrip("/")) for f in spark.read.format("delta").load(str(table)).inputFiles()}


def project_settings(base: Path, retain_days: int) -> Settings:
    """The settings of a project below ``base`` whose one definition is the incremental tests' view."""
    defs = base / "defs"
    defs.mkdir()
    (defs / f"{VIEW}.yaml").write_text(yaml.safe_dump(RAW))
    return Settings(defs_dir=defs, expectations_dir=base / "no_suites", warehouse=str(base / "wh"),
                    spark_master="local[2]", chunk_days=10, retain_days=retain_days)


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory, spark: SparkSession) -> Settings:
    """A warehouse after NIGHTS nightly runs with a 2-day lookback, and a stale leftover of each kind."""
    from featurekiln import runner

    settings = project_settings(tmp_path_factory.mktemp("maintain"), retain_days=1)
    root = Path(settings.warehouse)
    events = make_events()
    for landed in sorted(d for d in events["landed"].unique() if d <= day(NIGHTS)):
        land(root, events, landed)
    view = view_of(RAW)
    for n in range(1, NIGHTS + 1):
        runner.run(view, day(n), settings=settings, spark=spark)
    old = (pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=3)).timestamp()
    for kind, name in [("_staging", "old_run/2025-03-01_2025-03-02"), ("_quarantine", "old_failed/2025-03-01_2025-03-02"),
                       ("_rebuild", "oldfingerprint")]:
        folder = root / kind / VIEW / name
        folder.mkdir(parents=True)
        (folder / "part-0.parquet").write_bytes(b"x" * 100)
        os.utime(folder / "part-0.parquet", (old, old))
    reports = root / "_reports" / VIEW
    reports.mkdir(parents=True, exist_ok=True)
    for name in ("old_run.html", "old_run.json"):
        (reports / name).write_text("{}")
        os.utime(reports / name, (old, old))
    return settings


def partition_files(spark: SparkSession, table: Path) -> dict[str, int]:
    """Per partition value of ``table``, its live files."""
    found: dict[str, int] = {}
    for name in live_files(spark, table):
        value = name.rsplit("/", 1)[0].split("=", 1)[1]
        found[value] = found.get(value, 0) + 1
    return found


def spine(spark: SparkSession):  # noqa: ANN201 - a pyspark DataFrame
    rows = [(user, pd.Timestamp(day(n) + timedelta(days=1), tz="UTC").to_pydatetime()) for n in range(2, NIGHTS + 1)
            for user in range(25)]
    return spark.createDataFrame(rows, "user_id BIGINT, ts TIMESTAMP")


def training_rows(spark: SparkSession, settings: Settings, version: int | None) -> pd.DataFrame:
    from featurekiln.training import training_set

    # An old version lacks the later days: their rows get nulls, the same every time.
    frame = training_set(spark, spine(spark), [VIEW], settings=settings, allow_missing=True,
                         as_of={VIEW: version} if version is not None else None)
    return frame.toPandas().sort_values(["ts", "user_id"]).reset_index(drop=True)


def test_maintenance_keeps_every_reader_and_reclaims_what_the_retention_allows(
    spark: SparkSession, nights: Settings
) -> None:
    """Dry run changes nothing; a real run compacts and keeps versions inside the retention readable; with
    retention 0 storage equals the live files, an older version is refused clearly, and the ledger, the plan
    and the table are unchanged throughout."""
    from featurekiln import runner
    from featurekiln.layout import history_path, table_path, tiles_path
    from featurekiln.offline.delta_log import DeltaLog
    from featurekiln.offline.delta_table import day_fingerprints
    from featurekiln.offline.maintenance import maintain, open_partitions
    from featurekiln.offline.retention import RetentionError
    from featurekiln.offline.tile_store import held_tiles

    settings = nights
    root = Path(settings.warehouse)
    view = view_of(RAW)
    features, tiles, runs = (Path(p) for p in (table_path(settings, VIEW), tiles_path(settings, VIEW),
                                               history_path(settings)))
    versions = [c.version for c in DeltaLog.of(str(features), settings).commits()]
    middle = versions[len(versions) // 2]
    ledger = day_fingerprints(settings, str(features))
    tiles_held = held_tiles(settings, str(tiles))
    plan = runner.plan_run(view, day(NIGHTS + 1), settings=settings)
    at_middle = training_rows(spark, settings, middle)
    latest = training_rows(spark, settings, None)
    for table in (features, tiles, runs):
        assert data_files(table) > live_files(spark, table), f"{table.name}: replaced files are on storage"

    def unchanged() -> None:
        assert day_fingerprints(settings, str(features)) == ledger
        assert held_tiles(settings, str(tiles)) == tiles_held
        assert runner.plan_run(view, day(NIGHTS + 1), settings=settings) == plan
        pd.testing.assert_frame_equal(training_rows(spark, settings, None), latest)

    before = listing(root)
    dry = maintain(spark, settings, [view], dry_run=True)
    assert listing(root) == before, "a dry run changes nothing"
    by_table = {d.table: d for d in dry}
    still_open = open_partitions(settings, view)
    tile_files = partition_files(spark, tiles)
    crowded = {value for value, n in tile_files.items() if n > 1}
    assert any(still_open["tiles"](v) for v in crowded), "night after night, the filling tile block gains files"
    assert by_table["tiles"].compacted == sum(n for v, n in tile_files.items() if n > 1 and not still_open["tiles"](v))
    assert any("the next night writes into uncompacted" in note for note in by_table["tiles"].notes), by_table["tiles"]
    assert by_table["leftovers"].reclaimed_files == 5, by_table["leftovers"]

    done = maintain(spark, settings, [view])
    by_table = {d.table: d for d in done}
    assert by_table["tiles"].compacted == dry[[d.table for d in dry].index("tiles")].compacted
    assert by_table["runs"].compacted > 1 and len(live_files(spark, runs)) == 1
    for name, table in (("features", features), ("tiles", tiles)):
        crowded = {value for value, n in partition_files(spark, table).items() if n > 1}
        assert all(still_open[name](value) for value in crowded), (
            f"{name}: one file per partition after compaction, but for those the next night writes into")
    for entry in done:
        if entry.table != "leftovers":
            assert entry.checkpoint is not None and entry.checkpoint == max(
                c.version for c in DeltaLog.of(entry.path, settings).commits()), entry
    assert not (root / "_staging" / VIEW).exists() or not any((root / "_staging" / VIEW).iterdir())
    assert not any((root / "_reports" / VIEW).glob("old_run.*"))
    assert not (root / "_rebuild" / VIEW / "oldfingerprint").exists()
    pd.testing.assert_frame_equal(training_rows(spark, settings, middle), at_middle)  # inside the retention
    unchanged()

    again = maintain(spark, settings, [view], dry_run=True)
    assert all(d.compacted == 0 and d.reclaimed_files == 0 for d in again), "a second pass finds nothing"

    # Without the retention check, the old version's files are gone: Spark's own error, not one a user can read.
    zero = replace(settings, retain_days=0)
    maintain(spark, zero, [view])
    for table in (features, tiles, runs):
        assert data_files(table) == live_files(spark, table), f"{table.name}: only live files are left"
    with pytest.raises(Exception) as raw:  # noqa: PT011 - whatever Spark raises for a missing file
        spark.read.format("delta").option("versionAsOf", middle).load(str(features)).collect()
    assert "RetentionError" not in type(raw.value).__name__
    with pytest.raises(RetentionError, match="retention of 0 day"):
        training_rows(spark, zero, middle)
    newest = max(c.version for c in DeltaLog.of(str(features), settings).commits())
    pd.testing.assert_frame_equal(training_rows(spark, zero, newest), latest)  # the latest version is never refused
    with pytest.raises(RetentionError):  # the last version a run wrote was replaced by maintenance's own commits
        training_rows(spark, zero, versions[-1])
    unchanged()
