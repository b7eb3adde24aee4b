"""The assembly's memory bound does not change its results (issue 10): checked against the oracle.

The assembler holds at most one Arrow batch plus one key's tiles, and works on
groups of whole keys of a bounded number of grid cells
(:mod:`featurekiln.compute.windows`). These tests drive the paths that the
bound adds and that small test data never reach otherwise:

- a key with ten years of daily tiles, so its tiles span many Arrow batches and
  wait for their end (Spark with tiny Arrow batches), checked against
  :func:`tests.oracle.expected_snapshots` on sampled days and, for the presence
  of a row, on every day;
- the same tiles streamed through the assembler in batches of 1, 7 and 100
  rows with groups of one key up to the default budget: every layout gives the
  same table as Spark's run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from tests.oracle import assert_frames_match, expected_snapshots

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

START = date(2016, 1, 1)
DAYS = (date(2026, 1, 1) - START).days  # ten years of snapshots
KEYS = ["user_id", "region"]
LABELS = [f"label-{i:02d}" for i in range(20)]
DEFINITION: dict[str, Any] = {
    "name": "long_history",
    "entity": {"name": "user_region", "keys": KEYS},
    "source": {"path": "raw/long_history", "format": "parquet", "timestamp": "event_ts"},
    "start": START.isoformat(),
    "features": [
        {"name": "n_1d", "agg": "count", "window": "1d"},
        {"name": "qty_7d", "agg": "sum", "expr": "qty", "window": "7d"},
        {"name": "avg_amount_30d", "agg": "avg", "expr": "amount", "window": "30d"},
        {"name": "max_amount_90d", "agg": "max", "expr": "amount", "window": "90d"},
        {"name": "min_label_10y", "agg": "min", "expr": "label", "window": "3650d"},
        {"name": "labels_365d", "agg": "count_distinct", "expr": "label", "window": "365d"},
        {"name": "first_qty_30d", "agg": "first", "expr": "qty", "window": "30d"},
        {"name": "last_amount", "agg": "last", "expr": "amount"},
    ],
}
TTL = 3650  # the longest window
ARROW_BATCH = "spark.sql.execution.arrow.maxRecordsPerBatch"


def long_history_events(seed: int = 20160101) -> pd.DataFrame:
    """Key (1, 'a') has one to three events on about 70% of ten years' days; 40 other keys have 1-30 events
    each, anywhere in the ten years; 5% of amounts are null."""
    rng = np.random.default_rng(seed)
    busy = np.flatnonzero(rng.random(DAYS) < 0.7)
    day = np.repeat(busy, rng.integers(1, 4, len(busy)))
    users, regions = [1] * len(day), ["a"] * len(day)
    for user in range(2, 42):
        n = int(rng.integers(1, 31))
        day = np.concatenate([day, rng.integers(0, DAYS, n)])
        users += [user] * n
        regions += ["a" if user % 3 else "b"] * n
    n = len(day)
    amount = rng.gamma(2.0, 10.0, n).round(2)
    amount[rng.random(n) < 0.05] = np.nan
    stamps = pd.Timestamp(START, tz="UTC") + pd.to_timedelta(day * 86_400_000_000 + rng.integers(0, 86_400_000_000, n),
                                                             unit="us")
    return pd.DataFrame({"user_id": np.array(users, dtype="int64"), "region": regions, "event_ts": stamps,
                         "amount": amount, "qty": rng.integers(-5, 50, n).astype("int64"),
                         "label": np.array(LABELS)[rng.integers(0, len(LABELS), n)]})


@dataclasses.dataclass
class Run:
    events: pd.DataFrame
    ordered: pa.Table  # the assembler's input as Spark partitions and sorts it
    table: pa.Table  # Spark's snapshots, assembled from Arrow batches of 100 rows
    view: Any


def _sorted(table: pa.Table) -> pa.Table:
    return table.sort_by([(k, "ascending") for k in (*KEYS, "ds")])


@pytest.fixture(scope="module")
def run(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Run:
    from featurekiln.compute.sources import read_events
    from featurekiln.compute.tiles import build_tiles
    from featurekiln.compute.windows import assembly_input, snapshots
    from featurekiln.definitions.models import FeatureView
    from featurekiln.settings import Settings

    root = tmp_path_factory.mktemp("long_history")
    events = long_history_events()
    (root / "raw").mkdir()
    events.to_parquet(root / "raw" / "long_history", coerce_timestamps="us", index=False)
    settings = Settings(warehouse=str(root), spark_master="local[2]")
    view = FeatureView.model_validate(DEFINITION)
    interval = (START, START + timedelta(days=DAYS))
    tiles = build_tiles(read_events(spark, view, settings, (START, interval[1])), view).persist()
    before = spark.conf.get(ARROW_BATCH)
    spark.conf.set(ARROW_BATCH, "100")
    try:
        table = snapshots(tiles, view, interval).toArrow()
    finally:
        spark.conf.set(ARROW_BATCH, before)
    ordered = assembly_input(tiles, view, interval).toArrow()
    tiles.unpersist()
    return Run(events=events, ordered=ordered, table=_sorted(table), view=view)


def test_the_long_key_spans_many_arrow_batches(run: Run) -> None:
    """Guards the data: the busy key has thousands of tile days, many times Spark's batch of 100 rows here."""
    long_key = run.ordered.filter(pc.equal(run.ordered["user_id"], 1))
    assert long_key.num_rows > 20 * 100


