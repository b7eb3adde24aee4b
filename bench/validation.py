"""Benchmark: what the quality gate adds to a chunk's time, for the sample views.

Usage: ``python bench/validation.py [--users N] [--days D] [--chunk-days C] [--repeat R] [--views V,...]``

For each sample view (``feature_defs/``, its suite in ``expectations/`` plus the
built-in baseline), in one run on one Spark session, R times in turn:

(a) the backfill of one chunk of C days without validation (compute + commit);
(b) the same chunk with validation (compute and write the files, validate the
    written rows, then commit them), with the gate's own seconds (its scans of
    the written files).

Prints what validation adds, (b) - (a), relative to (a), from the best run of
each and from their medians; the target from the issue is that validation adds
at most 20% to a 30-day chunk of at least 1M rows (the default 35,000 users give
~1M rows of ``user_purchases`` per 30 days). One warm-up run first starts the
JVM and GE.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

from featurekiln.compute.session import get_spark
from featurekiln.runner import backfill
from featurekiln.samples import write_sample_sources
from featurekiln.settings import Settings
from featurekiln.definitions.loader import load_catalog

ROOT = Path(__file__).resolve().parents[1]
START = date(2025, 1, 1)


def timed_backfill(view, first: date, last: date, settings: Settings, spark, validate: bool) -> tuple[float, float]:  # noqa: ANN001
    """Seconds of one backfill, and the seconds its validation took."""
    started = time.perf_counter()
    result = backfill(view, first, last, settings=settings, spark=spark, chunk_days=(last - first).days + 1, validate=validate)
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

    table = Table("view", "rows", "chunk, no validation (s)", "chunk, validated (s)", "gate (s)",
                  "added / chunk, best", "added / chunk, median",
                  title=f"{args.chunk_days}-day chunk, {args.users} users ({args.repeat} runs of each, in turn)")
    chosen = [views[name] for name in args.views.split(",")] if args.views else list(views.values())
    for view in chosen:
        plain, validated, gate = [], [], []
        for _ in range(args.repeat):
            plain.append(timed_backfill(view, first, last, settings, spark, validate=False)[0])
            total, checking = timed_backfill(view, first, last, settings, spark, validate=True)
            validated.append(total)
            gate.append(checking)
        rows = spark.read.format("delta").load(settings.warehouse_path("features", view.name)).where(
            f"ds >= '{first}'").count()
        best, middle = min(plain), statistics.median(plain)
        table.add_row(view.name, str(rows), f"{best:.2f} / {middle:.2f}", f"{min(validated):.2f} / {statistics.median(validated):.2f}",
                      f"{min(gate):.2f}", f"{(min(validated) - best) / best:.0%}",
                      f"{(statistics.median(validated) - middle) / middle:.0%}")
    Console().print(table)


if __name__ == "__main__":
    main()
