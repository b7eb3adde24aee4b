"""Benchmark: one nightly run after a year's backfill, and a window change rebuilt from stored tiles.

Usage: ``python bench/incremental.py [--events N] [--keys K] [--days D] [--lookback L]``

Measures, in one run on one Spark session (``local[2]``), for a view with windows
1d/7d/30d/90d (count, sum, avg, max, last), ``lookback: Ld`` and a source
partitioned by landing day (``source.partition_by``):

(a) ``kiln run --until`` day D on an empty table: the backfill of D days;
(b) the nightly run of day D + 1 once its partition landed: the raw rows it
    reads (``1 + L`` days) against that day's events, and its time against (a);
(b') the nightly run of day D + 2 as cron or an Airflow task runs it: ``kiln run``
    in a new process, so a new JVM that starts cold (not a target; what a user
    waits for);
(c) the windows changed to 2d/14d/60d/90d (``on_change: rebuild``; the ttl and
    so the tile days needed stay): the rebuild from the stored tiles (no raw
    event read) against (d) the same rebuild with ``--retile``, which reads
    every raw event again;
(e) the floor of (b): the three Delta writes every nightly run makes (its tile
    days replaced in their block, its snapshot days replaced, one run-history
    row appended), and nothing else: plain Delta writes of rows already in
    memory into copies of (b)'s tables, best of three.

Targets from the issue: (b) reads that day's events plus the lookback's, and
takes <= 1/20 of (a). When (e) alone is more than 1/20 of (a), no faster
computation meets that target at this size.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from rich.console import Console
from rich.table import Table

from featurekiln import runner
from featurekiln.compute.session import get_spark
from featurekiln.definitions.models import FeatureView
from featurekiln.layout import TILE_BLOCK, table_path, tiles_path
from featurekiln.offline.tile_store import block_where
from featurekiln.planning.intervals import Interval
from featurekiln.settings import Settings

START = date(2025, 1, 1)


def definition(lookback: int, windows: tuple[int, int, int, int] = (1, 7, 30, 90)) -> dict:
    features = [
        {"name": "events_short", "agg": "count", "window": f"{windows[0]}d"},
        {"name": "amount_week", "agg": "sum", "expr": "amount", "window": f"{windows[1]}d"},
        {"name": "avg_amount_month", "agg": "avg", "expr": "amount", "window": f"{windows[2]}d"},
        {"name": "max_amount_quarter", "agg": "max", "expr": "amount", "window": f"{windows[3]}d"},
        {"name": "last_amount", "agg": "last", "expr": "amount"},
    ]
    return {
        "name": "nightly",
        "entity": {"name": "user", "keys": ["user_id"]},
        "source": {"path": "raw/events", "format": "parquet", "timestamp": "event_ts", "partition_by": "landed"},
        "start": START.isoformat(),
        "ttl": "90d",
        "lookback": f"{lookback}d",
        "features": features,
        "on_change": "rebuild",
    }


def make_events(events: int, keys: int, days: int, seed: int = 1) -> pd.DataFrame:
    """Events of event days ``START - 89`` .. ``START + days`` (the last two are the nightly runs'), landing on
    their event day (10% one or two days late); Zipf-skewed keys, 2% null amounts."""
    rng = np.random.default_rng(seed)
    span = days + 90
    day = rng.integers(0, span, events)
    ts = pd.Timestamp(START - timedelta(days=89), tz="UTC") + pd.to_timedelta(
        day * 86_400_000_000 + rng.integers(0, 86_400_000_000, events), unit="us")
    late = rng.choice([0, 1, 2], events, p=[0.9, 0.07, 0.03])
    landed = pd.to_datetime(START - timedelta(days=89)) + pd.to_timedelta(day + late, unit="D")
    amount = rng.gamma(2.0, 20.0, events).round(2)
    amount[rng.random(events) < 0.02] = np.nan
    return pd.DataFrame({"user_id": ((rng.zipf(1.3, events) - 1) % keys).astype("int64"), "amount": amount,
                         "event_ts": ts, "landed": landed.strftime("%Y-%m-%d")})


def land(root: Path, frame: pd.DataFrame) -> None:
    """Write ``frame`` into the source, partitioned by landing day."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_to_dataset(table, root / "raw" / "events", partition_cols=["landed"], coerce_timestamps="us",
                        existing_data_behavior="overwrite_or_ignore")


def kiln_run(root: Path, lookback: int, master: str, until: date) -> float:
    """Seconds of ``kiln run nightly --until <until>`` in a new process on the bench's warehouse."""
    defs = root / "defs"
    defs.mkdir(exist_ok=True)
    (defs / "nightly.yaml").write_text(yaml.safe_dump(definition(lookback), sort_keys=False))
    env = {**os.environ, "KILN_DEFS": str(defs), "KILN_WAREHOUSE": str(root), "KILN_EXPECTATIONS": str(root / "no_suites"),
           "KILN_SPARK_MASTER": master}
    seconds, done = timed(lambda: subprocess.run([sys.executable, "-m", "featurekiln", "run", "nightly", "--until",
                                                  until.isoformat()], env=env, capture_output=True, text=True))
    if done.returncode:
        raise SystemExit(f"kiln run failed:\n{done.stdout}\n{done.stderr}")
    return seconds