def test_a_row_exists_exactly_while_a_tile_is_within_the_ttl(run: Run) -> None:
    """Every key's rows over ten years, counted from its event days (not by the oracle: too slow for 3650 days)."""
    day = ((run.events["event_ts"] - pd.Timestamp(START, tz="UTC")).dt.days).to_numpy()
    expected = {}
    for (user, region), days in pd.Series(day).groupby([run.events["user_id"], run.events["region"]]):
        present = np.zeros(DAYS + TTL, dtype=np.int64)
        present[np.unique(days.to_numpy())] = 1
        within = np.convolve(present, np.ones(TTL, dtype=np.int64))[:DAYS]  # tiles in ds - ttl + 1 .. ds
        expected[(int(user), region)] = int((within > 0).sum())
    actual = run.table.group_by(KEYS).aggregate([("ds", "count")]).to_pylist()
    assert {(r["user_id"], r["region"]): r["ds_count"] for r in actual} == expected


def test_sampled_days_match_the_oracle(run: Run, collect_frame: Callable[[DataFrame], pd.DataFrame],
                                       spark: SparkSession) -> None:
    offsets = sorted({0, 1, 2, 6, 7, 29, 30, 89, 90, 364, 365, *range(127, DAYS, 211), DAYS - 2, DAYS - 1})
    sampled = pa.array([START + timedelta(days=o) for o in offsets], type=pa.date32())
    actual = run.table.filter(pc.is_in(run.table["ds"], value_set=sampled))
    frame = collect_frame(spark.createDataFrame(actual))
    expected = pd.concat([expected_snapshots(run.events, DEFINITION, START + timedelta(days=o),
                                             START + timedelta(days=o)) for o in offsets], ignore_index=True)
    assert len(frame) == len(expected) > len(offsets)
    assert_frames_match(frame, expected, KEYS)


@pytest.mark.parametrize("batch", [1, 7, 100])
@pytest.mark.parametrize("cells", [1, 64, None])
def test_every_batch_size_and_group_budget_gives_the_same_table(run: Run, batch: int, cells: int | None) -> None:
    """The assembler in this process, fed the tiles Spark sorted, in batches of ``batch`` rows and groups of
    ``cells`` grid cells (1: one key per group; None: the default budget)."""
    from featurekiln.compute.windows import assembler

    assemble = assembler(run.view, (START, START + timedelta(days=DAYS)))
    if cells is not None:
        assemble = dataclasses.replace(assemble, cells=cells)
    out = list(assemble(iter(run.ordered.to_batches(max_chunksize=batch))))
    if cells == 1:
        assert all(len(b.select(KEYS).to_pandas().drop_duplicates()) == 1 for b in out)
    assert _sorted(pa.Table.from_batches(out)).equals(run.table.cast(pa.Table.from_batches(out).schema))
