"""Benchmark: a year of nights of one view, with `kiln maintain` every 7 nights.

Usage: ``python bench/year.py [--events N] [--keys K] [--nights D] [--lookback L] [--every W]``

In one process and one Spark session (``local[2]``), night ``n`` (day ``START + n - 1``)
lands that day's events (partitioned by landing day, 10% one or two days late) and runs
the view's nightly DAG run as Airflow's tasks run it, through the same functions:
:func:`featurekiln.orchestration.steps.plan_dag_run` with the night's data interval,
then :func:`featurekiln.orchestration.steps.run_step` for ``tiles``, ``publish`` and
``push``. Every ``W`` nights, maintenance runs as ``kiln maintain`` runs it
(:func:`featurekiln.offline.maintenance.maintain`).

The year is compressed into minutes, so a retention in days would keep every
replaced file: maintenance runs with a retention of 0 days, and the storage just
before each maintenance is the storage of a retention of ``W`` nights. The bytes
replaced per night (measured: what each maintenance reclaims) give the storage of a
longer retention: live + retention x replaced per night.

It prints:

- the wall time of nights 10, 100, 200 and the last, their split (plan, tiles, publish,
  the run-history row inside publish), and the medians of the first and last ten
  warm nights (one night's time on a loaded machine is noisy);
- per table (tiles, snapshots, ``_kiln/runs``): files and bytes on storage against the
  live files and bytes, before and after the last maintenance, and without
  maintenance (every byte written: what is on storage plus everything maintenance
  deleted); the days the table holds;
- raw rows read per night: the rows of the source files that the night's read selects
  (:func:`featurekiln.compute.sources.read_events` over the plan's tile days read from
  the source) against the rows of ``1 + L`` event days.

Targets from the issue: night 365 / night 10 <= 1.2x; with weekly maintenance,
storage <= 1.3x the live bytes and live files <= 1.5x the days held (tiles, snapshots);
raw rows read per night = the rows of ``1 + L`` days.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
from incremental import START, definition, land, make_events, timed
from rich.console import Console
from rich.table import Table

from featurekiln.compute.session import get_spark
from featurekiln.definitions.models import FeatureView
from featurekiln.layout import history_path, table_path, tiles_path
from featurekiln.offline.storage import LOG_FOLDER, Storage
from featurekiln.settings import Settings

TABLES = ("tiles", "features", "runs")
MARKED = (10, 100, 200, 365)
CHECKPOINT_INTERVAL = 10  # Delta's default checkpointInterval


class HistoryTimer:
    """Seconds spent in :func:`featurekiln.quality.history.record_run` (the run-history row's commit)."""

    def __init__(self) -> None:
        import featurekiln.quality.history as history

        self.module, self.original, self.seconds = history, history.record_run, 0.0

        def timed_record(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            started = time.perf_counter()
            try:
                return self.original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        history.record_run = timed_record

    def take(self) -> float:
        seconds, self.seconds = self.seconds, 0.0
        return seconds


class LogReads:
    """How many Delta commit files the ledger reads as files (:class:`featurekiln.offline.delta_log.DeltaLog`);
    on an object store each is a GET."""

    def __init__(self) -> None:
        from featurekiln.offline.delta_log import DeltaLog

        self.count, original = 0, DeltaLog._actions  # noqa: SLF001 - counted, not changed

        def counted(log, version):  # noqa: ANN001, ANN202
            if version not in log._read:  # noqa: SLF001
                self.count += 1
            return original(log, version)

        DeltaLog._actions = counted  # noqa: SLF001

    def take(self) -> int:
        count, self.count = self.count, 0
        return count


def paths(settings: Settings, name: str) -> dict[str, str]:
    return {"tiles": tiles_path(settings, name), "features": table_path(settings, name),
            "runs": history_path(settings)}


def measure(spark, settings: Settings, name: str) -> dict[str, dict[str, int]]:  # noqa: ANN001
    """Per table: data files and bytes on storage, live files and bytes, log files, partitions held."""
    from delta.tables import DeltaTable

    storage = Storage(spark)
    found = {}
    for table, path in paths(settings, name).items():
        usage = storage.usage(path, data_only=True)
        detail = DeltaTable.forPath(spark, path).detail().first()
        logs = len(storage.names(f"{path}/{LOG_FOLDER}"))
        found[table] = {"files": usage.files, "bytes": usage.bytes, "live_files": int(detail["numFiles"]),
                        "live_bytes": int(detail["sizeInBytes"]), "log_files": logs}
    return found


def rows_read(events: pd.DataFrame, landed: pd.Series, intervals, night: date) -> int:  # noqa: ANN001
    """Rows of the source partitions that reading the event days ``intervals`` selects on ``night``: those that
    landed on or after the first event day read (:func:`featurekiln.compute.sources.read_events`), up to the
    night (nothing later has landed)."""
    if not intervals:
        return 0
    first = min(interval[0] for interval in intervals)
    return int(((landed >= first) & (landed <= night)).sum())


def synthetic_log(folder: Path, nights: int, lookback: int) -> None:
    """The Delta logs of ``nights`` nightly runs of the bench's view, written as files (no data files): per
    night one feature-table commit of its ``1 + lookback`` days and one tile-table commit, as the runs write
    them (``commitInfo`` with featurekiln's ``userMetadata``, one ``add``), and a checkpoint every
    :data:`CHECKPOINT_INTERVAL` commits as Delta writes them (the actions a reader replays)."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    for table, partition in (("features/nightly", "ds"), ("_tiles/nightly", "_block")):
        log = folder / table / LOG_FOLDER
        log.mkdir(parents=True)
        protocol = {"minReaderVersion": 1, "minWriterVersion": 2}
        metadata = {"id": "x", "format": {"provider": "parquet"}, "schemaString": "{}",
                    "partitionColumns": [partition], "createdTime": 0}
        adds: dict[str, dict] = {}
        for n in range(nights):
            last = START + timedelta(days=n)
            first = max(START, last - timedelta(days=lookback))
            body = {"start": first.isoformat(), "end": last.isoformat(), "fingerprint": "f" * 16, "run_id": f"r{n}",
                    "trigger": "nightly", "verdict": "success", "view": "nightly", "suites": "s" * 16}
            if partition == "_block":
                body = {**body, "kind": "tiles", "read": "source", "groups": ["g1", "g2"]}
                body.pop("fingerprint"), body.pop("verdict"), body.pop("suites")
            value = last.isoformat() if partition == "ds" else str(last.toordinal() // 32)
            actions = [{"commitInfo": {"timestamp": 1_700_000_000_000 + n, "operation": "WRITE",
                                       "operationMetrics": {"numOutputRows": "500"},
                                       "userMetadata": json.dumps(body, sort_keys=True)}},
                       {"add": {"path": f"{partition}={value}/part-{n}.parquet", "partitionValues": {partition: value},
                                "size": 10_000, "modificationTime": 0, "dataChange": True,
                                "stats": json.dumps({"numRecords": 500})}}]
            if n == 0:
                actions[1:1] = [{"protocol": protocol}, {"metaData": metadata}]
            (log / f"{n:020d}.json").write_text("\n".join(json.dumps(a) for a in actions) + "\n")
            adds[value] = actions[-1]["add"]
            if n % CHECKPOINT_INTERVAL == 0 and n:  # as Delta checkpoints every 10 commits
                rows = [{"protocol": protocol}, {"metaData": metadata}] + [{"add": a} for a in adds.values()]
                pq.write_table(pa.Table.from_pylist(rows), log / f"{n:020d}.checkpoint.parquet")


def ledger_growth(nights_list: list[int], lookback: int, console: Console) -> None:
    """The time of the ledger's reads that every night's planning makes (the feature table's days and the
    tile table's tiles, from their Delta logs as files), against the number of nights in the logs: the first
    plan over a log without a ledger summary (it reads every commit), and the plans after a writer summarized
    the log (the summary, then the commits after it and after the newest checkpoint)."""
    from featurekiln.offline.delta_log import DeltaLog
    from featurekiln.offline.materialized import ledger_plan

    view = FeatureView.model_validate(definition(lookback))
    reads = LogReads()
    table = Table(title="the ledger's reads of one night's plan (kiln plan / the plan task), local disk")
    for column in ("nights in the log", "commits", "first plan: files read", "seconds",
                   "later plans: files read", "seconds (best of 5)"):
        table.add_column(column, justify="right")
    for nights in nights_list:
        root = Path(tempfile.mkdtemp(prefix="kiln-bench-ledger-"))
        try:
            synthetic_log(root, nights, lookback)
            settings = Settings(defs_dir=root / "defs", warehouse=str(root))
            until = START + timedelta(days=nights)
            first, _ = timed(lambda: ledger_plan(view, until, settings))  # noqa: B023
            first_reads = reads.take()
            for folder in ("features/nightly", "_tiles/nightly"):  # what a writer does after its commit
                DeltaLog.of(str(root / folder), settings).summarize()
            reads.take()
            later = min(timed(lambda: ledger_plan(view, until, settings))[0] for _ in range(5))  # noqa: B023
            table.add_row(str(nights), str(2 * nights), str(first_reads), f"{first:.3f}", str(reads.take() // 5),
                          f"{later:.3f}")
        finally:
            shutil.rmtree(root, ignore_errors=True)
    console.print(table)


def main() -> int:  # noqa: PLR0915 - one linear script
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--keys", type=int, default=500)
    parser.add_argument("--nights", type=int, default=365)
    parser.add_argument("--lookback", type=int, default=2)
    parser.add_argument("--every", type=int, default=7, help="maintenance every W nights")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--verbose", action="store_true", help="print every night's time")
    parser.add_argument("--ledger-only", action="store_true",
                        help="only time the ledger's reads of a night's plan against synthetic logs of 10..1825 nights")
    args = parser.parse_args()
    if args.ledger_only:
        ledger_growth([10, 100, 365, 730, 1825], args.lookback, Console(width=140))
        return 0

    from featurekiln.offline.maintenance import maintain
    from featurekiln.orchestration.steps import plan_dag_run, run_step

    root = Path(tempfile.mkdtemp(prefix="kiln-bench-year-"))
    console = Console(width=140)
    try:
        settings = Settings(defs_dir=root / "defs", expectations_dir=root / "no_suites", warehouse=str(root),
                            spark_master=args.master, chunk_days=30, retain_days=0)
        spark = get_spark(settings, conf={"spark.sql.shuffle.partitions": "4"})
        body = definition(args.lookback)
        view = FeatureView.model_validate(body)
        events = make_events(args.events, args.keys, args.nights + 1)
        landed = pd.to_datetime(events["landed"]).dt.date
        event_day = events["event_ts"].dt.date
        history, log_reads = HistoryTimer(), LogReads()
        nights: list[dict[str, float]] = []
        reads: list[tuple[int, int]] = []
        before: dict[str, dict[str, int]] = {}
        after: dict[str, dict[str, int]] = {}
        reclaimed = dict.fromkeys(TABLES, (0, 0))
        maintenance_s: list[float] = []
        for night in range(1, args.nights + 1):
            day = START + timedelta(days=night - 1)
            land(root, events[(landed <= day)] if night == 1 else events[landed == day])
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            started = time.perf_counter()
            plan = plan_dag_run(view, {}, settings, interval_start=start, interval_end=start + timedelta(days=1),
                                reference=start, now=start + timedelta(days=1, hours=1), run_type="scheduled")
            planned = time.perf_counter()
            facts = {"run_id": f"scheduled__{day}", "trigger": "nightly"}
            run_step(view, plan.to_json(), settings, step="tiles", **facts)
            tiled = time.perf_counter()
            run_step(view, plan.to_json(), settings, step="publish", **facts)
            run_step(view, plan.to_json(), settings, step="push", **facts)
            done = time.perf_counter()
            nights.append({"total": done - started, "plan": planned - started, "tiles": tiled - planned,
                           "publish": done - tiled, "history": history.take(), "log reads": log_reads.take()})
            if night > 1:
                read = rows_read(events, landed, plan.tiles.from_source, day)
                first = day - timedelta(days=args.lookback)
                expected = int(((event_day >= first) & (event_day <= day) & (landed <= day)).sum())
                reads.append((read, expected))
            if night % args.every == 0 or night == args.nights:
                seconds, done_tables = timed(lambda: maintain(spark, settings, [view]))
                maintenance_s.append(seconds)
                for item in done_tables:
                    if item.table in reclaimed:
                        files, size = reclaimed[item.table]
                        reclaimed[item.table] = (files + item.reclaimed_files, size + item.reclaimed_bytes)
                        before[item.table] = {"files": item.files, "bytes": item.bytes,
                                              "live_files": item.live_files, "live_bytes": item.live_bytes}
                        after[item.table] = {"files": item.files_after, "bytes": item.bytes_after}
                console.print(f"maintenance after night {night}: {seconds:.1f} s; " + "; ".join(
                    f"{t} {before[t]['bytes'] / before[t]['live_bytes']:.2f}x live bytes before, "
                    f"{before[t]['files']} files ({before[t]['live_files']} live)" for t in TABLES))
            if night in MARKED or night % 25 == 0 or args.verbose:
                console.print(f"night {night} ({day}): {nights[-1]['total']:.2f} s "
                              + ", ".join(f"{k} {v:.2f}" for k, v in nights[-1].items() if k != "total"))
        final = measure(spark, settings, view.name)
        report(console, args, nights, reads, before, final, reclaimed, maintenance_s)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


def report(console: Console, args: argparse.Namespace, nights: list[dict[str, float]],  # noqa: PLR0913
           reads: list[tuple[int, int]], before: dict, after: dict, reclaimed: dict, maintenance_s: list[float]) -> None:
    marked = [n for n in MARKED if n <= len(nights)]
    if len(nights) not in marked:
        marked.append(len(nights))
    table = Table(title=f"year: {args.events:,} events, {args.keys:,} keys, {args.nights} nights, lookback "
                        f"{args.lookback}d, maintenance every {args.every} nights")
    for column in ("night", "seconds", "plan", "tiles", "publish", "history row", "commit files read", "/ night 10"):
        table.add_column(column, justify="right")
    base = nights[9]["total"] if len(nights) >= 10 else nights[0]["total"]
    for n in marked:
        t = nights[n - 1]
        table.add_row(str(n), f"{t['total']:.2f}", f"{t['plan']:.2f}", f"{t['tiles']:.2f}", f"{t['publish']:.2f}",
                      f"{t['history']:.2f}", str(t["log reads"]), f"{t['total'] / base:.2f}x")
    first = [t["total"] for t in nights[5:15]]
    last = [t["total"] for t in nights[-10:]]
    first_median, last_median = statistics.median(first), statistics.median(last)
    table.add_row("median 6-15", f"{first_median:.2f}", *(f"{statistics.median(t[k] for t in nights[5:15]):.2f}"
                                                        for k in ("plan", "tiles", "publish", "history")), "", "")
    table.add_row("median last 10", f"{last_median:.2f}", *(f"{statistics.median(t[k] for t in nights[-10:]):.2f}"
                                                           for k in ("plan", "tiles", "publish", "history")),
                  "", f"{last_median / first_median:.2f}x")
    console.print(table)
    console.print(f"maintenance: {len(maintenance_s)} runs, median {statistics.median(maintenance_s):.1f} s, "
                  f"last {maintenance_s[-1]:.1f} s")

    storage = Table(title="storage per table (data files; bytes in KiB)")
    for column in ("table", "live files", "live KiB", "days held", "before maintenance: files", "KiB", "x live",
                   "after: files", "KiB", "x live", "without maintenance: KiB", "x live", "log files"):
        storage.add_column(column, justify="right")
    held = {"tiles": args.nights + 89, "features": args.nights, "runs": args.nights}
    for name in TABLES:
        b, a = before[name], after[name]
        never = a["bytes"] + reclaimed[name][1]
        storage.add_row(name, str(a["live_files"]), f"{a['live_bytes'] / 1024:.0f}", str(held[name]),
                        str(b["files"]), f"{b['bytes'] / 1024:.0f}", f"{b['bytes'] / b['live_bytes']:.2f}",
                        str(a["files"]), f"{a['bytes'] / 1024:.0f}", f"{a['bytes'] / a['live_bytes']:.2f}",
                        f"{never / 1024:.0f}", f"{never / a['live_bytes']:.2f}", str(a["log_files"]))
    console.print(storage)
    per_night = {name: reclaimed[name][1] / max(len(nights) - 1, 1) for name in TABLES}
    for name in TABLES:
        live = after[name]["live_bytes"]
        console.print(f"{name}: replaced per night {per_night[name] / 1024:.1f} KiB ({per_night[name] / live:.1%} of "
                      "its live bytes now); a retention of R nights keeps about R times that beside the live data")
    ratios = [read / expected for read, expected in reads if expected]
    console.print(f"raw rows read per night / rows of 1 + {args.lookback} days: min {min(ratios):.3f}, "
                  f"median {statistics.median(ratios):.3f}, max {max(ratios):.3f} (over {len(ratios)} nights; "
                  f"median rows read {statistics.median(r for r, _ in reads):,.0f})")


if __name__ == "__main__":
    sys.exit(main())
