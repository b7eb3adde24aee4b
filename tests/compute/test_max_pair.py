"""featurekiln's MaxPair: the first/last partial as a hash aggregation, equal to Spark's max of a struct.

The oracle is plain Python: per group, the greatest (order, value) tuple among the
rows whose value is not null, or null when there is none.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from featurekiln.compute import aggregations
from featurekiln.internals.catalyst import jvm_class
from featurekiln.internals.jars import MAX_PAIR_CLASS

TYPES = {
    "bigint": lambda rng: rng.randint(-3, 3),
    "double": lambda rng: rng.choice([-1.5, 0.0, 2.25, 7.0]),
    "string": lambda rng: rng.choice(["a", "b", "ab", ""]),
    "boolean": lambda rng: rng.random() < 0.5,
    "date": lambda rng: date(2025, 1, 1) + timedelta(days=rng.randint(0, 3)),
    "decimal(38,2)": lambda rng: Decimal(rng.randint(-300, 300)) / 100,  # not fixed-width: Spark sorts, still exact
}


def _rows(kind: str, seed: int = 7) -> list[tuple]:
    """Few orders per group, so ties on the order are common; some null values; one group all null."""
    rng = random.Random(seed)
    rows = []
    for _ in range(3000):
        group = rng.randint(0, 59)
        value = None if group == 0 or rng.random() < 0.1 else TYPES[kind](rng)
        rows.append((group, rng.randint(-2, 2), value))
    return rows


def _oracle(rows: list[tuple]) -> dict[int, tuple | None]:
    out: dict[int, tuple | None] = {}
    for group, order, value in rows:
        out.setdefault(group, None)
        if value is not None and (out[group] is None or (order, value) > out[group]):
            out[group] = (order, value)
    return out


def _aggregate(spark: SparkSession, rows: list[tuple], kind: str) -> DataFrame:
    frame = spark.createDataFrame(rows, f"g int, o bigint, v {kind}").repartition(3)  # partial buffers get merged
    return frame.groupBy("g").agg(aggregations.greatest_pair(F.col("o"), F.col("v")).alias("p"))


def _collect(frame: DataFrame) -> dict[int, tuple | None]:
    return {r["g"]: (None if r["p"] is None else (r["p"]["o"], r["p"]["v"])) for r in frame.collect()}


def test_the_session_has_it(spark: SparkSession) -> None:
    assert jvm_class(MAX_PAIR_CLASS) is not None, "featurekiln's jar is on the test session's class path"


@pytest.mark.parametrize("kind", sorted(TYPES))
def test_it_equals_the_oracle_and_the_max_of_a_struct(spark: SparkSession, kind: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _rows(kind)
    expected = _oracle(rows)
    assert expected[0] is None and sum(p is not None for p in expected.values()) == len(expected) - 1
    got = _aggregate(spark, rows, kind)
    assert "max_pair" in got._jdf.queryExecution().executedPlan().toString()  # noqa: SLF001
    assert _collect(got) == expected
    monkeypatch.setenv("KILN_JAVA_CLASSES", "off")
    fallback = _aggregate(spark, rows, kind)
    assert "max_pair" not in fallback._jdf.queryExecution().executedPlan().toString()  # noqa: SLF001
    assert _collect(fallback) == expected


@pytest.mark.parametrize("kind", ["bigint", "double", "boolean", "date"])
def test_fixed_width_values_make_a_hash_aggregation(spark: SparkSession, kind: str) -> None:
    plan = _aggregate(spark, _rows(kind), kind)._jdf.queryExecution().executedPlan().toString()  # noqa: SLF001
    assert "HashAggregate" in plan and "SortAggregate" not in plan


def test_tiles_take_first_and_last_through_it(spark: SparkSession, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ties on the event time: last and first take the largest value; the fallback builds the same tiles."""
    from featurekiln.compute.sources import TS, value_column
    from featurekiln.compute.tiles import build_tiles
    from featurekiln.definitions.models import FeatureView

    view = FeatureView.model_validate({
        "name": "v", "entity": {"name": "user", "keys": ["user_id"]},
        "source": {"path": "events", "format": "parquet", "timestamp": "ts"}, "start": "2025-01-01",
        "features": [{"name": "last_x", "agg": "last", "expr": "x"}, {"name": "first_x", "agg": "first", "expr": "x"}],
    })
    t0 = datetime(2025, 1, 2, 8, tzinfo=timezone.utc)
    later = t0 + timedelta(hours=5)
    events = spark.createDataFrame(
        [(1, t0, 3.0, 3.0), (1, t0, 9.0, 9.0), (1, later, 1.0, 1.0), (1, later, 4.0, 4.0), (1, later, None, None),
         (2, t0, None, None)],
        f"user_id bigint, {TS} timestamp, {value_column(0)} double, {value_column(1)} double",
    )
    tiles = build_tiles(events, view)
    last, first = (c for c in tiles.columns if c.startswith("_p"))
    got = {r["user_id"]: (r[last], r[first]) for r in tiles.collect()}
    micros = int(t0.timestamp() * 1_000_000)
    assert got[1][0]["v"] == 4.0 and got[1][0]["o"] == micros + 5 * 3_600_000_000
    assert got[1][1]["v"] == 9.0 and got[1][1]["o"] == -micros
    assert got[2] == (None, None)
    monkeypatch.setenv("KILN_JAVA_CLASSES", "off")
    assert {r["user_id"]: (r[last], r[first]) for r in build_tiles(events, view).collect()} == got
