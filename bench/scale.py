"""Benchmark: the backfill's memory stays bounded at scale (issue 10: 1M keys, 10 years, 50 features).

Usage: ``python bench/scale.py [--keys K] [--years Y] [--features F] [--only NAME ...]``

Runs ``kiln backfill``'s pipeline (tiles stored, snapshots assembled, every
chunk validated, one commit) at ``local[2]`` with the project's default Spark
memory (featurekiln.compute.session: a 4 GB driver, which in local mode is the
executor too) on four shapes of data:

- ``keys``: K distinct keys (default 1,000,000), 3 events each over 37 days,
  7 snapshot days, windows 1d/7d/30d;
- ``keys/4``: the same with K/4 keys, to compare the peaks: the assembler works
  on groups of whole keys of a bounded number of grid cells, so its memory must
  not grow with the number of keys;
- ``history``: a key with an event on every day of Y years (default 10), beside
  499 sparse keys, all Y years of snapshots (ttl Y years): one key's tiles span
  many Arrow batches;
- ``features``: F features (default 50), every aggregation and window, each over
  an expression of its own (50 features: 44 partial groups, 50 tile columns),
  over 1M events and 20k keys, 30 snapshot days.

For each: wall time, snapshot rows, and the peak resident memory of the JVM and
of the largest Python worker (sampled every 0.1 s). There is no baseline to beat
here: the targets are that every run finishes with the default memory, and that
the worker's peak does not grow with the keys (``keys`` vs ``keys/4``).
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
from rich.console import Console
from rich.table import Table

from featurekiln.compute.session import get_spark
from featurekiln.definitions.models import FeatureView
from featurekiln.runner import backfill
from featurekiln.settings import Settings

START = date(2025, 1, 1)
DAY_US = 86_400_000_000
AGGS = [("count", None), ("sum", "amount"), ("avg", "amount"), ("min", "amount"), ("max", "amount"),
        ("first", "amount"), ("last", "label"), ("count_distinct", "label")]


@dataclass
class Shape:
    """One benchmark run: its definition, its events and its snapshot days."""

    definition: dict
    events: pd.DataFrame
    first: date
    last: date


def definition(name: str, features: list[dict], ttl: str) -> dict:
    return {"name": name, "entity": {"name": "user", "keys": ["user_id"]},
            "source": {"path": f"raw/{name}", "format": "parquet", "timestamp": "event_ts"},
            "start": START.isoformat(), "ttl": ttl, "features": features}


def events(rng: np.random.Generator, users: np.ndarray, first_day: int, days: np.ndarray) -> pd.DataFrame:
    """Events of ``users`` on ``days`` (offsets from ``first_day`` days after START) at random times."""
    n = len(users)
    stamps = pd.Timestamp(START, tz="UTC") + pd.to_timedelta((first_day + days) * DAY_US + rng.integers(0, DAY_US, n),
                                                             unit="us")
    amount = rng.gamma(2.0, 20.0, n).round(2)
    amount[rng.random(n) < 0.02] = np.nan
    return pd.DataFrame({"user_id": users.astype("int64"), "event_ts": stamps, "amount": amount,
                         "label": np.char.add("l", rng.integers(0, 50, n).astype(str))})


def many_keys(name: str, keys: int) -> Shape:
    rng = np.random.default_rng(keys)
    users = np.repeat(np.arange(keys), 3)
    features = [{"name": "events_1d", "agg": "count", "window": "1d"},
                {"name": "amount_7d", "agg": "sum", "expr": "amount", "window": "7d"},
                {"name": "avg_amount_30d", "agg": "avg", "expr": "amount", "window": "30d"},
                {"name": "last_amount", "agg": "last", "expr": "amount"}]
    frame = events(rng, users, -30, rng.integers(0, 37, len(users)))
    return Shape(definition(name.replace("/", "_"), features, "30d"), frame, START,
                 START + timedelta(days=6))


def long_history(years: int) -> Shape:
    rng = np.random.default_rng(years)
    days = round(365.25 * years)
    sparse = rng.integers(1, 500, 20_000)
    users = np.concatenate([np.zeros(days, dtype=np.int64), sparse])
    frame = events(rng, users, 0, np.concatenate([np.arange(days), rng.integers(0, days, len(sparse))]))
    features = [{"name": "events_1d", "agg": "count", "window": "1d"},
                {"name": "amount_7d", "agg": "sum", "expr": "amount", "window": "7d"},
                {"name": "max_amount_90d", "agg": "max", "expr": "amount", "window": "90d"},
                {"name": "labels_365d", "agg": "count_distinct", "expr": "label", "window": "365d"},
                {"name": "last_amount", "agg": "last", "expr": "amount"}]
    return Shape(definition("history", features, f"{days}d"), frame, START,
                 START + timedelta(days=days - 1))


def variant(expr: str | None, i: int) -> dict:
    """Feature ``i``'s own expression over column ``expr``, so that it has partials of its own."""
    if expr is None:
        return {}
    return {"expr": f"amount * {i + 1}" if expr == "amount" else f"concat({expr}, '-{i}')"}