def write_floor(spark, root: Path, name: str, settings: Settings, tile_days: Interval, days: Interval,  # noqa: ANN001
                rounds: int = 3) -> tuple[float, float, float, float]:
    """The three Delta writes of a nightly run without anything else, ``rounds`` times: the tile days
    ``tile_days`` replaced in their blocks, the snapshot days ``days`` replaced, a row appended to a history
    table; plain Delta writes of rows held in memory into copies of the view's tables. The best total, then
    the best of each write, in seconds."""
    scratch = root / "floor"
    tiles, table, history = str(scratch / "tiles"), str(scratch / "table"), str(scratch / "history")
    shutil.copytree(tiles_path(settings, name), tiles)
    shutil.copytree(table_path(settings, name), table)
    tile_where, _ = block_where(tile_days)
    day_where = f"ds >= '{days[0]}' AND ds < '{days[1]}'"
    tile_rows = spark.read.format("delta").load(tiles).where(tile_where).localCheckpoint()
    day_rows = spark.read.format("delta").load(table).where(day_where).localCheckpoint()
    spark.range(1).write.format("delta").save(history)
    writes = (
        lambda: (tile_rows.repartition(TILE_BLOCK).write.format("delta").mode("overwrite")
                 .option("replaceWhere", tile_where).partitionBy(TILE_BLOCK).save(tiles)),
        lambda: (day_rows.repartition("ds").write.format("delta").mode("overwrite")
                 .option("replaceWhere", day_where).partitionBy("ds").save(table)),
        lambda: spark.range(1).write.format("delta").mode("append").save(history),
    )
    seconds = [[timed(write)[0] for write in writes] for _ in range(rounds)]
    shutil.rmtree(scratch)
    return min(map(sum, seconds)), *(min(each) for each in zip(*seconds))


def timed(fn):  # noqa: ANN001, ANN201
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--lookback", type=int, default=2)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="kiln-bench-incremental-"))
    console = Console(width=120)
    try:
        settings = Settings(defs_dir=root / "defs", expectations_dir=root / "no_suites", warehouse=str(root),
                            spark_master=args.master, chunk_days=30)
        spark = get_spark(settings, conf={"spark.sql.shuffle.partitions": "4"})
        events = make_events(args.events, args.keys, args.days + 1)
        last = START + timedelta(days=args.days - 1)
        nightly_day = last + timedelta(days=1)
        land(root, events[pd.to_datetime(events["landed"]).dt.date <= last])
        view = FeatureView.model_validate(definition(args.lookback))

        backfill_s, first = timed(lambda: runner.run(view, last, settings=settings, spark=spark))
        rows = first.rows
        console.print(f"(a) backfill of {args.days} days: {backfill_s:.1f} s, {rows:,} snapshot rows")

        land(root, events[pd.to_datetime(events["landed"]).dt.date == nightly_day])
        nightly_s, nightly = timed(lambda: runner.run(view, nightly_day, settings=settings, spark=spark))
        [(read_first, read_stop)] = nightly.view_plan.reads_events
        stamps = events["event_ts"]
        read = int(((stamps >= pd.Timestamp(read_first, tz="UTC")) & (stamps < pd.Timestamp(read_stop, tz="UTC"))
                    & (pd.to_datetime(events["landed"]).dt.date <= nightly_day)).sum())
        its_day = int(((stamps >= pd.Timestamp(nightly_day, tz="UTC"))
                       & (stamps < pd.Timestamp(nightly_day + timedelta(days=1), tz="UTC"))).sum())
        console.print(f"(b) nightly run of {nightly_day}: {nightly_s:.1f} s, reads event days "
                      f"{read_first}..{read_stop - timedelta(days=1)}")
        [computed] = nightly.view_plan.will_compute
        floor_s, *parts = write_floor(spark, root, view.name, settings, (read_first, read_stop), computed)
        console.print(f"(e) its three Delta writes alone: {floor_s:.2f} s (best of each: tiles {parts[0]:.2f}, "
                      f"snapshots {parts[1]:.2f}, history row {parts[2]:.2f})")

        next_day = nightly_day + timedelta(days=1)
        land(root, events[pd.to_datetime(events["landed"]).dt.date == next_day])
        cli_s = kiln_run(root, args.lookback, args.master, next_day)
        console.print(f"(b') nightly run of {next_day} in a new process: {cli_s:.1f} s")

        changed = FeatureView.model_validate(definition(args.lookback, windows=(2, 14, 60, 90)))
        tiles_s, rebuilt = timed(lambda: runner.run(changed, next_day, settings=settings, spark=spark))
        assert rebuilt.view_plan.reads_events == (), rebuilt.view_plan.reads_events
        source_s, _ = timed(lambda: runner.backfill(changed, START, next_day, settings=settings, spark=spark,
                                                    retile=True))

        table = Table(title=f"incremental: {args.events:,} events, {args.keys:,} keys, {args.days} days, "
                            f"lookback {args.lookback}d")
        for column in ("run", "seconds", "ratio", "target"):
            table.add_column(column, justify="right" if column != "run" else "left")
        table.add_row("(a) backfill, empty table", f"{backfill_s:.1f}", "1.00", "")
        table.add_row("(b) nightly run, one new day", f"{nightly_s:.1f}", f"1/{backfill_s / nightly_s:.1f}",
                      "<= 1/20 of (a)")
        table.add_row(f"    raw rows read: {read:,} (its day: {its_day:,})", "", f"{read / max(its_day, 1):.2f}x",
                      f"its day + {args.lookback} lookback days")
        table.add_row("(b') next nightly run, `kiln run` in a new process", f"{cli_s:.1f}",
                      f"{cli_s / backfill_s:.2f} of (a)", "")
        table.add_row("(e) (b)'s three Delta writes alone, from memory (best of 3)", f"{floor_s:.1f}",
                      f"1/{backfill_s / floor_s:.1f}", "")
        table.add_row("(c) windows changed, rebuilt from stored tiles", f"{tiles_s:.1f}", "1.00", "")
        table.add_row("(d) the same rebuild re-reading the source (--retile)", f"{source_s:.1f}",
                      f"{source_s / tiles_s:.2f}x (c)", "")
        console.print(table)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
