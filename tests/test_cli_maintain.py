"""``kiln maintain`` as a user runs it, and against what else runs: a dry run changes nothing, ``kill -9``
mid-way then a rerun converges, and maintenance alongside a backfill of the same view fails neither."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pytest
import yaml

from featurekiln.settings import Settings
from tests.offline.test_incremental import RAW, VIEW, day, land, make_events, view_of
from tests.offline.test_maintenance import data_files, listing, live_files
from tests.oracle import assert_frames_match, expected_snapshots
from tests.test_cli import KILN, REPO_ROOT, kiln

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.slow
NIGHTS = 4


def project(tmp_path: Path, spark: SparkSession, nights: int = NIGHTS, landed_until: int = 30) -> Settings:
    """Definitions, the events landed until night ``landed_until`` and ``nights`` nightly runs of the view."""
    from featurekiln import runner

    defs = tmp_path / "defs"
    defs.mkdir()
    (defs / f"{VIEW}.yaml").write_text(yaml.safe_dump(RAW))
    settings = Settings(defs_dir=defs, expectations_dir=tmp_path / "no_suites", warehouse=str(tmp_path / "wh"),
                        spark_master="local[2]", chunk_days=10, retain_days=1)
    events = make_events()
    for landed in sorted(d for d in events["landed"].unique() if d <= day(landed_until)):
        land(Path(settings.warehouse), events, landed)
    for n in range(1, nights + 1):
        runner.run(view_of(RAW), day(n), settings=settings, spark=spark)
    return settings


def cli_args(settings: Settings) -> list[str]:
    return ["--defs", str(settings.defs_dir), "--warehouse", settings.warehouse]


ENV = {"KILN_SPARK_MASTER": "local[2]", "KILN_EXPECTATIONS": "/nonexistent"}


def table_rows(spark: SparkSession, settings: Settings) -> pd.DataFrame:
    from featurekiln.offline.delta_table import read_table

    spark.catalog.clearCache()
    return read_table(spark, settings, VIEW).toPandas().sort_values(["ds", "user_id"]).reset_index(drop=True)


def test_dry_run_changes_nothing_then_kill_9_mid_way_and_a_rerun_converges(
    spark: SparkSession, tmp_path: Path
) -> None:
    """The dry run's listing of every file (size, mtime) is unchanged; a maintenance killed after its first
    commit leaves a readable table, and the rerun leaves only live files, the same rows and the same ledger."""
    from featurekiln.layout import table_path, tiles_path
    from featurekiln.offline.delta_table import day_fingerprints

    settings = project(tmp_path, spark)
    root = Path(settings.warehouse)
    before = listing(root)
    dry = kiln("maintain", *cli_args(settings), "--dry-run", "--json", env=ENV)
    assert dry.returncode == 0, dry.stderr
    assert listing(root) == before, "--dry-run changes nothing"
    report = json.loads(dry.stdout)
    assert report["dry_run"] is True and report["retain_days"] == 30
    assert {t["table"] for t in report["tables"]} == {"features", "tiles", "leftovers", "runs", "stats"}

    rows = table_rows(spark, settings)
    ledger = day_fingerprints(settings, table_path(settings, VIEW))
    tiles_log = Path(tiles_path(settings, VIEW)) / "_delta_log"
    commits = len(list(tiles_log.glob("*.json")))
    env = {**os.environ, **ENV, "KILN_RETAIN_DAYS": "0",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    env = {k: v for k, v in env.items() if not k.startswith("KILN_") or k in ("KILN_RETAIN_DAYS", *ENV)}
    process = subprocess.Popen([KILN, "maintain", *cli_args(settings)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    # The feature table is maintained first; the tile table's first new commit is mid-way through the view.
    while len(list(tiles_log.glob("*.json"))) == commits and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "maintenance ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    pd.testing.assert_frame_equal(table_rows(spark, settings), rows)

    rerun = kiln("maintain", *cli_args(settings), env={**ENV, "KILN_RETAIN_DAYS": "0"})
    assert rerun.returncode == 0, rerun.stderr
    assert "retention 0 day(s)" in rerun.stdout
    for table in (Path(table_path(settings, VIEW)), Path(tiles_path(settings, VIEW))):
        assert data_files(table) == live_files(spark, table), f"{table}: only live files are left"
    pd.testing.assert_frame_equal(table_rows(spark, settings), rows)
    assert day_fingerprints(settings, table_path(settings, VIEW)) == ledger
    again = kiln("maintain", *cli_args(settings), "--json", env={**ENV, "KILN_RETAIN_DAYS": "0"})
    assert all(t["compacted"] == 0 and t["reclaimed_files"] == 0 for t in json.loads(again.stdout)["tables"])


def kiln_process(settings: Settings, *args: str) -> subprocess.Popen:
    """``kiln ARGS`` on the project of ``settings``, in a process of its own (its own JVM)."""
    return subprocess.Popen(
        [KILN, *args, *cli_args(settings)],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("KILN_")}, **ENV,
             "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def maintain_while(spark: SparkSession, settings: Settings, process: subprocess.Popen) -> tuple[int, int]:
    """Maintenance pass after pass in this process while ``process`` runs, then once more; the passes that
    started while it ran and the files they compacted. ``process`` must succeed."""
    from featurekiln.offline.maintenance import maintain

    passes = compacted = 0
    while process.poll() is None:
        done = maintain(spark, settings, [view_of(RAW)])
        compacted += sum(d.compacted for d in done)
        passes += 1
    _, stderr = process.communicate()
    assert process.returncode == 0, stderr
    maintain(spark, settings, [view_of(RAW)])
    return passes, compacted


def test_maintenance_while_a_backfill_runs_fails_neither(spark: SparkSession, tmp_path: Path) -> None:
    """A ``kiln backfill --retile`` of the whole range (a process of its own) while maintenance runs
    pass after pass in this one: both finish without an error and the table equals the oracle."""
    last = day(12)
    settings = project(tmp_path, spark, nights=2, landed_until=12)
    backfill = kiln_process(settings, "backfill", VIEW, "--start", str(day(1)), "--end", str(last), "--retile")
    passes, compacted = maintain_while(spark, settings, backfill)
    assert passes >= 2, "maintenance ran while the backfill did"
    events = make_events()
    events = events[events["landed"] <= last].drop(columns=["landed"])
    assert_frames_match(table_rows(spark, settings), expected_snapshots(events, RAW, day(1), last), ["user_id"])
    print(f"maintenance passes during the backfill: {passes}, files compacted: {compacted}")  # noqa: T201


def test_maintenance_while_a_nightly_run_runs_fails_neither(spark: SparkSession, tmp_path: Path) -> None:
    """``kiln run --until`` (a process of its own: the nights it missed, with their lookback) while
    maintenance runs pass after pass in this one, compacting the run history the run appends to: both finish
    without an error, the table equals the oracle and the run is in the history."""
    from featurekiln.quality.history import read_runs

    last = day(9)
    settings = project(tmp_path, spark, nights=NIGHTS, landed_until=9)
    nightly = kiln_process(settings, "run", VIEW, "--until", str(last))
    passes, compacted = maintain_while(spark, settings, nightly)
    assert passes >= 1, "maintenance ran while the nightly run did"
    events = make_events()
    events = events[events["landed"] <= last].drop(columns=["landed"])
    assert_frames_match(table_rows(spark, settings), expected_snapshots(events, RAW, day(1), last), ["user_id"])
    assert len(read_runs(settings, VIEW)) == NIGHTS + 1, "every run is in the history"
    print(f"maintenance passes during the nightly run: {passes}, files compacted: {compacted}")  # noqa: T201