def wide(count: int) -> Shape:
    rng = np.random.default_rng(count)
    combinations = itertools.cycle(itertools.product(["1d", "7d", "30d", "90d"], AGGS))
    features = [{"name": f"f{i:02d}_{agg}_{window}", "agg": agg, "window": window, **variant(expr, i)}
                for i, (window, (agg, expr)) in enumerate(itertools.islice(combinations, count))]
    users = (rng.zipf(1.3, 1_000_000) - 1) % 20_000
    frame = events(rng, users, -90, rng.integers(0, 120, len(users)))
    return Shape(definition("features", features, "90d"), frame, START, START + timedelta(days=29))


class Peaks:
    """Peak RSS (GB) of the JVM and of the largest Python worker below this process, sampled in a thread."""

    def __init__(self) -> None:
        self.jvm = self.worker = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            for child in me.children(recursive=True):
                try:
                    rss, name = child.memory_info().rss / 2**30, child.name()
                except psutil.Error:
                    continue
                if name == "java":
                    self.jvm = max(self.jvm, rss)
                elif name.startswith("python"):
                    self.worker = max(self.worker, rss)
            time.sleep(0.1)

    def __enter__(self) -> Peaks:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--only", nargs="*", help="run only these shapes (keys, keys/4, history, features)")
    args = parser.parse_args()

    shapes: dict[str, Callable[[], Shape]] = {
        "keys": lambda: many_keys("keys", args.keys),
        "keys/4": lambda: many_keys("keys/4", args.keys // 4),
        "history": lambda: long_history(args.years),
        "features": lambda: wide(args.features),
    }
    root = Path(tempfile.mkdtemp(prefix="kiln-bench-scale-"))
    console = Console(width=120)
    table = Table(title="bounded memory at local[2], default Spark memory (4 GB driver); peaks of resident memory")
    for column in ("shape", "events", "keys", "features", "snapshot rows", "seconds", "rows/s", "JVM GB",
                   "Python worker GB"):
        table.add_column(column, justify="left" if column == "shape" else "right")
    try:
        settings = Settings(defs_dir=root / "defs", expectations_dir=root / "no_suites", warehouse=str(root),
                            spark_master="local[2]", chunk_days=30)
        spark = get_spark(settings)
        for name in args.only or shapes:
            shape = shapes[name]()
            path = root / "raw" / shape.definition["name"]
            path.mkdir(parents=True)
            shape.events.to_parquet(path / "events.parquet", coerce_timestamps="us", index=False)
            view = FeatureView.model_validate(shape.definition)
            with Peaks() as peaks:
                started = time.perf_counter()
                result = backfill(view, shape.first, shape.last, settings=settings, spark=spark)
                seconds = time.perf_counter() - started
            console.print(f"{name}: {result.rows:,} rows in {seconds:.1f} s")
            table.add_row(name, f"{len(shape.events):,}", f"{shape.events['user_id'].nunique():,}",
                          str(len(view.features)), f"{result.rows:,}", f"{seconds:.1f}",
                          f"{result.rows / seconds:,.0f}", f"{peaks.jvm:.2f}", f"{peaks.worker:.2f}")
        console.print(table)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
