"""Benchmark: online store push throughput and read latency, per backend, against a naive baseline.

Usage: ``python bench/online.py [--keys K] [--days D] [--dynamodb-keys N] [--naive-rows R]``

In one run, for SQLite, Redis (a real redis-server) and DynamoDB (moto server on loopback):

- push: a Delta feature table of K keys x D daily snapshots (default 100k x 10 =
  1M rows, 3 features) is pushed snapshot by snapshot from Spark, oldest first,
  so every push replaces every key (newer wins) and sweeps; rows/s over all D pushes.
  DynamoDB (moto, a Python emulator) pushes one snapshot of N keys.
- naive push: the same rows written one at a time (one transaction / round trip
  per row, same newer-wins semantics), on R rows from the driver.
- reads: ``get_features`` p50/p99 for single keys (2000 requests) and 100-key
  batches (500 requests) after warm-up; naive: a new client per single-key
  request (no pooling) and 100 single-key requests per batch (no batching).

Prints the tables with ratios vs the naive baseline and vs Feast 0.67's numbers
measured on this machine (issue #5).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from featurekiln.compute.session import get_spark  # noqa: E402
from featurekiln.online import Column, OnlineTable, get_features, open_store, parse_store_url  # noqa: E402
from featurekiln.online.codec import day_number  # noqa: E402
from featurekiln.online.push import expire_seconds, push_snapshot  # noqa: E402
from featurekiln.online.read import close_stores  # noqa: E402
from featurekiln.settings import Settings  # noqa: E402
from tests.online.servers import AWS_ENV, MotoServer, RedisServer, free_port  # noqa: E402

START = date(2025, 1, 1)
TABLE = OnlineTable(
    "bench_users",
    (Column("user_id", "int"),),
    (Column("purchases_7d", "int"), Column("spend_30d", "float"), Column("last_category", "string")),
    ttl_days=30,
)
# Feast 0.67 on this machine: 1M rows, 99k entities, 3 features (issue #5).
FEAST = {
    "sqlite": {"push": 6_700, "single_p99": 0.45, "batch_p99": 6.2},
    "redis": {"push": 11_600, "single_p99": 0.71, "batch_p99": 11.8},
}
TARGETS = {"sqlite": {"push": 100_000, "batch_p99": 2.0}, "redis": {"push": 100_000, "batch_p99": 4.0}}


def feature_table(spark, root: Path, keys: int, days: int) -> str:  # noqa: ANN001
    """Write K keys x D snapshots (3 features) as a Delta table partitioned by ds; return its path."""
    from pyspark.sql import functions as F

    path = str(root / "features" / "bench_users")
    frame = (
        spark.range(keys).withColumnRenamed("id", "user_id")
        .crossJoin(spark.range(days).withColumnRenamed("id", "d"))
        .select(
            "user_id",
            F.date_add(F.lit(START), F.col("d").cast("int")).alias("ds"),
            F.col("d"),
        )
        .select(
            "user_id",
            "ds",
            F.to_timestamp(F.date_add("ds", 1)).alias("feature_ts"),
            ((F.col("user_id") * 7 + F.col("d")) % 50).alias("purchases_7d"),
            (F.col("user_id") % 997 * 1.25 + F.col("d")).alias("spend_30d"),
            F.concat(F.lit("cat-"), (F.col("user_id") % 20).cast("string")).alias("last_category"),
        )
    )
    frame.write.format("delta").mode("overwrite").partitionBy("ds").save(path)
    return path


def rows_for(keys: range, ds: date) -> list[tuple]:
    d = day_number(ds)
    cut = (d + 1) * 86_400_000_000
    return [(u, d, cut, (u * 7) % 50, u % 997 * 1.25, f"cat-{u % 20}") for u in keys]


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000


def timed_requests(fn: Callable[[], object], count: int, warmup: int) -> tuple[float, float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return percentiles(samples)


def bench_backend(name: str, url: str, spark, path: str, args: argparse.Namespace, console: Console) -> dict:  # noqa: ANN001
    from pyspark.sql import functions as F

    config = parse_store_url(url)
    settings = Settings(online_store=url)
    keys, days = (args.dynamodb_keys, 1) if name == "dynamodb" else (args.keys, args.days)
    frame = spark.read.format("delta").load(path)
    if name == "dynamodb":
        frame = frame.where(F.col("user_id") < keys)
    result: dict[str, float] = {}
    with console.status(f"{name}: pushing {days} snapshot(s) of {keys:,} keys"):
        started = time.perf_counter()
        rows = 0
        for i in range(days):
            ds = START + timedelta(days=i)
            pushed = push_snapshot(frame.where(F.col("ds") == F.lit(ds)), TABLE, config, ds, partitions=args.partitions)
            rows += pushed.rows
        result["push_rows"] = rows
        result["push"] = rows / (time.perf_counter() - started)
    naive_rows = min(args.naive_rows if name != "dynamodb" else args.naive_rows // 10, keys)
    with console.status(f"{name}: naive push of {naive_rows:,} rows, one write per row"):
        store = open_store(config)
        batch = rows_for(range(naive_rows), START + timedelta(days=days + 1))
        started = time.perf_counter()
        for row in batch:
            store.write_rows(TABLE, [row], expire_seconds(TABLE))
        result["naive_push"] = naive_rows / (time.perf_counter() - started)
        store.close()
    rng = random.Random(1)
    count = keys
    single = lambda: get_features(TABLE.name, [{"user_id": rng.randrange(count)}], settings=settings)  # noqa: E731
    hundred = lambda: get_features(  # noqa: E731
        TABLE.name, [{"user_id": rng.randrange(count)} for _ in range(100)], settings=settings
    )
    scale = 4 if name == "dynamodb" else 1
    with console.status(f"{name}: reads"):
        result["single_p50"], result["single_p99"] = timed_requests(single, args.single // scale, 200 // scale)
        result["batch_p50"], result["batch_p99"] = timed_requests(hundred, args.batch // scale, 50 // scale)

        def naive_single() -> None:
            store = open_store(config)  # no pooling: a new client per request
            try:
                store.read_rows(TABLE.name, [(rng.randrange(count),)])
            finally:
                store.close()

        def naive_batch() -> None:
            for _ in range(100):
                single()

        result["naive_single_p50"], result["naive_single_p99"] = timed_requests(naive_single, args.single // (4 * scale), 20)
        result["naive_batch_p50"], result["naive_batch_p99"] = timed_requests(naive_batch, args.batch // (10 * scale), 5)
    close_stores()
    return result


def report(results: dict[str, dict], console: Console, args: argparse.Namespace) -> None:
    table = Table(title=f"online store: {args.keys:,} keys x {args.days} snapshots, 3 features (DynamoDB: {args.dynamodb_keys:,} keys, moto)")
    for column in ("backend", "push rows/s", "naive rows/s", "x naive", "single p50/p99 ms", "naive single p99",
                   "batch100 p50/p99 ms", "naive batch p99", "x naive"):
        table.add_column(column, justify="right")
    for name, r in results.items():
        table.add_row(
            name,
            f"{r['push']:,.0f}",
            f"{r['naive_push']:,.0f}",
            f"{r['push'] / r['naive_push']:.1f}x",
            f"{r['single_p50']:.3f} / {r['single_p99']:.3f}",
            f"{r['naive_single_p99']:.3f}",
            f"{r['batch_p50']:.3f} / {r['batch_p99']:.3f}",
            f"{r['naive_batch_p99']:.2f}",
            f"{r['naive_batch_p99'] / r['batch_p99']:.1f}x",
        )
    console.print(table)
    feast = Table(title="vs Feast 0.67 on this machine (ratio > 1: featurekiln is better) and targets")
    for column in ("backend", "metric", "featurekiln", "Feast", "ratio", "target", "met"):
        feast.add_column(column, justify="right")
    for name, ref in FEAST.items():
        r = results.get(name)
        if r is None:
            continue
        rows = [
            ("push rows/s", r["push"], ref["push"], r["push"] / ref["push"], f">= {TARGETS[name]['push']:,}",
             r["push"] >= TARGETS[name]["push"]),
            ("single p99 ms", r["single_p99"], ref["single_p99"], ref["single_p99"] / r["single_p99"],
             f"<= {ref['single_p99']}", r["single_p99"] <= ref["single_p99"]),
            ("batch100 p99 ms", r["batch_p99"], ref["batch_p99"], ref["batch_p99"] / r["batch_p99"],
             f"<= {TARGETS[name]['batch_p99']}", r["batch_p99"] <= TARGETS[name]["batch_p99"]),
        ]
        for metric, ours, theirs, ratio, target, met in rows:
            fmt = "{:,.0f}" if "rows" in metric else "{:.3f}"
            feast.add_row(name, metric, fmt.format(ours), fmt.format(theirs), f"{ratio:.1f}x", target, "yes" if met else "NO")
    console.print(feast)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--dynamodb-keys", type=int, default=5_000)
    parser.add_argument("--naive-rows", type=int, default=20_000)
    parser.add_argument("--single", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument(
        "--partitions", type=int, default=None,
        help="repartition each push to this many Spark tasks (default: none, the table's own files, as push_view does)",
    )
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--backends", default="sqlite,redis,dynamodb")
    args = parser.parse_args()

    console = Console()
    for key, value in AWS_ENV.items():
        os.environ.setdefault(key, value)
    root = Path(tempfile.mkdtemp(prefix="kiln-bench-online-"))
    servers = []
    try:
        spark = get_spark(Settings(warehouse=str(root), spark_master=args.master))
        with console.status(f"writing the feature table ({args.keys * args.days:,} rows)"):
            path = feature_table(spark, root, args.keys, args.days)
        urls = {"sqlite": f"sqlite:///{root / 'online.db'}"}
        backends = args.backends.split(",")
        if "redis" in backends:
            redis_server = RedisServer(free_port(), root / "redis")
            redis_server.start()
            servers.append(redis_server)
            urls["redis"] = redis_server.url
        if "dynamodb" in backends:
            moto = MotoServer(free_port(), root / "moto")
            moto.start()
            servers.append(moto)
            urls["dynamodb"] = f"dynamodb://?region=us-east-1&endpoint_url={moto.endpoint_url}&max_workers=8"
        results = {name: bench_backend(name, urls[name], spark, path, args, console) for name in backends}
        report(results, console, args)
    finally:
        for server in servers:
            server.kill()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
