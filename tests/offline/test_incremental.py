"""Incremental materialization on real Spark and Delta, against the pandas oracle.

The source is partitioned by the day each event landed (``source.partition_by``);
a night writes the partition that landed that day and runs ``kiln run --until``
it, as a scheduler would. Some events land a day or two late (within the view's
``lookback``), one lands too late; old partitions are deleted (raw retention).
"""

from __future__ import annotations

import copy
import shutil
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest

from featurekiln.definitions.models import FeatureView
from featurekiln.settings import Settings
from tests.oracle import assert_frames_match, expected_snapshots, frame_differences

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

START = date(2025, 3, 1)
NIGHTS = 20  # night 13 starts a new 32-day tile block; the logs pass Delta checkpoints (10) and a ledger summary (16)
LOOKBACK = 2
VIEW = "events_view"
RAW: dict[str, Any] = {
    "name": VIEW,
    "entity": {"name": "user", "keys": ["user_id"]},
    "source": {"path": "raw/events", "format": "parquet", "timestamp": "ts", "partition_by": "landed"},
    "start": START.isoformat(),
    "ttl": "10d",
    "lookback": f"{LOOKBACK}d",
    "features": [
        {"name": "n_3d", "agg": "count", "window": "3d"},
        {"name": "spend_7d", "agg": "sum", "expr": "amount", "window": "7d"},
        {"name": "last_amount", "agg": "last", "expr": "amount"},
    ],
}


def day(n: int) -> date:
    return START + timedelta(days=n - 1)


