"""The Delta feature table a backfill writes: idempotent, convergent, laid out as documented, atomic per chunk.

Uses the repository's sample definitions (``feature_defs/``) over small sample
sources from :mod:`featurekiln.samples`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest
import yaml

from featurekiln.samples import purchases_frame, write_sample_sources
from tests.oracle import assert_frames_match, expected_snapshots, frame_differences

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from featurekiln.runner import RunResult
    from featurekiln.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_DEFS = REPO_ROOT / "feature_defs"
VIEW = "user_purchases"
START = date(2025, 1, 1)
SAMPLE = {"start": START, "days": 40, "users": 200}
FULL_LAST = START + timedelta(days=29)  # 1..30 January
FULL_CHUNK_DAYS = 10

Collect = Callable[[Any], pd.DataFrame]


def day(n: int) -> date:
    """Day ``n`` of January 2025 (1-based)."""
    return START + timedelta(days=n - 1)


def settings_for(warehouse: Path, chunk_days: int = 30) -> Settings:
    from featurekiln.settings import Settings

    return Settings(defs_dir=SAMPLE_DEFS, warehouse=str(warehouse), spark_master="local[2]", chunk_days=chunk_days)


def run_backfill(
    spark: SparkSession, settings: Settings, first: date, last: date, chunk_days: int | None = None
) -> RunResult:
    from featurekiln.runner import backfill
    from featurekiln.definitions import load_catalog

    # The table's semantics, not the quality gate (tests/quality), are under test here.
    return backfill(
        load_catalog(settings.defs_dir)[VIEW], first, last, settings=settings, spark=spark, chunk_days=chunk_days,
        validate=False,
    )


def table_frame(spark: SparkSession, settings: Settings, collect: Collect) -> pd.DataFrame:
    from featurekiln.offline.delta_table import read_table

    return collect(read_table(spark, settings, VIEW))


def table_path(warehouse: Path) -> Path:
    return warehouse / "features" / VIEW


def keys_of_view() -> list[str]:
    return list(raw_definition()["entity"]["keys"])


def raw_definition() -> dict[str, Any]:
    return yaml.safe_load((SAMPLE_DEFS / f"{VIEW}.yaml").read_text())


def sorted_frame(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values([*keys_of_view(), "ds"], kind="mergesort").reset_index(drop=True)


@dataclass(frozen=True)
class Full:
    """The view backfilled over January 1-30 in chunks of 10 days, and its contents."""

    settings: Settings
    frame: pd.DataFrame
    result: RunResult


@pytest.fixture(scope="module")
def full(spark: SparkSession, collect_frame: Collect, tmp_path_factory: pytest.TempPathFactory) -> Full:
    warehouse = tmp_path_factory.mktemp("full") / "warehouse"
    write_sample_sources(warehouse, seed=3, **SAMPLE)
    settings = settings_for(warehouse, chunk_days=FULL_CHUNK_DAYS)
    result = run_backfill(spark, settings, START, FULL_LAST)
    return Full(settings, table_frame(spark, settings, collect_frame), result)


def test_full_backfill_matches_oracle(full: Full) -> None:
    events = purchases_frame(seed=3, **SAMPLE)
    completed = events[events["status"] == "completed"]  # the view's filter: status = 'completed'
    expected = expected_snapshots(completed, raw_definition(), START, FULL_LAST)
    assert len(expected) > 0
    assert_frames_match(full.frame, expected, keys_of_view())


def test_same_backfill_twice_gives_identical_contents(spark: SparkSession, full: Full, collect_frame: Collect) -> None:
    from delta.tables import DeltaTable

    path = str(table_path(Path(full.settings.warehouse)))
    version_before = DeltaTable.forPath(spark, path).history(1).first()["version"]
    run_backfill(spark, full.settings, START, FULL_LAST)
    assert DeltaTable.forPath(spark, path).history(1).first()["version"] > version_before, "the rerun committed nothing"

    again = table_frame(spark, full.settings, collect_frame)
    pd.testing.assert_frame_equal(sorted_frame(again), sorted_frame(full.frame), check_exact=True)


def test_overlapping_backfills_converge(
    spark: SparkSession, full: Full, warehouse: Path, collect_frame: Collect
) -> None:
    write_sample_sources(warehouse, seed=3, **SAMPLE)
    settings = settings_for(warehouse)
    run_backfill(spark, settings, day(1), day(20))
    run_backfill(spark, settings, day(10), day(30))
    assert_frames_match(table_frame(spark, settings, collect_frame), full.frame, keys_of_view())


def test_table_layout(spark: SparkSession, full: Full) -> None:
    from delta.tables import DeltaTable
    from featurekiln.definitions import load_catalog
    from featurekiln.layout import tiles_path

    view = load_catalog(SAMPLE_DEFS)[VIEW]
    path = table_path(Path(full.settings.warehouse))
    detail = DeltaTable.forPath(spark, str(path)).detail().first()
    assert detail["format"] == "delta"
    assert list(detail["partitionColumns"]) == ["ds"]
    assert sorted(p.name for p in path.glob("ds=*")) == [f"ds={day(n).isoformat()}" for n in range(1, 31)]
    assert detail["numFiles"] == 30, "one file per day"
    tiles = tiles_path(full.settings, VIEW)
    blocks = spark.read.format("delta").load(tiles).select("_block").distinct().count()
    assert list(DeltaTable.forPath(spark, tiles).detail().first()["partitionColumns"]) == ["_block"]
    assert DeltaTable.forPath(spark, tiles).detail().first()["numFiles"] == blocks, "one tile file per 32-day block"

    schema = spark.read.format("delta").load(str(path)).schema
    assert [f.name for f in schema.fields] == [*view.keys, "ds", "feature_ts", *(f.name for f in view.features)]
    assert schema["ds"].dataType.simpleString() == "date"
    assert schema["feature_ts"].dataType.simpleString() == "timestamp"

    frame = full.frame
    assert set(frame["ds"]) == {day(n) for n in range(1, 31)}
    cut_offs = frame["ds"].map(lambda ds: pd.Timestamp(ds + timedelta(days=1)).tz_localize("UTC"))
    assert (frame["feature_ts"] == cut_offs).all(), "feature_ts must be ds + 1 day at 00:00 UTC"


def test_commits_record_fingerprint_and_range(spark: SparkSession, full: Full) -> None:
    from delta.tables import DeltaTable
    from featurekiln.definitions import load_catalog

    view = load_catalog(SAMPLE_DEFS)[VIEW]
    history = DeltaTable.forPath(spark, str(table_path(Path(full.settings.warehouse)))).history()
    commits = [json.loads(row["userMetadata"]) for row in history.orderBy("version").collect()]
    assert all(c["fingerprint"] == view.fingerprint() for c in commits)
    ranges = [(date.fromisoformat(c["start"]), date.fromisoformat(c["end"])) for c in commits]
    assert set(ranges) == {(day(1), day(30))}, "the run's three chunks are one commit, with its inclusive day range"
    chunks = [(day(1), day(10)), (day(11), day(20)), (day(21), day(30))]
    assert [(c.chunk[0], c.chunk[1] - timedelta(days=1)) for c in full.result.chunks] == chunks
    by_day = full.frame["ds"].value_counts()
    assert [c.rows for c in full.result.chunks] == [int(by_day[(by_day.index >= a) & (by_day.index <= b)].sum())
                                                    for a, b in chunks], "each chunk's rows, from the commit's files"
    assert len({c.version for c in full.result.chunks}) == 1


# --------------------------------------------------------------------------- atomicity


def _data_files(path: Path) -> list[Path]:
    return sorted(path.glob("ds=*/*.parquet"))


def _rows_of_day(frame: pd.DataFrame, ds: date) -> pd.DataFrame:
    return frame[frame["ds"] == ds].reset_index(drop=True)


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KILN_")}
    env["KILN_SPARK_MASTER"] = "local[2]"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return env


@pytest.mark.slow
def test_killed_backfill_leaves_each_day_old_or_new(
    spark: SparkSession, tmp_path: Path, collect_frame: Collect
) -> None:
    """kill -9 while a chunked CLI backfill writes: the run is one commit, so every ds is old, or every ds is new;
    a rerun completes it."""
    first, last = day(1), day(10)
    sample = {**SAMPLE, "days": 20, "users": 300}
    keys = keys_of_view()

    reference = tmp_path / "reference"
    write_sample_sources(reference, seed=2, **sample)
    run_backfill(spark, settings_for(reference), first, last)
    new = table_frame(spark, settings_for(reference), collect_frame)

    warehouse = tmp_path / "warehouse"
    write_sample_sources(warehouse, seed=1, **sample)
    settings = settings_for(warehouse)
    run_backfill(spark, settings, first, last)
    old = table_frame(spark, settings, collect_frame)
    for ds in (day(n) for n in range(1, 11)):
        assert frame_differences(_rows_of_day(old, ds), _rows_of_day(new, ds), keys), f"old and new agree on {ds}"

    write_sample_sources(warehouse, seed=2, **sample)  # the events change (hence --retile); the table holds the old days
    path = table_path(warehouse)
    before = set(_data_files(path))
    log = tmp_path / "cli.log"
    command = [
        sys.executable, "-m", "featurekiln", "--defs", str(SAMPLE_DEFS), "--warehouse", str(warehouse),
        "backfill", VIEW, "--start", first.isoformat(), "--end", last.isoformat(), "--chunk-days", "1", "--retile",
    ]
    with log.open("w") as output:
        child = subprocess.Popen(
            command, env=_child_env(), cwd=REPO_ROOT, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + 600
            while not set(_data_files(path)) - before:
                assert child.poll() is None, f"the CLI ended before it wrote a file:\n{log.read_text()}"
                assert time.monotonic() < deadline, f"no data file written within 10 minutes:\n{log.read_text()}"
                time.sleep(0.05)
        finally:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)  # the CLI, spark-submit and the driver JVM: one process group
            child.wait()
    assert child.returncode == -signal.SIGKILL, f"the CLI was not killed mid-run:\n{log.read_text()}"

    partial = table_frame(spark, settings, collect_frame)
    state = {}
    for ds in (day(n) for n in range(1, 11)):
        rows = _rows_of_day(partial, ds)
        if not frame_differences(rows, _rows_of_day(new, ds), keys):
            state[ds] = "new"
        elif not frame_differences(rows, _rows_of_day(old, ds), keys):
            state[ds] = "old"
        else:
            state[ds] = "mixed"
    assert "mixed" not in state.values(), f"a day is neither entirely old nor entirely new: {state}"
    assert len(set(state.values())) == 1, f"some days of the run are published, others not: {state}"

    run_backfill(spark, settings, first, last)
    assert_frames_match(table_frame(spark, settings, collect_frame), new, keys)


def test_concurrent_overlapping_backfills_both_succeed_without_holes(
    spark: SparkSession, full: Full, warehouse: Path, collect_frame: Collect, caplog: pytest.LogCaptureFixture
) -> None:
    """The case of the experience issue: two overlapping backfills of one view at once, one day per commit."""
    import logging
    import threading

    from featurekiln.offline.delta_table import held_days

    write_sample_sources(warehouse, seed=3, **SAMPLE)
    settings = settings_for(warehouse)
    errors: list[BaseException] = []

    def backfill(first: date, last: date) -> None:
        try:
            run_backfill(spark, settings, first, last, chunk_days=1)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    caplog.set_level(logging.INFO, logger="featurekiln.offline.delta_table")
    first = threading.Thread(target=backfill, args=(day(1), day(22)))
    second = threading.Thread(target=backfill, args=(day(6), day(30)))
    first.start()
    time.sleep(3)
    second.start()
    first.join()
    second.join()
    assert not errors, errors
    assert held_days(settings, str(table_path(warehouse))) == [(day(1), day(31))]
    assert_frames_match(table_frame(spark, settings, collect_frame), full.frame, keys_of_view())


def test_status_shows_the_holes_of_a_table(spark: SparkSession, warehouse: Path) -> None:
    from typer.testing import CliRunner

    from featurekiln.cli import app
    from featurekiln.offline.delta_table import held_days

    write_sample_sources(warehouse, seed=3, **SAMPLE)
    settings = settings_for(warehouse)
    run_backfill(spark, settings, day(1), day(5))
    run_backfill(spark, settings, day(10), day(12))
    run_backfill(spark, settings, day(14), day(14))
    assert held_days(settings, str(table_path(warehouse))) == [(day(1), day(6)), (day(10), day(13)), (day(14), day(15))]
    result = CliRunner().invoke(app, ["status", "--defs", str(SAMPLE_DEFS), "--warehouse", str(warehouse)])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if VIEW in x)
    assert "2025-01-01..2025-01-05, 2025-01-10..2025-01-12, 2025-01-14" in line
    assert "2025-01-06..2025-01-09, 2025-01-13" in line
