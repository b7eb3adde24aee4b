"""The snapshot semantics of docs/semantics.md, checked against the independent oracle on real Spark + Delta.

One small event set packs the edge cases (window and ttl boundaries to the
microsecond, empty windows, all-null values, timestamp ties, keys that go
quiet and come back, null keys and timestamps) next to a seeded random part.
Several views read it through every source format and option; each view is
backfilled once per module and compared row by row with
:func:`tests.oracle.expected_snapshots`.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from tests.oracle import assert_frames_match, expected_snapshots

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.types import StructType

    from featurekiln.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
S = date(2025, 3, 1)  # the views' start and the first snapshot
FIRST, LAST = S, S + timedelta(days=13)
KEYS = ["user_id", "region"]
ONE_US = pd.Timedelta(microseconds=1)

# --------------------------------------------------------------------------- events


def at(day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0) -> pd.Timestamp:
    """UTC instant ``day`` days after S at the given time."""
    return pd.Timestamp(S).tz_localize("UTC") + pd.Timedelta(
        days=day, hours=hour, minutes=minute, seconds=second, microseconds=micro
    )


def ev(
    user: int | None,
    region: str | None,
    ts: pd.Timestamp | None,
    amount: float | None = None,
    qty: int | None = None,
    category: str | None = None,
    status: str | None = "completed",
) -> dict[str, Any]:
    return {"user_id": user, "region": region, "amount": amount, "qty": qty, "category": category,
            "status": status, "event_ts": ts}


def hand_made_events() -> list[dict[str, Any]]:
    """Edge cases. Snapshot D = S+5 has cut-off S+6 00:00; amounts of key (1, eu) are powers of two."""
    return [
        # (1, eu): boundaries around ds D = S+5 (cut-off S+6 00:00) for windows 1d/2d/3d and ttl 5d.
        ev(1, "eu", at(5), 1.0, 1, "a"),                      # ds 00:00:00 and cut-off - 1d: in every window
        ev(1, "eu", at(6), 2.0, 2, "b"),                      # exactly the cut-off: excluded from D
        ev(1, "eu", at(3), 4.0, 4, "c"),                      # cut-off - 3d exactly: in 3d
        ev(1, "eu", at(3) - ONE_US, 8.0, 8, "d"),             # 1 us before cut-off - 3d: not in 3d, in ttl
        ev(1, "eu", at(6) - ONE_US, 16.0, 16, "e"),           # 23:59:59.999999 of D
        ev(1, "eu", at(4), 32.0, 32, "f"),                    # cut-off - 2d exactly
        ev(1, "eu", at(4) - ONE_US, 64.0, 64, "g"),           # 1 us before cut-off - 2d
        ev(1, "eu", at(5) - ONE_US, 128.0, 128, "h"),         # 1 us before cut-off - 1d
        ev(1, "eu", at(5, 12), 256.0, 256, "i", "refunded"),  # removed by filter / query
        ev(1, "eu", at(1), 512.0, 512, "j"),                  # cut-off - ttl exactly
        ev(1, "eu", at(1) - ONE_US, 1024.0, 1024, "k"),       # 1 us before cut-off - ttl
        # (2, eu) one event: empty windows while the key is still within its ttl; (2, us) is another entity.
        ev(2, "eu", at(0, 12), 3.5, 3, "x"),
        ev(2, "us", at(2, 6), 7.25, 7, "y"),
        # (3, us): every value null; (3, eu): the latest event has null values.
        ev(3, "us", at(1, 10)),
        ev(3, "us", at(2, 10)),
        ev(3, "eu", at(1, 10), 5.0, 5, "m"),
        ev(3, "eu", at(2, 10), None, None, None),
        # (4, apac): ties on the timestamp; the largest amount and the largest category sit on different rows.
        ev(4, "apac", at(6, 8), 3.0, 3, "x"),
        ev(4, "apac", at(6, 8), 1.0, 9, "z"),
        ev(4, "apac", at(6, 8), None, None, "y"),
        ev(4, "apac", at(7, 15, 30, 0, 123456), 5.0, 5, "c"),
        ev(4, "apac", at(7, 15, 30, 0, 123456), 9.0, 2, "a"),
        ev(4, "apac", at(7, 15, 30, 0, 123456), 7.0, 9, "b"),
        ev(4, "apac", at(8, 1), None, None, None),             # later but null: last stays from S+7
        ev(4, "apac", at(9, 2), None, 1, "q"),                 # a tie where each value sits on another row
        ev(4, "apac", at(9, 2), 2.0, None, None),
        ev(4, "apac", at(9, 2), -3.0, 4, "p", "pending"),
        # (5, eu): quiet for longer than the ttl, then back; an event far beyond every horizon.
        ev(5, "eu", at(-10), 1000.0, 1, "old"),
        ev(5, "eu", at(-2, 9), 10.0, 1, "a"),
        ev(5, "eu", at(0, 9), 20.0, 2, "b"),
        ev(5, "eu", at(9, 9), 40.0, 3, "c"),
        ev(5, "eu", at(10, 9), 80.0, 4, "d"),
        # (6, eu) only at the cut-off of the last snapshot; (6, us) 1 us before it.
        ev(6, "eu", at(14), 1.0, 1, "a"),
        ev(6, "us", at(14) - ONE_US, 2.0, 2, "b"),
        # (7, eu) exactly at S+1 00:00 and (8, eu) 1 us before: row existence at the ttl boundary.
        ev(7, "eu", at(1), 1.5, 1, "t"),
        ev(8, "eu", at(1) - ONE_US, 2.5, 2, "u"),
        # (9, eu): string order is by code point (as UTF-8 bytes): 'Zebra' < 'apple' < 'épée'.
        ev(9, "eu", at(3, 7), 1.0, 1, "apple"),
        ev(9, "eu", at(3, 7), 2.0, 2, "épée"),
        ev(9, "eu", at(3, 7), 3.0, 3, "Zebra"),
        # Keys with activity every 3, 4, 5 and 6 days: gaps just below, at and above the ttl/horizons.
        *(ev(10 + gap, "gap", at(-4 + k * gap, 12), float(2**k), k, f"g{k}") for gap in (3, 4, 5, 6)
          for k in range(18 // gap + 1)),
        # Null key parts and a null timestamp: dropped.
        ev(None, "eu", at(5, 12), 4096.0, 1, "n"),
        ev(1, None, at(5, 12), 8192.0, 1, "n"),
        ev(1, "eu", None, 16384.0, 1, "n"),
    ]


def random_events(seed: int = 20250301, n: int = 700) -> list[dict[str, Any]]:
    """Seeded random events: 30 keys, coarse timestamps (many ties), nulls in every value."""
    rng = np.random.default_rng(seed)
    day = rng.integers(-8, 15, size=n)
    coarse = rng.random(n) < 0.5
    hours = rng.choice([0, 6, 12, 18], size=n)
    micros = rng.integers(0, 86_400_000_000, size=n)
    rows = []
    for i in range(n):
        offset = pd.Timedelta(hours=int(hours[i])) if coarse[i] else pd.Timedelta(microseconds=int(micros[i]))
        ts = at(int(day[i])) + offset
        rows.append(
            ev(
                int(rng.integers(100, 115)),
                str(rng.choice(["eu", "us"])),
                ts,
                None if rng.random() < 0.1 else round(float(rng.uniform(-5, 100)), 2),
                None if rng.random() < 0.1 else int(rng.integers(1, 6)),
                None if rng.random() < 0.1 else str(rng.choice(list("abcdef"))),
                [None, "completed", "refunded", "pending"][int(rng.choice(4, p=[0.05, 0.8, 0.1, 0.05]))],
            )
        )
    for i in rng.choice(n, size=40, replace=False):  # explicit ties: same key and instant, other values
        rows.append({**rows[i], "amount": round(float(rng.uniform(-5, 100)), 2), "qty": int(rng.integers(1, 6)),
                     "category": str(rng.choice(list("abcdef")))})
    return rows


def scores(n: int) -> list[float | None]:
    """The ``score`` column: a float with real NaNs (null per docs/semantics.md) next to nulls and repeated values."""
    return [math.nan if i % 5 == 0 else None if i % 7 == 0 else float(i % 9) - 2.5 for i in range(n)]


def edge_events() -> pd.DataFrame:
    """Hand-made and random events, typed like the parquet source (``score`` stays object: NaN is not None)."""
    frame = pd.DataFrame(hand_made_events() + random_events())
    frame = frame.astype({"user_id": "Int64", "region": object, "amount": "float64", "qty": "Int64",
                          "category": object, "status": object, "event_ts": "datetime64[us, UTC]"})
    return frame.assign(score=pd.Series(scores(len(frame)), dtype=object))


EVENT_SCHEMA = pa.schema([
    ("user_id", pa.int64()), ("region", pa.string()), ("amount", pa.float64()), ("qty", pa.int64()),
    ("category", pa.string()), ("status", pa.string()), ("event_ts", pa.timestamp("us", tz="UTC")),
    ("score", pa.float64()),
])
SOURCE_TYPES = {"user_id": "bigint", "region": "string", "amount": "double", "qty": "bigint", "category": "string",
                "score": "double"}

# --------------------------------------------------------------------------- definitions


def f(name: str, agg: str, expr: str | None = None, window: str | None = None) -> dict[str, Any]:
    feature: dict[str, Any] = {"name": name, "agg": agg}
    if expr is not None:
        feature["expr"] = expr
    if window is not None:
        feature["window"] = window
    return feature


def view(name: str, source: dict[str, Any], features: list[dict[str, Any]], ttl: str | None = None) -> dict[str, Any]:
    definition: dict[str, Any] = {
        "name": name,
        "description": f"semantics test view {name}",
        "entity": {"name": "user_region", "keys": list(KEYS)},
        "source": {"timestamp": "event_ts", **source},
        "start": S,
        "features": features,
    }
    if ttl is not None:
        definition["ttl"] = ttl
    return definition


PARQUET = {"path": "raw/edge_parquet", "format": "parquet"}
QUERY = (
    "SELECT user_id, region, amount AS spend, category AS cat, event_ts FROM source "
    "WHERE status <> 'refunded'"
)
DEFINITIONS: dict[str, dict[str, Any]] = {
    # Every aggregation, windows 1d-3d, explicit ttl longer than the longest window, unwindowed features.
    "edge_all": view("edge_all", PARQUET, ttl="5d", features=[
        f("n_1d", "count", window="1d"),
        f("n_amount_3d", "count", "amount", "3d"),
        f("sum_amount_1d", "sum", "amount", "1d"),
        f("sum_amount_2d", "sum", "amount", "2d"),
        f("sum_amount_3d", "sum", "amount", "3d"),
        f("sum_qty_3d", "sum", "qty", "3d"),
        f("avg_amount_3d", "avg", "amount", "3d"),
        f("min_amount_1d", "min", "amount", "1d"),
        f("max_amount_3d", "max", "amount", "3d"),
        f("min_category_3d", "min", "category", "3d"),
        f("max_qty_2d", "max", "qty", "2d"),
        f("last_amount_3d", "last", "amount", "3d"),
        f("first_amount_3d", "first", "amount", "3d"),
        f("last_category_3d", "last", "category", "3d"),
        f("first_category_3d", "first", "category", "3d"),
        f("distinct_category_3d", "count_distinct", "category", "3d"),
        f("n_events", "count"),
        f("sum_amount", "sum", "amount"),
        f("last_amount", "last", "amount"),
        f("first_amount", "first", "amount"),
        f("first_category", "first", "category"),
        f("last_qty", "last", "qty"),
        f("distinct_qty", "count_distinct", "qty"),
    ]),
    # Explicit ttl shorter than the longest window: rows need an event in the last 2 days.
    "edge_short_ttl": view("edge_short_ttl", PARQUET, ttl="2d", features=[
        f("n_4d", "count", window="4d"),
        f("sum_amount_4d", "sum", "amount", "4d"),
        f("max_amount_1d", "max", "amount", "1d"),
        f("first_amount_4d", "first", "amount", "4d"),
        f("distinct_category_4d", "count_distinct", "category", "4d"),
        f("last_category", "last", "category"),
    ]),
    # Delta source, ttl defaulting to the longest window (4d).
    "edge_delta": view("edge_delta", {"path": "raw/edge_delta", "format": "delta"}, features=[
        f("n_2d", "count", window="2d"),
        f("avg_amount_4d", "avg", "amount", "4d"),
        f("sum_qty_4d", "sum", "qty", "4d"),
        f("first_category", "first", "category"),
        f("last_amount", "last", "amount"),
    ]),
    # CSV source with ISO-8601 'Z' timestamps and empty fields for nulls.
    "edge_csv": view("edge_csv", {"path": "raw/edge_csv", "format": "csv"}, ttl="3d", features=[
        f("n_1d", "count", window="1d"),
        f("n_amount_3d", "count", "amount", "3d"),
        f("sum_amount_3d", "sum", "amount", "3d"),
        f("min_qty_3d", "min", "qty", "3d"),
        f("distinct_category_3d", "count_distinct", "category", "3d"),
        f("first_amount", "first", "amount"),
        f("last_category", "last", "category"),
    ]),
    # A filter; ttl defaults to 3d.
    "edge_filtered": view("edge_filtered", {**PARQUET, "filter": "status = 'completed'"}, features=[
        f("n_1d", "count", window="1d"),
        f("sum_amount_3d", "sum", "amount", "3d"),
        f("last_amount_3d", "last", "amount", "3d"),
        f("max_category_3d", "max", "category", "3d"),
    ]),
    # NaN in a floating expr counts as null in every aggregation (the parquet holds real NaNs).
    "edge_nan": view("edge_nan", PARQUET, ttl="4d", features=[
        f("n_score_2d", "count", "score", "2d"),
        f("sum_score_3d", "sum", "score", "3d"),
        f("avg_score_3d", "avg", "score", "3d"),
        f("min_score_2d", "min", "score", "2d"),
        f("max_score_4d", "max", "score", "4d"),
        f("first_score", "first", "score"),
        f("last_score_1d", "last", "score", "1d"),
        f("distinct_score_3d", "count_distinct", "score", "3d"),
    ]),
    # A query that filters and renames; only unwindowed features, so ttl is required.
    "edge_query": view("edge_query", {**PARQUET, "query": QUERY}, ttl="2d", features=[
        f("n_events", "count"),
        f("spend", "sum", "spend"),
        f("first_spend", "first", "spend"),
        f("last_cat", "last", "cat"),
        f("cats", "count_distinct", "cat"),
    ]),
}


def _completed(events: pd.DataFrame) -> pd.DataFrame:
    return events[events["status"].eq("completed").fillna(False).astype(bool)]


def _query(events: pd.DataFrame) -> pd.DataFrame:
    kept = events[events["status"].notna() & events["status"].ne("refunded")]  # SQL: null <> x is not true
    return kept[["user_id", "region", "amount", "category", "event_ts"]].rename(
        columns={"amount": "spend", "category": "cat"}
    )


ORACLE_INPUT: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "edge_all": lambda e: e,
    "edge_short_ttl": lambda e: e,
    "edge_delta": lambda e: e,
    "edge_csv": lambda e: e,
    "edge_filtered": _completed,
    "edge_nan": lambda e: e,
    "edge_query": _query,
}


def expected(name: str, events: pd.DataFrame | None = None) -> pd.DataFrame:
    source = edge_events() if events is None else events
    return expected_snapshots(ORACLE_INPUT[name](source), DEFINITIONS[name], FIRST, LAST)


# --------------------------------------------------------------------------- the lab


def write_sources(spark: SparkSession, warehouse: Path, events: pd.DataFrame) -> None:
    """The same events as parquet, as a Delta table and as CSV below ``warehouse/raw``."""
    parquet_dir = warehouse / "raw" / "edge_parquet"
    parquet_dir.mkdir(parents=True)
    table = pa.Table.from_pandas(events, schema=EVENT_SCHEMA, preserve_index=False)
    score = pa.array(list(events["score"]), type=pa.float64(), from_pandas=False)  # NaN stays NaN, None is null
    table = table.set_column(table.schema.get_field_index("score"), "score", score)
    pq.write_table(table.replace_schema_metadata(None), parquet_dir / "part-00000.parquet")

    spark.read.parquet(str(parquet_dir)).write.format("delta").save(str(warehouse / "raw" / "edge_delta"))

    csv_dir = warehouse / "raw" / "edge_csv"
    csv_dir.mkdir(parents=True)
    text = events.assign(event_ts=events["event_ts"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    text.to_csv(csv_dir / "part-00000.csv", index=False, na_rep="")


@dataclass
class Lab:
    """A warehouse with the edge sources, a defs dir with every view, and the tables computed so far."""

    spark: SparkSession
    settings: Settings
    events: pd.DataFrame
    collect: Callable[[Any], pd.DataFrame]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    schemas: dict[str, StructType] = field(default_factory=dict)

    @property
    def warehouse(self) -> Path:
        return Path(self.settings.warehouse)

    def table(self, name: str) -> pd.DataFrame:
        """Backfill ``name`` over FIRST..LAST once, then return its table."""
        if name not in self.tables:
            from featurekiln.offline.delta_table import read_table
            from featurekiln.runner import backfill
            from featurekiln.definitions import load_catalog

            backfill(load_catalog(self.settings.defs_dir)[name], FIRST, LAST, settings=self.settings, spark=self.spark)
            frame = read_table(self.spark, self.settings, name)
            self.schemas[name] = frame.schema
            self.tables[name] = self.collect(frame)
        return self.tables[name]


@pytest.fixture(scope="module")
def lab(
    spark: SparkSession, collect_frame: Callable[[Any], pd.DataFrame], tmp_path_factory: pytest.TempPathFactory
) -> Lab:
    from featurekiln.settings import Settings

    root = tmp_path_factory.mktemp("semantics")
    defs = root / "defs"
    defs.mkdir()
    for name, definition in DEFINITIONS.items():
        (defs / f"{name}.yaml").write_text(yaml.safe_dump(definition, sort_keys=False))
    events = edge_events()
    write_sources(spark, root / "warehouse", events)
    settings = Settings(defs_dir=defs, warehouse=str(root / "warehouse"), spark_master="local[2]", chunk_days=30)
    return Lab(spark=spark, settings=settings, events=events, collect=collect_frame)


# --------------------------------------------------------------------------- tests


def _row(frame: pd.DataFrame, user: int, region: str, ds: date) -> dict[str, Any] | None:
    hit = frame[(frame["user_id"] == user) & (frame["region"] == region) & (frame["ds"] == ds)]
    return None if hit.empty else hit.iloc[0].to_dict()


def _days_with_rows(frame: pd.DataFrame, user: int, region: str) -> list[int]:
    rows = frame[(frame["user_id"] == user) & (frame["region"] == region)]
    return sorted((d - S).days for d in rows["ds"])


def test_the_edge_data_exercises_the_edge_cases() -> None:
    """Guards the test data and the oracle (no Spark): each edge case changes a value or a row."""
    table = expected("edge_all")
    d = S + timedelta(days=5)
    boundary = _row(table, 1, "eu", d)
    assert boundary is not None
    assert boundary["sum_amount_1d"] == 1 + 16 + 256
    assert boundary["sum_amount_2d"] == 1 + 16 + 256 + 32 + 128
    assert boundary["sum_amount_3d"] == 1 + 16 + 256 + 32 + 128 + 4 + 64
    assert boundary["sum_amount"] == 1 + 16 + 256 + 32 + 128 + 4 + 64 + 8 + 512
    assert boundary["first_amount"] == 512.0 and boundary["last_amount"] == 16.0

    empty = _row(table, 2, "eu", S + timedelta(days=4))
    assert empty is not None and empty["n_1d"] == 0 and empty["n_amount_3d"] == 0
    assert empty["distinct_category_3d"] == 0 and empty["sum_amount_3d"] is None and empty["avg_amount_3d"] is None
    assert empty["last_amount"] == 3.5
    assert _row(table, 2, "us", S + timedelta(days=2))["sum_qty_3d"] == 7

    nulls = _row(table, 3, "us", S + timedelta(days=2))
    assert nulls["n_1d"] == 1 and nulls["n_amount_3d"] == 0 and nulls["sum_amount_3d"] is None
    assert nulls["last_amount"] is None and nulls["distinct_category_3d"] == 0
    assert _row(table, 3, "eu", S + timedelta(days=2))["last_amount"] == 5.0

    ties = _row(table, 4, "apac", S + timedelta(days=7))
    assert ties["last_amount"] == 9.0 and ties["last_category_3d"] == "c"
    assert ties["first_amount"] == 3.0 and ties["first_category"] == "z"
    assert _row(table, 4, "apac", S + timedelta(days=8))["last_amount"] == 9.0
    tie_with_nulls = _row(table, 4, "apac", S + timedelta(days=9))
    assert tie_with_nulls["last_amount"] == 2.0 and tie_with_nulls["last_qty"] == 4

    unicode = _row(table, 9, "eu", S + timedelta(days=3))
    assert unicode["last_category_3d"] == "épée" and unicode["min_category_3d"] == "Zebra"
    assert _days_with_rows(table, 15, "gap") == list(range(14))  # every 5 days with a ttl of 5 days
    assert _days_with_rows(table, 16, "gap") == [0, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12]

    assert _days_with_rows(table, 5, "eu") == [0, 1, 2, 3, 4, 9, 10, 11, 12, 13]
    assert _days_with_rows(table, 6, "eu") == [] and _days_with_rows(table, 6, "us") == [13]
    assert _days_with_rows(table, 7, "eu") == [1, 2, 3, 4, 5]
    assert _days_with_rows(table, 8, "eu") == [0, 1, 2, 3, 4]
    assert table["user_id"].notna().all() and table["region"].notna().all()

    short = expected("edge_short_ttl")
    # (1, eu) at S+8: no event in the 2-day ttl (S+7, S+8) but events in the 4-day window -> no row.
    assert _row(short, 1, "eu", S + timedelta(days=8)) is None
    assert _row(short, 1, "eu", S + timedelta(days=7))["n_4d"] == 6

    assert _row(expected("edge_filtered"), 1, "eu", d)["sum_amount_3d"] == 1 + 16 + 32 + 128 + 4 + 64
    assert _row(expected("edge_query"), 1, "eu", d)["spend"] == 1 + 16 + 32 + 128

    # (1, eu) at S+5: its events in 2 days are hand-made rows 0, 4, 5, 7, 8; rows 0 and 5 hold NaN, 7 is null.
    nan = _row(expected("edge_nan"), 1, "eu", d)
    assert nan["n_score_2d"] == 2 and nan["min_score_2d"] == 1.5 and nan["max_score_4d"] == 5.5


VIEWS = list(DEFINITIONS)


@pytest.mark.parametrize("name", VIEWS)
def test_view_matches_oracle(lab: Lab, name: str) -> None:
    assert_frames_match(lab.table(name), expected(name, lab.events), KEYS)


def _expected_type(feature: dict[str, Any]) -> str:
    agg, expr = feature["agg"], feature.get("expr")
    if agg in ("count", "count_distinct"):
        return "bigint"
    if agg == "avg":
        return "double"
    if agg == "sum":
        return "bigint" if SOURCE_TYPES[expr] in ("tinyint", "smallint", "int", "bigint") else "double"
    return SOURCE_TYPES[expr]


def test_table_types(lab: Lab) -> None:
    lab.table("edge_all")
    schema = lab.schemas["edge_all"]
    want = [("user_id", "bigint"), ("region", "string"), ("ds", "date"), ("feature_ts", "timestamp")]
    want += [(feat["name"], _expected_type(feat)) for feat in DEFINITIONS["edge_all"]["features"]]
    assert [(field.name, field.dataType.simpleString()) for field in schema.fields] == want


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KILN_")}
    env["TZ"] = "America/New_York"
    env["KILN_SPARK_MASTER"] = "local[2]"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return env


def test_cli_in_another_time_zone_gives_the_same_table(lab: Lab, tmp_path: Path) -> None:
    """A backfill run by the CLI with TZ=America/New_York equals the in-process one (CSV timestamps, day cuts)."""
    from featurekiln.offline.delta_table import read_table
    from featurekiln.settings import Settings

    in_process = lab.table("edge_csv")
    other = tmp_path / "warehouse_ny"
    shutil.copytree(lab.warehouse / "raw", other / "raw")
    command = [
        sys.executable, "-m", "featurekiln", "--defs", str(lab.settings.defs_dir), "--warehouse", str(other),
        "backfill", "edge_csv", "--start", FIRST.isoformat(), "--end", LAST.isoformat(),
    ]
    done = subprocess.run(command, env=_child_env(), cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"CLI failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"

    settings = Settings(defs_dir=lab.settings.defs_dir, warehouse=str(other), spark_master="local[2]", chunk_days=30)
    assert_frames_match(lab.collect(read_table(lab.spark, settings, "edge_csv")), in_process, KEYS)