def make_events(seed: int = 11, nights: int = NIGHTS) -> pd.DataFrame:
    """Events of days -9 .. ``nights`` + 1 for 25 users; most land on their event day, some 1-2 days late,
    one (user 3, day 8) 5 days late."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in range(-9, nights + 2):
        for user in rng.choice(25, size=12, replace=False):
            for _ in range(int(rng.integers(1, 3))):
                at = datetime.combine(day(n), datetime.min.time(), timezone.utc) + timedelta(
                    microseconds=int(rng.integers(0, 86_400_000_000)))
                late = int(rng.choice([0, 0, 0, 0, 1, 2]))
                rows.append((int(user), at, int(rng.integers(1, 100)), day(n) + timedelta(days=late)))
    rows.append((3, datetime.combine(day(8), datetime.min.time(), timezone.utc) + timedelta(hours=5), 1000, day(13)))
    frame = pd.DataFrame(rows, columns=["user_id", "ts", "amount", "landed"])
    frame["user_id"] = frame["user_id"].astype("int64")
    frame["amount"] = frame["amount"].astype("int64")
    return frame


def land(root: Path, events: pd.DataFrame, landed: date) -> None:
    """Write the partition of the events that landed on ``landed`` (as an ingestion job would)."""
    part = events[events["landed"] == landed].drop(columns=["landed"])
    target = root / "raw" / "events" / f"landed={landed.isoformat()}"
    target.mkdir(parents=True, exist_ok=True)
    part.to_parquet(target / "part-0.parquet", index=False, coerce_timestamps="us", allow_truncated_timestamps=False)


def landed_until(events: pd.DataFrame, last: date) -> pd.DataFrame:
    return events[events["landed"] <= last]


def expected(events: pd.DataFrame, raw: dict[str, Any], last: date) -> pd.DataFrame:
    return expected_snapshots(events.drop(columns=["landed"]), raw, START, last)


def view_of(raw: dict[str, Any]) -> FeatureView:
    return FeatureView.model_validate(raw)


def table(spark: SparkSession, settings: Settings, collect_frame):  # noqa: ANN001, ANN201
    from featurekiln.offline.delta_table import read_table

    return collect_frame(read_table(spark, settings, VIEW))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(defs_dir=tmp_path / "defs", expectations_dir=tmp_path / "no_suites", warehouse=str(tmp_path / "wh"),
                    spark_master="local[2]", chunk_days=10)


def test_nightly_runs_read_one_day_plus_lookback_and_heal_late_data(
    spark: SparkSession, settings: Settings, collect_frame, tmp_path: Path
) -> None:
    """Night by night for NIGHTS nights: each run reads only its day and lookback; the table equals one backfill
    of the range; late events within the lookback are in, the one outside it is not until ``--retile``;
    raw retention and a window change stay exact."""
    from featurekiln import runner

    root = Path(settings.warehouse)
    events = make_events()
    view = view_of(RAW)
    for landed in sorted(d for d in events["landed"].unique() if d < START):
        land(root, events, landed)
    for n in range(1, NIGHTS + 1):
        land(root, events, day(n))
        plan = runner.plan_run(view, day(n), settings=settings)
        if n == 1:
            assert plan.reads_events == ((day(-8), day(2)),), "an empty table tiles its whole horizon"
        else:
            assert plan.reads_events == ((day(n - LOOKBACK), day(n + 1)),), f"night {n}: its day and lookback"
            assert plan.will_compute == ((max(START, day(n - LOOKBACK)), day(n + 1)),)
        result = runner.run(view, day(n), settings=settings, spark=spark)
        assert result.view_plan == plan
    assert runner.plan_run(view, day(NIGHTS), settings=settings).nothing_to_do

    arrived = landed_until(events, day(NIGHTS))
    too_late = (arrived["user_id"] == 3) & (arrived["amount"] == 1000)
    assert too_late.sum() == 1
    assert_frames_match(table(spark, settings, collect_frame), expected(arrived[~too_late], RAW, day(NIGHTS)),
                        ["user_id"])
    assert frame_differences(table(spark, settings, collect_frame), expected(arrived, RAW, day(NIGHTS)), ["user_id"]), \
        "the event that landed 5 days late must not be reflected without --retile (documented)"

    # One backfill of the whole range over the events the nights saw gives the identical table.
    once = Settings(defs_dir=settings.defs_dir, expectations_dir=settings.expectations_dir,
                    warehouse=str(tmp_path / "once"), spark_master="local[2]", chunk_days=30)
    for landed in sorted(arrived["landed"].unique()):
        land(Path(once.warehouse), arrived[~too_late], landed)
    runner.backfill(view, START, day(NIGHTS), settings=once, spark=spark)
    def rows(where: Settings) -> pd.DataFrame:
        return table(spark, where, collect_frame).sort_values(["ds", "user_id"]).reset_index(drop=True)

    nightly_rows = rows(settings)
    assert len(nightly_rows) > NIGHTS * 10
    pd.testing.assert_frame_equal(nightly_rows, rows(once))

    runner.backfill(view, day(8), day(NIGHTS), settings=settings, spark=spark, validate=False, retile=True)
    assert_frames_match(table(spark, settings, collect_frame), expected(arrived, RAW, day(NIGHTS)), ["user_id"])

    # Raw retention: every partition that landed before the last 4 days is deleted.
    for old in (root / "raw" / "events").glob("landed=*"):
        if date.fromisoformat(old.name.split("=")[1]) < day(NIGHTS - 3):
            shutil.rmtree(old)
    land(root, events, day(NIGHTS + 1))
    steps: list[str] = []
    nightly = runner.run(view, day(NIGHTS + 1), settings=settings, spark=spark, on_step=steps.append)
    assert nightly.view_plan.reads_events == ((day(NIGHTS + 1 - LOOKBACK), day(NIGHTS + 2)),)
    days = f"{day(NIGHTS + 1 - LOOKBACK)}..{day(NIGHTS + 1)}"
    assert steps == [f"{days}: tiling {LOOKBACK + 1} event day(s) from the source",
                     f"{days}: assembling and writing {LOOKBACK + 1} day(s)", f"{days}: validating 1 chunk(s)",
                     f"{days}: committing {LOOKBACK + 1} day(s)"]
    everything = landed_until(events, day(NIGHTS + 1))
    assert_frames_match(table(spark, settings, collect_frame), expected(everything, RAW, day(NIGHTS + 1)), ["user_id"])

    changed = copy.deepcopy(RAW)
    changed["features"][0]["window"] = "5d"
    changed["on_change"] = "rebuild"
    steps.clear()
    rebuild = runner.run(view_of(changed), day(NIGHTS + 1), settings=settings, spark=spark, on_step=steps.append)
    assert rebuild.view_plan.will_compute == ((START, day(NIGHTS + 2)),)
    assert steps[0] == f"{START}..{day(NIGHTS + 1)}: reading stored tiles", steps
    assert rebuild.view_plan.reads_events == (), "a window change is rebuilt from the stored tiles"
    assert_frames_match(table(spark, settings, collect_frame), expected(everything, changed, day(NIGHTS + 1)),
                        ["user_id"])

    runner.backfill(view, START, day(NIGHTS + 1), settings=settings, spark=spark, validate=False)
    assert_frames_match(table(spark, settings, collect_frame), expected(everything, RAW, day(NIGHTS + 1)), ["user_id"])


def test_a_nightly_read_scans_only_its_landed_partitions(spark: SparkSession, settings: Settings) -> None:
    """From Spark's executed plan: the events of 1 + lookback days come from exactly those landed partitions."""
    from featurekiln.compute.sources import read_events

    root = Path(settings.warehouse)
    events = make_events()
    for landed in sorted(events["landed"].unique()):
        land(root, events, landed)
    last = day(NIGHTS)
    frame = read_events(spark, view_of(RAW), settings, (day(NIGHTS - LOOKBACK), last + timedelta(days=1)))
    rows = len(frame.collect())  # runs the frame's own plan, whose scan metrics are read below
    scans = _file_scans(frame)
    assert len(scans) == 1
    landed_from = day(NIGHTS - LOOKBACK)
    present = sorted(d for d in events["landed"].unique() if d >= landed_from)
    assert int(scans[0].metrics().apply("numPartitions").value()) == len(present), "partitions read"
    assert int(scans[0].metrics().apply("numFiles").value()) == len(present), "files read"
    assert len(present) * 4 < events["landed"].nunique()
    in_window = events[(events["ts"] >= pd.Timestamp(landed_from, tz="UTC"))
                       & (events["ts"] < pd.Timestamp(last + timedelta(days=1), tz="UTC"))]
    assert rows == len(in_window)


