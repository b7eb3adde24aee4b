"""Point-in-time training sets on real Spark + Delta, against an oracle written here in pandas.

The feature tables are built by the real pipeline (``compute_snapshots`` +
``replace_days`` with chunk metadata) from seeded random events. The oracle
computes every snapshot from the raw events with :func:`tests.oracle.expected_snapshots`
and looks each spine row up at ``ds = date_utc(t) - 1 day`` in plain Python.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest
import yaml

from featurekiln.errors import PlanError, TrainingSetError
from featurekiln.settings import Settings
from tests.oracle import expected_snapshots, utc_timestamp

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

pytestmark = pytest.mark.slow
START = date(2025, 1, 3)
FIRST, LAST = date(2025, 1, 1), date(2025, 1, 16)  # materialized snapshots of every view
UTC = "UTC"
VIEWS: dict[str, dict[str, Any]] = {
    "user_purchases": {
        "name": "user_purchases",
        "entity": {"name": "user", "keys": ["user_id"]},
        "source": {"path": "raw/events", "format": "parquet", "timestamp": "event_ts"},
        "start": START.isoformat(),
        "ttl": "5d",
        "features": [
            {"name": "purchases_2d", "agg": "count", "window": "2d"},
            {"name": "spend_5d", "agg": "sum", "expr": "amount", "window": "5d"},
            {"name": "last_amount", "agg": "last", "expr": "amount"},
        ],
    },
    "merchant_risk": {
        "name": "merchant_risk",
        "entity": {"name": "merchant", "keys": ["merchant_id"]},
        "source": {"path": "raw/events", "format": "parquet", "timestamp": "event_ts"},
        "start": FIRST.isoformat(),
        "features": [
            {"name": "txn_3d", "agg": "count", "window": "3d"},
            {"name": "max_amount_3d", "agg": "max", "expr": "amount", "window": "3d"},
        ],
    },
    "user_shop": {
        "name": "user_shop",
        "entity": {"name": "user_shop", "keys": ["user_id", "shop"]},
        "source": {"path": "raw/events", "format": "parquet", "timestamp": "event_ts"},
        "start": FIRST.isoformat(),
        "features": [{"name": "visits_4d", "agg": "count", "window": "4d"}],
    },
}
FEATURES = ["user_purchases", "merchant_risk:txn_3d", "user_shop"]
KEY_MAP = {"merchant_risk.merchant_id": "merchant"}


def at(day: date, hour: int = 0, micro: int = 0) -> pd.Timestamp:
    return pd.Timestamp(day).tz_localize(UTC) + pd.Timedelta(hours=hour, microseconds=micro)


def make_events(seed: int = 11, count: int = 400) -> pd.DataFrame:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        day = FIRST - timedelta(days=6) + timedelta(days=rng.randrange(24))
        # Many events exactly at midnight, the boundary of a snapshot.
        moment = at(day) if rng.random() < 0.3 else at(day, rng.randrange(24), rng.randrange(10**6))
        amount = None if rng.random() < 0.1 else rng.randrange(1, 400) / 4  # exact in binary: sums are exact
        rows.append((rng.randrange(1, 9), f"m{rng.randrange(4)}", f"s{rng.randrange(3)}", moment, amount))
    return pd.DataFrame(rows, columns=["user_id", "merchant_id", "shop", "event_ts", "amount"])


def write_events(spark: SparkSession, settings: Settings, events: pd.DataFrame) -> None:
    schema = "user_id bigint, merchant_id string, shop string, event_ts timestamp, amount double"
    rows = [
        (int(r.user_id), r.merchant_id, r.shop, r.event_ts.to_pydatetime(), None if pd.isna(r.amount) else float(r.amount))
        for r in events.itertuples()
    ]
    spark.createDataFrame(rows, schema).write.mode("overwrite").parquet(settings.warehouse_path("raw", "events"))


def backfill(spark: SparkSession, settings: Settings, names: list[str] | None = None, retile: bool = False) -> None:
    """Materialize FIRST..LAST (or from the view's start) of each view, one chunk commit with its metadata.

    With ``retile`` the tiles are computed from the events again (they changed)."""
    from featurekiln.definitions import load_catalog
    from featurekiln.offline.delta_table import chunk_metadata, replace_days, table_path
    from featurekiln.planning.plan import plan_backfill
    from featurekiln.pipeline.tiling import compute_snapshots, ensure_tiles, tile_work

    for view in load_catalog(settings.defs_dir).values():
        if names is not None and view.name not in names:
            continue
        plan = plan_backfill(view, max(FIRST, view.start), LAST, 100)
        (snapshots,) = plan.ranges
        metadata = chunk_metadata(view.name, view.fingerprint(), snapshots, "test", "cli")
        work = tile_work(view, settings, plan.needed, plan.needed if retile else [])
        ensure_tiles(spark, view, settings, work, run_id="test", trigger="cli")
        frame = compute_snapshots(spark, view, settings, snapshots)
        replace_days(spark, settings, table_path(settings, view.name), frame, snapshots, metadata, view.name)


def write_defs(root: Path, views: dict[str, dict[str, Any]]) -> Path:
    defs = root / "defs"
    defs.mkdir(exist_ok=True)
    for name, definition in views.items():
        (defs / f"{name}.yaml").write_text(yaml.safe_dump(definition))
    return defs


@pytest.fixture(scope="module")
def world(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, pd.DataFrame]:
    root = tmp_path_factory.mktemp("training")
    settings = Settings(defs_dir=write_defs(root, VIEWS), warehouse=str(root / "wh"))
    events = make_events()
    write_events(spark, settings, events)
    backfill(spark, settings)
    return settings, events


def make_spine(seed: int = 5, count: int = 160) -> list[tuple[Any, ...]]:
    """(label, user_id, merchant, shop, ts): random rows plus every edge case."""
    rng = random.Random(seed)
    rows: list[tuple[Any, ...]] = []
    for label in range(count):
        day = FIRST + timedelta(days=rng.randrange(LAST.toordinal() - FIRST.toordinal() + 2))
        kind = rng.randrange(3)
        ts = at(day) if kind == 0 else (at(day) - pd.Timedelta(microseconds=1) if kind == 1 else at(day, rng.randrange(24), 5))
        rows.append((label, rng.randrange(1, 10), f"m{rng.randrange(5)}", f"s{rng.randrange(3)}", ts))  # user 9, m4: never seen
    rows += [
        (1000, 1, "m0", "s0", at(START)),  # ds = START - 1: before user_purchases' first day
        (1001, 2, "m1", "s1", at(FIRST)),  # ds before every view's first day
        (1002, None, "m1", "s1", at(FIRST + timedelta(days=5))),  # null user
        (1003, 3, None, None, at(FIRST + timedelta(days=5))),  # null merchant and shop
        (1004, 3, "m2", "s2", None),  # null timestamp
        (1005, 42, "m9", "s9", at(FIRST + timedelta(days=7), 3)),  # keys never seen
    ]
    rows += rows[:20]  # duplicates: identical rows, same key and timestamp
    return rows


def spine_frame(spark: SparkSession, rows: list[tuple[Any, ...]]) -> DataFrame:
    data = [(*r[:4], None if r[4] is None else r[4].to_pydatetime()) for r in rows]
    return spark.createDataFrame(data, "label bigint, user_id bigint, merchant string, shop string, ts timestamp")


def oracle(events: pd.DataFrame, spine: list[tuple[Any, ...]], missing: dict[str, set[date]] | None = None) -> list[tuple]:
    """Each spine row followed by its features, looked up in the oracle's snapshots at date(t) - 1 day."""
    lookups = {}
    for name, definition in VIEWS.items():
        first = max(FIRST, date.fromisoformat(definition["start"]))
        table = expected_snapshots(events, definition, first, LAST)
        keys = definition["entity"]["keys"]
        lookups[name] = {(*(row[k] for k in keys), row["ds"]): row for row in table.to_dict("records")}
    selected = {
        "user_purchases": ["purchases_2d", "spend_5d", "last_amount"],
        "merchant_risk": ["txn_3d"],
        "user_shop": ["visits_4d"],
    }
    spine_keys = {"user_purchases": [1], "merchant_risk": [2], "user_shop": [1, 3]}
    out = []
    for row in spine:
        values: list[Any] = list(row[:4]) + [row[4]]
        ts = utc_timestamp(row[4]) if row[4] is not None else None
        for name, features in selected.items():
            ds = None if ts is None else ts.date() - timedelta(days=1)
            hidden = ds in (missing or {}).get(name, set())
            found = None if ds is None or hidden else lookups[name].get((*(row[i] for i in spine_keys[name]), ds))
            values += [None if found is None else found[f] for f in features]
        out.append(tuple(values))
    return out


def normalized(frame: pd.DataFrame) -> list[tuple]:
    return [tuple(None if v is None or (isinstance(v, float) and pd.isna(v)) else v for v in r) for r in frame.itertuples(index=False)]


def build(spark: SparkSession, settings: Settings, spine: DataFrame, **options: Any) -> DataFrame:
    from featurekiln import training_set

    return training_set(spark, spine, FEATURES, "ts", settings=settings, key_map=KEY_MAP, **options)


def test_every_spine_row_gets_the_snapshot_before_its_day(spark, world, collect_frame) -> None:  # noqa: ANN001
    settings, events = world
    rows = make_spine()
    got = collect_frame(build(spark, settings, spine_frame(spark, rows)))
    assert list(got.columns) == [
        "label", "user_id", "merchant", "shop", "ts",
        "user_purchases__purchases_2d", "user_purchases__spend_5d", "user_purchases__last_amount",
        "merchant_risk__txn_3d", "user_shop__visits_4d",
    ]
    assert len(got) == len(rows)
    want = oracle(events, rows)
    assert Counter(normalized(got)) == Counter(want)
    assert sum(1 for r in want if r[5] is not None) > 40, "the spine must hit snapshots, not only nulls"


def test_duplicate_rows_are_never_collapsed(spark, world, collect_frame) -> None:  # noqa: ANN001
    settings, events = world
    row = (7, 1, "m0", "s0", at(FIRST + timedelta(days=8), 6))
    spine = [row] * 5 + [(*row[:4], None)] * 3
    got = normalized(collect_frame(build(spark, settings, spine_frame(spark, spine))))
    assert len(got) == 8
    assert Counter(got) == Counter(oracle(events, spine))
    assert got.count(oracle(events, [row])[0]) == 5


def test_events_at_and_after_t_do_not_leak(spark, world, tmp_path: Path, collect_frame) -> None:  # noqa: ANN001
    settings, events = world
    own = Settings(defs_dir=settings.defs_dir, warehouse=str(tmp_path / "wh"))
    # One row per user and per merchant, so that an event added for one row is at or after that row's own time.
    day = FIRST + timedelta(days=9)
    spine = [
        (1, 1, "m0", "s0", at(day)),
        (2, 2, "m1", "s1", at(day) - pd.Timedelta(microseconds=1)),
        (3, 3, "m2", "s2", at(day, 13, 7)),
        (4, 4, "m3", "s0", at(day + timedelta(days=2))),
    ]
    control = spine_frame(spark, [(5, 1, "m0", "s0", at(day + timedelta(days=1), 1))])  # after row 1: must see its events
    control_before = normalized(collect_frame(build(spark, settings, control)))
    before = normalized(collect_frame(build(spark, settings, spine_frame(spark, spine))))
    assert sum(v is not None for r in before for v in r[5:]) > 10
    late = [(user, merchant, shop, ts + pd.Timedelta(microseconds=m), 1000.0)
            for _, user, merchant, shop, ts in spine for m in (0, 1, 86_400_000_000)]
    write_events(spark, own, pd.concat([events, pd.DataFrame(late, columns=events.columns)], ignore_index=True))
    backfill(spark, own)
    after = normalized(collect_frame(build(spark, own, spine_frame(spark, spine))))
    assert Counter(after) == Counter(before)
    assert normalized(collect_frame(build(spark, own, control))) != control_before


def test_missing_and_stale_days(spark, world, tmp_path: Path, collect_frame) -> None:  # noqa: ANN001
    settings, events = world
    late = (1, 1, "m0", "s0", at(LAST + timedelta(days=3), 1))  # needs ds = LAST + 2: never materialized
    ok = (2, 1, "m0", "s0", at(LAST, 1))
    spine = spine_frame(spark, [late, ok, late])
    with pytest.raises(TrainingSetError) as caught:
        build(spark, settings, spine)
    text = str(caught.value)
    assert f"user_purchases: missing {LAST + timedelta(days=2)}" in text and "(2 spine rows)" in text
    got = collect_frame(build(spark, settings, spine, allow_missing=True))
    want = oracle(events, [late, ok, late], missing={v: {LAST + timedelta(days=2)} for v in VIEWS})
    assert Counter(normalized(got)) == Counter(want)

    changed = {**VIEWS, "merchant_risk": {**VIEWS["merchant_risk"], "features": [
        {"name": "txn_3d", "agg": "count", "window": "4d"}, *VIEWS["merchant_risk"]["features"][1:]]}}
    stale = Settings(defs_dir=write_defs(tmp_path, changed), warehouse=settings.warehouse)
    with pytest.raises(TrainingSetError, match=r"merchant_risk: stale \(built by another definition\)"):
        build(spark, stale, spine_frame(spark, [ok]))


def test_type_mismatch_and_unmapped_keys_are_errors(spark, world) -> None:  # noqa: ANN001
    settings, _ = world
    spine = spark.createDataFrame([("1", "m0", "s0", datetime(2025, 1, 9))], "user_id string, merchant string, shop string, ts timestamp")
    with pytest.raises(TrainingSetError, match="user_purchases: key user_id is bigint in the feature table but spine column 'user_id' is string"):
        build(spark, settings, spine)
    with pytest.raises(PlanError, match=r"merchant_risk: key merchant_id has no spine column 'merchant_id'; map it with --map"):
        from featurekiln import training_set

        training_set(spark, spine, ["merchant_risk"], "ts", settings=settings)


def test_written_output_records_versions_and_rebuilds_as_of(spark, world, tmp_path: Path) -> None:  # noqa: ANN001
    from featurekiln.training import TrainingRequest, write_training_set

    settings, events = world
    own = Settings(defs_dir=settings.defs_dir, warehouse=str(tmp_path / "wh"))
    write_events(spark, own, events)
    backfill(spark, own)
    rows = make_spine(seed=3, count=40)
    spine_path = str(tmp_path / "spine")
    spine_frame(spark, rows).write.parquet(spine_path)
    request = TrainingRequest(tuple(FEATURES), "ts", KEY_MAP)
    first = write_training_set(spark, spine_path, str(tmp_path / "v1"), request, own, "delta")
    report = first.report
    assert (report.rows_in, report.rows_out) == (len(rows), len(rows))
    record = json.loads(Path(first.record).read_text())
    assert record["as_of_version"] == {"user_purchases": 0, "merchant_risk": 0, "user_shop": 0}
    assert record["report"]["rows_out"] == len(rows)
    want = oracle(events, rows)
    up = next(v for v in report.views if v.view == "user_purchases")
    assert up.matched == sum(1 for r in want if r[5] is not None)
    assert up.nulls["user_purchases__spend_5d"] == sum(1 for r in want if r[6] is None)

    changed = events.assign(amount=events.amount * 2)
    write_events(spark, own, changed)
    backfill(spark, own, ["user_purchases"], retile=True)
    pinned = TrainingRequest(tuple(FEATURES), "ts", KEY_MAP, as_of=record["as_of_version"])
    write_training_set(spark, spine_path, str(tmp_path / "v2"), pinned, own)
    latest = write_training_set(spark, spine_path, str(tmp_path / "v3"), request, own)
    assert json.loads(Path(latest.record).read_text())["as_of_version"]["user_purchases"] == 1

    def rows_of(path: str, fmt: str) -> Counter:
        frame = spark.read.format(fmt).load(path)
        return Counter(tuple(r) for r in frame.collect())

    assert rows_of(str(tmp_path / "v2"), "parquet") == rows_of(str(tmp_path / "v1"), "delta")
    assert rows_of(str(tmp_path / "v3"), "parquet") != rows_of(str(tmp_path / "v1"), "delta")


def test_kiln_training_set_command(world, tmp_path: Path) -> None:  # noqa: ANN001
    import os
    import subprocess
    import sys

    settings, events = world
    rows = make_spine(seed=4, count=30)
    csv_rows = [(label, "" if u is None else u, m or "", s or "", "" if ts is None else ts.strftime("%Y-%m-%d %H:%M:%S.%f"))
                for label, u, m, s, ts in rows]
    spine = tmp_path / "labels.csv"
    pd.DataFrame(csv_rows, columns=["label", "user_id", "merchant", "shop", "ts"]).to_csv(spine, index=False)
    out = tmp_path / "train"
    env = {**os.environ, "KILN_DEFS": str(settings.defs_dir), "KILN_WAREHOUSE": settings.warehouse,
           "KILN_SPARK_MASTER": "local[1]"}
    command = [sys.executable, "-m", "featurekiln", "training-set", "--spine", str(spine), "--timestamp", "ts",
               "--features", "user_purchases,merchant_risk:txn_3d", "--features", "user_shop",
               "--map", "merchant_risk.merchant_id=merchant", "--out", str(out), "--format", "delta"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr
    assert f"{len(rows)} spine rows in, {len(rows)} rows out" in done.stdout
    assert "merchant_risk__txn_3d" in done.stdout
    record = json.loads((out / "_kiln_training_set.json").read_text())
    assert record["as_of_version"] == {"user_purchases": 0, "merchant_risk": 0, "user_shop": 0}
    assert record["report"]["rows_out"] == len(rows)

    failing = subprocess.run([*command[:-4], "--out", str(tmp_path / "bad")], env={**env, "KILN_DEFS": str(tmp_path)},
                             capture_output=True, text=True, timeout=1800)
    assert failing.returncode == 1
    assert "error: --features 'user_purchases': no view named 'user_purchases'" in failing.stderr


def test_a_spine_of_millions_of_rows_stays_out_of_the_driver(spark, world, tmp_path: Path) -> None:  # noqa: ANN001
    import psutil
    from pyspark.sql import functions as F

    from featurekiln.training import TrainingRequest, write_training_set

    settings, _ = world
    rows = 3_000_000
    first = int(pd.Timestamp(START).tz_localize(UTC).timestamp())
    spine = spark.range(rows).select(
        (F.col("id") % 11).alias("user_id"),
        F.concat(F.lit("m"), (F.col("id") % 5).cast("string")).alias("merchant"),
        F.concat(F.lit("s"), (F.col("id") % 3).cast("string")).alias("shop"),
        F.timestamp_seconds(F.lit(first) + F.col("id") % (12 * 86_400)).alias("ts"),
    )
    path = str(tmp_path / "spine")
    spine.write.parquet(path)
    driver = psutil.Process()
    before = driver.memory_info().rss
    result = write_training_set(spark, path, str(tmp_path / "out"), TrainingRequest(tuple(FEATURES), "ts", KEY_MAP), settings)
    grown = driver.memory_info().rss - before
    assert (result.report.rows_in, result.report.rows_out) == (rows, rows)
    assert spark.read.parquet(str(tmp_path / "out")).count() == rows
    assert grown < 64 * 2**20, f"the Python driver grew by {grown / 2**20:.0f} MiB"
