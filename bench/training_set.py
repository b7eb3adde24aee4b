"""Benchmark: point-in-time training sets against a naive as-of join, in the same run.

Usage: ``python bench/training_set.py [--rows 1000000,10000000] [--naive-rows 1000000] [--keys 100000] [--days 60] [--repeat 3]``

Three Delta feature tables (written directly, with the chunk metadata a backfill
records) of ``--days`` snapshots each: ``users`` (K keys, 3 features), ``merchants``
(K/20 keys, 2 features) and ``user_country`` (two key columns, K keys, 1 feature),
about 70% of the keys present per day. Spines of N rows (parquet) with 1% of the
rows on one hot user, timestamps spread over the last days.

- featurekiln: ``write_training_set`` (spine -> parquet), after a warm-up run on 100k rows, ``--repeat``
  times per spine size. The first run at a size is reported apart from the median of the
  others: Spark's JIT-compiled code keeps getting faster over the first runs at a new size
  (1M rows: 8 s, then 5-6 s, then 4-5 s), and "once Spark is warm" (issue #11) is the latter.
- naive: the usual as-of join: per view a range join ``keys equal and ds < date(t)`` over
  every snapshot, then ``row_number()`` per spine row by ``ds`` descending, keep the first;
  written to parquet the same way. (It also differs in meaning: it falls back to an older
  snapshot when the key is absent from ``date(t) - 1``.)

Memory: peak RSS of this process and its JVM, sampled every 0.2 s. Spark runs with the
project's defaults (``local[*]``, 4 GB driver). Prints a table with time ratios.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psutil
import yaml
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from featurekiln.compute.session import get_spark  # noqa: E402
from featurekiln.offline.delta_table import chunk_metadata, replace_days, table_path  # noqa: E402
from featurekiln.planning.intervals import from_inclusive  # noqa: E402
from featurekiln.settings import Settings  # noqa: E402
from featurekiln.training import TrainingRequest, write_training_set  # noqa: E402

START = date(2025, 1, 1)
EPOCH_START = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp())
FEATURES = ["users", "merchants", "user_country"]
# Feast 0.67 get_historical_features on this machine, 1M rows x 3 views (issue #11).
FEAST = {"duckdb": (2.8, 0.8), "file (dask)": (19.7, 1.8)}
VIEWS = {
    "users": (["user_id"], ["purchases_7d", "spend_30d", "last_category"]),
    "merchants": (["merchant_id"], ["txn_7d", "chargebacks_30d"]),
    "user_country": (["user_id", "country"], ["visits_7d"]),
}


def definition(name: str, keys: list[str], features: list[str]) -> dict:
    return {
        "name": name,
        "entity": {"name": name, "keys": keys},
        "source": {"path": "raw/none", "format": "parquet", "timestamp": "ts"},
        "start": START.isoformat(),
        "features": [{"name": f, "agg": "count", "window": "7d"} for f in features],
    }


def write_tables(spark, settings: Settings, keys: int, days: int) -> None:  # noqa: ANN001
    """The three feature tables, one commit each with the chunk metadata of a backfill."""
    from pyspark.sql import functions as F

    from featurekiln.definitions import load_catalog

    catalog = load_catalog(settings.defs_dir)
    sizes = {"users": keys, "merchants": max(1, keys // 20), "user_country": keys}
    for name, (key_columns, features) in VIEWS.items():
        grid = spark.range(sizes[name]).withColumnRenamed("id", "k").crossJoin(spark.range(days).withColumnRenamed("id", "d"))
        grid = grid.where(F.abs(F.hash("k", "d")) % 10 < 7)  # ~70% of the keys per day
        ds = F.date_add(F.lit(START), F.col("d").cast("int"))
        columns = [F.col("k").alias(key_columns[0])]
        if len(key_columns) == 2:
            columns.append(F.element_at(F.array(*[F.lit(c) for c in ("DE", "FR", "US")]), (F.col("k") % 3 + 1).cast("int")).alias("country"))
        columns += [ds.alias("ds"), F.to_timestamp(F.date_add(ds, 1)).alias("feature_ts")]
        for i, feature in enumerate(features):
            value = (F.col("k") * (i + 3) + F.col("d")) % 97
            columns.append((value * 1.5 if i == 1 else value.cast("long")).alias(feature) if feature != "last_category" else F.concat(F.lit("c"), value.cast("string")).alias(feature))
        view = catalog[name]
        interval = from_inclusive(START, START + timedelta(days=days - 1))
        metadata = chunk_metadata(name, view.fingerprint(), interval, "bench", "cli")
        replace_days(spark, settings, table_path(settings, name), grid.select(*columns), interval, metadata, name)


def write_spine(spark, path: str, rows: int, keys: int, days: int) -> None:  # noqa: ANN001
    from pyspark.sql import functions as F

    hot = F.rand(1) < 0.01
    user = F.when(hot, F.lit(7)).otherwise((F.abs(F.hash("id")) % keys))
    seconds = (F.rand(2) * 20 * 86_400).cast("long") + (days - 20) * 86_400
    spine = spark.range(rows).select(
        F.col("id").alias("label_id"),
        user.cast("long").alias("user_id"),
        (F.abs(F.hash("id", F.lit(1))) % max(1, keys // 20)).alias("merchant_id"),
        F.element_at(F.array(*[F.lit(c) for c in ("DE", "FR", "US")]), (user % 3 + 1).cast("int")).alias("country"),
        F.timestamp_seconds(F.lit(EPOCH_START) + seconds).alias("ts"),
        (F.rand(3) < 0.1).alias("label"),
    )
    spine.write.mode("overwrite").parquet(path)


def naive(spark, settings: Settings, spine_path: str, out: str) -> None:  # noqa: ANN001
    """Range join over every snapshot + row_number per spine row, per view."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    frame = spark.read.parquet(spine_path).withColumn("_rid", F.monotonically_increasing_id())
    for name, (keys, features) in VIEWS.items():
        table = spark.read.format("delta").load(table_path(settings, name))
        right = table.select(*[F.col(k).alias(f"_r_{k}") for k in keys], F.col("ds").alias("_r_ds"),
                             *[F.col(f).alias(f"{name}__{f}") for f in features])
        condition = F.col("_r_ds") < F.to_date("ts")
        for key in keys:
            condition = condition & (F.col(key) == F.col(f"_r_{key}"))
        joined = frame.join(right, condition, "left")
        order = Window.partitionBy("_rid").orderBy(F.col("_r_ds").desc_nulls_last())
        frame = joined.withColumn("_rn", F.row_number().over(order)).where("_rn = 1").drop(
            "_rn", "_r_ds", *[f"_r_{k}" for k in keys])
    frame.drop("_rid").write.mode("overwrite").parquet(out)