def _file_scans(frame):  # noqa: ANN001, ANN202 - py4j objects
    plan = frame._jdf.queryExecution().executedPlan()
    found, stack = [], [plan]
    while stack:
        node = stack.pop()
        if node.getClass().getSimpleName() == "FileSourceScanExec":
            found.append(node)
        stack.extend(_children(node))
    return found


def _children(node):  # noqa: ANN001, ANN202
    if node.getClass().getSimpleName() == "AdaptiveSparkPlanExec":  # a leaf that holds the final plan
        return [node.executedPlan()]
    children = node.children()
    return [children.apply(i) for i in range(children.size())]


def test_an_added_feature_reads_only_its_partials(spark: SparkSession, settings: Settings, collect_frame) -> None:
    """A new feature: its partials are added to the stored tiles; the others are kept as they were."""
    from featurekiln import runner
    from featurekiln.layout import tiles_path
    from featurekiln.offline.delta_log import DeltaLog

    root = Path(settings.warehouse)
    events = make_events()
    for landed in sorted(events["landed"].unique()):
        land(root, events, landed)
    runner.run(view_of(RAW), day(12), settings=settings, spark=spark)
    path = tiles_path(settings, VIEW)
    before = collect_frame(spark.read.format("delta").load(path))

    changed = copy.deepcopy(RAW)
    changed["features"].append({"name": "max_5d", "agg": "max", "expr": "amount", "window": "5d"})
    changed["on_change"] = "rebuild"
    view = view_of(changed)
    plan = runner.plan_run(view, day(12), settings=settings)
    new_group = view.partial_group(view.features[-1])
    assert [(sorted(new), spans) for _, new, spans in plan.tile_plan.add] == [([new_group], ((day(-8), day(13)),))]
    assert plan.tile_plan.from_source == ()
    runner.run(view, day(12), settings=settings, spark=spark)

    last = DeltaLog.of(path, settings).commits()[-1].metadata
    assert (last["read"], last["start"], last["end"]) == ("tiles+source", day(-8).isoformat(), day(12).isoformat())
    after = collect_frame(spark.read.format("delta").load(path))
    def rows(frame: pd.DataFrame) -> list[tuple]:
        return sorted(tuple(map(str, r)) for r in frame[list(before.columns)].itertuples(index=False))

    assert rows(after) == rows(before), "the stored partials of the other features are kept as they were"
    assert after[[c for c in after.columns if c.startswith(f"_p{new_group}_")]].notna().any().all()
    assert_frames_match(table(spark, settings, collect_frame), expected(events, changed, day(12)), ["user_id"])


