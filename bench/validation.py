"""Benchmark: what the quality gate adds to a chunk's time, for the sample views.

Usage: ``python bench/validation.py [--users N] [--days D] [--chunk-days C] [--repeat R] [--views V,...]``

For each sample view (``feature_defs/``, its suite in ``expectations/`` plus the
built-in baseline), in one run on one Spark session, R times in turn:

(a) the backfill of one chunk of C days without validation and without feature
    statistics (compute + write + commit: the write alone);
(b) the same chunk with validation but without feature statistics (compute and
    write the files, validate the written rows, then commit them), with the
    gate's own seconds (its scans of the written files);
(c) the same chunk as ``kiln backfill`` runs it: validation and the per-day
    feature statistics (observed as the files are written, stored in
    ``_kiln/stats`` after the commit).

Prints what (b) and (c) add to (a), relative to (a), from the best run of each
and from their medians. Targets: the gate adds at most 20% to a 30-day chunk of
at least 1M rows (the default 35,000 users give ~1M rows of ``user_purchases``
per 30 days); the gate and the statistics together at most 25%. One warm-up run
first starts the JVM and GE.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

from featurekiln import runner
from featurekiln.compute.session import get_spark
from featurekiln.quality import statistics as feature_stats
from featurekiln.runner import backfill
from featurekiln.samples import write_sample_sources
from featurekiln.settings import Settings
from featurekiln.definitions.loader import load_catalog

ROOT = Path(__file__).resolve().parents[1]
START = date(2025, 1, 1)


@contextmanager
def no_feature_statistics() -> Iterator[None]:
    """Runs inside take and store no feature statistics (the baselines (a) and (b))."""
    saved = feature_stats.observable, feature_stats.day_statistics, runner.publish_stats
    feature_stats.observable = lambda *_args: {}
    feature_stats.day_statistics = lambda *_args: []
    runner.publish_stats = lambda *_args: None
    try:
        yield
    finally:
        feature_stats.observable, feature_stats.day_statistics, runner.publish_stats = saved


def timed_backfill(view, first: date, last: date, settings: Settings, spark, validate: bool,  # noqa: ANN001
                   stats: bool = True) -> tuple[float, float]:
    """Seconds of one backfill, and the seconds its validation took."""
    started = time.perf_counter()
    if stats:
        result = backfill(view, first, last, settings=settings, spark=spark, chunk_days=(last - first).days + 1,
                          validate=validate)
    else:
        with no_feature_statistics():
            result = backfill(view, first, last, settings=settings, spark=spark, chunk_days=(last - first).days + 1,
                              validate=validate)
    total = time.perf_counter() - started
    return total, sum(c.seconds for c in result.report.chunks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=35_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--chunk-days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=4)
    parser.add_argument("--views", default="", help="comma-separated view names (default: every sample view)")
    args = parser.parse_args()

    warehouse = Path(tempfile.mkdtemp(prefix="kiln-bench-validation-"))
    settings = Settings(
        defs_dir=ROOT / "feature_defs", expectations_dir=ROOT / "expectations", warehouse=str(warehouse), spark_master="local[2]"
    )
    spark = get_spark(settings, {"spark.sql.shuffle.partitions": "4"})
    spark.sparkContext.setLogLevel("ERROR")
    write_sample_sources(warehouse, start=START, days=args.days, users=args.users)
    last = START + timedelta(days=args.days - 1)
    first = last - timedelta(days=args.chunk_days - 1)
    views = load_catalog(settings.defs_dir)
    timed_backfill(next(iter(views.values())), last, last, settings, spark, validate=True)  # warm-up: JVM, GE

    table = Table("view", "rows", "(a) write alone (s)", "(b) + gate (s)", "(c) + gate + stats (s)", "gate (s)",
                  "(b) adds, best / median", "(c) adds, best / median",
                  title=f"{args.chunk_days}-day chunk, {args.users} users ({args.repeat} runs of each, in turn; "
                        "seconds best / median)")
    chosen = [views[name] for name in args.views.split(",")] if args.views else list(views.values())
    for view in chosen:
        plain, validated, full, gate = [], [], [], []
        for _ in range(args.repeat):
            plain.append(timed_backfill(view, first, last, settings, spark, validate=False, stats=False)[0])
            total, checking = timed_backfill(view, first, last, settings, spark, validate=True, stats=False)
            validated.append(total)
            gate.append(checking)
            full.append(timed_backfill(view, first, last, settings, spark, validate=True)[0])
        rows = spark.read.format("delta").load(settings.warehouse_path("features", view.name)).where(
            f"ds >= '{first}'").count()
        best, middle = min(plain), statistics.median(plain)

        def added(times: list[float], best: float = best, middle: float = middle) -> str:
            return f"{(min(times) - best) / best:.0%} / {(statistics.median(times) - middle) / middle:.0%}"

        table.add_row(view.name, str(rows), f"{best:.2f} / {middle:.2f}",
                      f"{min(validated):.2f} / {statistics.median(validated):.2f}",
                      f"{min(full):.2f} / {statistics.median(full):.2f}", f"{min(gate):.2f}", added(validated), added(full))
    Console().print(table)


if __name__ == "__main__":
    main()