def tree_rss() -> float:
    """RSS (GB) of this process and its children (the JVM, Python workers)."""
    me = psutil.Process()
    try:
        return (me.memory_info().rss + sum(c.memory_info().rss for c in me.children(recursive=True))) / 2**30
    except psutil.Error:
        return 0.0


class PeakMemory:
    """Peak RSS (GB) of this process and its children, sampled in a thread."""

    def __init__(self) -> None:
        self.start = tree_rss()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss())
            time.sleep(0.2)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def measure(run: Callable[[], None]) -> tuple[float, str]:
    """Seconds, and the peak RSS as 'peak (+growth over the start)' in GB."""
    with PeakMemory() as memory:
        started = time.perf_counter()
        run()
        seconds = time.perf_counter() - started
    return seconds, f"{memory.peak:.2f} (+{memory.peak - memory.start:.2f})"


def highest(peaks: list[str]) -> str:
    """The largest of :func:`measure`'s peak strings."""
    return max(peaks, key=lambda peak: float(peak.split()[0]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000000,10000000", help="spine sizes, comma-separated")
    parser.add_argument("--naive-rows", default="1000000", help="spine sizes the naive join also runs on")
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3, help="featurekiln runs per spine size (>= 2: first + warm median)")
    args = parser.parse_args()
    sizes = [int(r) for r in args.rows.split(",")]
    naive_sizes = {int(r) for r in args.naive_rows.split(",") if r}
    console = Console()
    root = Path(tempfile.mkdtemp(prefix="kiln-bench-training-"))
    try:
        defs = root / "defs"
        defs.mkdir()
        for name, (keys, features) in VIEWS.items():
            (defs / f"{name}.yaml").write_text(yaml.safe_dump(definition(name, keys, features)))
        settings = Settings(defs_dir=defs, warehouse=str(root / "wh"))
        spark = get_spark(Settings(spark_master="local[*]"))
        write_tables(spark, settings, args.keys, args.days)
        warm = str(root / "spine_warm")
        write_spine(spark, warm, 100_000, args.keys, args.days)
        request = TrainingRequest(tuple(FEATURES))
        write_training_set(spark, warm, str(root / "out_warm"), request, settings)
        table = Table("spine rows", "method", "seconds", "peak RSS GB (+growth)", "rows out", "vs featurekiln warm",
                      title=f"training set x 3 views ({args.keys} keys, {args.days} snapshots per table)")
        for rows in sizes:
            spine = str(root / f"spine_{rows}")
            write_spine(spark, spine, rows, args.keys, args.days)
            runs = []
            for _ in range(max(1, args.repeat)):
                shutil.rmtree(root / f"out_{rows}", ignore_errors=True)
                result = {}
                seconds, peak = measure(lambda: result.setdefault("r", write_training_set(
                    spark, spine, str(root / f"out_{rows}"), request, settings)))
                runs.append((seconds, peak, result["r"].report.rows_out))
            first, warm = runs[0], runs[1:] or runs
            ours = statistics.median(seconds for seconds, _, _ in warm)
            table.add_row(f"{rows:,}", "featurekiln, first run", f"{first[0]:.1f}", first[1], f"{first[2]:,}", "")
            table.add_row("", f"featurekiln, warm (median of {len(warm)})", f"{ours:.1f}",
                          highest([peak for _, peak, _ in warm]), f"{warm[-1][2]:,}", "1.00")
            console.print(f"{rows:,} rows: featurekiln " + ", ".join(f"{s:.1f}s" for s, _, _ in runs), highlight=False)
            if rows in naive_sizes:
                seconds, peak = measure(lambda: naive(spark, settings, spine, str(root / f"naive_{rows}")))
                count = spark.read.parquet(str(root / f"naive_{rows}")).count()
                table.add_row("", "naive as-of join", f"{seconds:.1f}", peak, f"{count:,}", f"{seconds / ours:.2f}")
                console.print(f"{rows:,} rows: naive {seconds:.1f}s, peak RSS {peak} GB", highlight=False)
            shutil.rmtree(spine, ignore_errors=True)
            shutil.rmtree(root / f"out_{rows}", ignore_errors=True)
            shutil.rmtree(root / f"naive_{rows}", ignore_errors=True)
        for store, (seconds, gb) in FEAST.items():
            table.add_row("1,000,000", f"Feast 0.67 {store} (issue #11)", f"{seconds}", f"{gb}", "", "")
        console.print(table)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