def _commits_of(path: Path, kind: str) -> int:
    """How many tile commits (``kind`` ``tiles``) are in a table, or (``files``) how many data files are in its
    day folders, committed or not."""
    import json

    if kind == "files":
        return len(list(path.glob("ds=*/*.parquet")))
    count = 0
    for commit_file in sorted((path / "_delta_log").glob("*.json")):
        try:
            for line in commit_file.read_text().splitlines():
                info = json.loads(line).get("commitInfo") if line.strip() else None
                if info and "userMetadata" in info:
                    body = json.loads(info["userMetadata"])
                    count += body.get("kind") == "tiles"
        except (OSError, ValueError):  # not fully written yet: counted on the next poll
            continue
    return count


def _run_until_killed(settings: Settings, until: date, table: Path, kind: str, log: Path) -> None:
    """Start `kiln run` in a child process and kill -9 it (with its JVM) once ``table`` has one more ``kind`` commit."""
    import os
    import signal
    import subprocess
    import sys
    import time

    repo = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KILN_")}
    env.update(KILN_SPARK_MASTER="local[2]", KILN_CHUNK_DAYS="1", KILN_EXPECTATIONS=str(settings.expectations_dir),
               PYTHONPATH=os.pathsep.join(p for p in (str(repo), os.environ.get("PYTHONPATH", "")) if p))
    command = [sys.executable, "-m", "featurekiln", "--defs", str(settings.defs_dir), "--warehouse", settings.warehouse,
               "run", VIEW, "--until", until.isoformat()]
    before = _commits_of(table, kind) if table.exists() else 0
    with log.open("w") as output:
        child = subprocess.Popen(command, env=env, cwd=repo, stdout=output, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        try:
            deadline = time.monotonic() + 600
            while not (table.exists() and _commits_of(table, kind) > before):
                assert child.poll() is None, f"the run ended before the commit:\n{log.read_text()}"
                assert time.monotonic() < deadline, f"no {kind} commit within 10 minutes:\n{log.read_text()}"
                time.sleep(0.05)
        finally:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)  # the CLI and its driver JVM: one process group
            child.wait()
    assert child.returncode == -signal.SIGKILL, f"the run was not killed mid-way:\n{log.read_text()}"


@pytest.mark.slow
def test_kill_9_at_any_point_leaves_the_plan_truthful_and_a_rerun_converges(
    spark: SparkSession, settings: Settings, collect_frame, tmp_path: Path
) -> None:
    """kill -9 after the tiles are stored, then while the snapshots are written: `kiln plan` says what is there."""
    import yaml

    from featurekiln import runner
    from featurekiln.layout import table_path, tiles_path

    root = Path(settings.warehouse)
    events = make_events()
    for landed in sorted(events["landed"].unique()):
        land(root, events, landed)
    settings.defs_dir.mkdir()
    (settings.defs_dir / f"{VIEW}.yaml").write_text(yaml.safe_dump(RAW))
    view, until = view_of(RAW), day(10)
    features, tiles = Path(table_path(settings, VIEW)), Path(tiles_path(settings, VIEW))

    def held_in_table() -> set[date]:
        if not any((features / "_delta_log").glob("*.json")):  # data files written before the table's first commit
            return set()
        return {r[0] for r in spark.read.format("delta").load(str(features)).select("ds").distinct().collect()}

    def days_of(intervals: tuple) -> set[date]:  # noqa: ANN001
        return {a + timedelta(days=i) for a, b in intervals for i in range((b - a).days)}

    _run_until_killed(settings, until, tiles, "tiles", tmp_path / "first.log")
    plan = runner.plan_run(view, until, settings=settings)
    assert plan.tiles == ((day(-8), day(11)),), "the tile commit is there and the plan knows it"
    assert days_of(plan.materialized) == held_in_table()
    newest_missing = plan.missing[-1][0]
    assert plan.reads_events == ((newest_missing - timedelta(days=LOOKBACK), day(11)),), "only the late-data range"

    _run_until_killed(settings, until, features, "files", tmp_path / "second.log")
    plan = runner.plan_run(view, until, settings=settings)
    assert len(held_in_table()) in (0, 10), "the run's snapshots are one commit: all there or none"
    assert days_of(plan.materialized) == held_in_table()
    assert days_of(plan.missing) == days_of(((START, day(11)),)) - held_in_table()

    runner.run(view, until, settings=settings, spark=spark)
    assert runner.plan_run(view, until, settings=settings).nothing_to_do
    assert_frames_match(table(spark, settings, collect_frame), expected(events, RAW, until), ["user_id"])
