"""Per-day feature statistics (real Spark, Delta): taken in the gate's pass, stored in ``_kiln/stats``, read
without Spark, against a pandas oracle of the feature table (``tests/oracle.py``)."""

from __future__ import annotations

import copy
import json
import logging
import math
import statistics as pystats
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from featurekiln.definitions.models import FeatureView
from featurekiln.errors import QualityError
from featurekiln.quality.statistics import FeatureDayStats, read_stats
from featurekiln.samples import purchases_frame, write_sample_sources
from featurekiln.settings import Settings
from tests.oracle import expected_snapshots

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = {"start": date(2025, 1, 1), "days": 12, "users": 80}
QUANTILE_RANK_ERROR = 0.01
DISTINCT_ERROR = 0.05


def day(n: int) -> date:
    return date(2025, 1, 1) + timedelta(days=n - 1)


def raw_definition(name: str, **changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(yaml.safe_load((REPO_ROOT / "feature_defs" / f"{name}.yaml").read_text()))
    raw.update(changes)
    raw.pop("expectations", None)
    return raw


def oracle_stats(raw: dict[str, Any], seed: int, first: date, last: date) -> dict[tuple[date, str], dict[str, Any]]:
    """(ds, feature) -> the statistics computed in Python from the oracle's feature table."""
    events = purchases_frame(seed=seed, **SAMPLE)
    events = events[events["status"] == "completed"] if raw["name"] == "user_purchases" else events[events["status"] != "refunded"]
    return table_stats(expected_snapshots(events, raw, first, last), raw, first, last)


def table_stats(table: Any, raw: dict[str, Any], first: date, last: date) -> dict[tuple[date, str], dict[str, Any]]:  # noqa: ANN401 - pandas
    """(ds, feature) -> the statistics computed in Python from a feature table's rows (a pandas frame)."""
    out = {}
    for n in range((last - first).days + 1):
        ds = first + timedelta(days=n)
        rows = table[table["ds"] == ds]
        for feature in raw["features"]:
            values = [v for v in rows[feature["name"]] if v is not None and not (isinstance(v, float) and math.isnan(v))]
            numeric = all(isinstance(v, int | float) for v in values) and feature.get("agg") not in ("first", "last") \
                or feature.get("agg") in ("first", "last") and values and isinstance(values[0], int | float)
            out[(ds, feature["name"])] = {
                "rows": len(rows), "nulls": len(rows) - len(values), "values": sorted(values) if numeric else None,
                "distinct": len(set(values)),
            }
    return out


def assert_stats_match(stored: list[FeatureDayStats], expected: dict[tuple[date, str], dict[str, Any]],
                       exact: bool = False) -> None:
    """``exact``: min and max equal the expected values (of the published rows), else within rounding (the
    oracle's sums are added in another order than Spark's)."""
    got = {(s.ds, s.feature): s for s in stored}
    assert len(got) == len(stored), "one row per (view, ds, feature)"
    assert set(got) == set(expected), sorted(set(got) ^ set(expected))[:5]
    for key, want in expected.items():
        s = got[key]
        assert (s.rows, s.nulls) == (want["rows"], want["nulls"]), (key, s)
        values = want["values"]
        if values is None or not values:
            assert (s.min, s.max, s.mean, s.stddev, s.p50, s.p95) == (None,) * 6, (key, s)
        else:
            assert (s.min, s.max) == ((float(values[0]), float(values[-1])) if exact else
                                      pytest.approx((values[0], values[-1]), rel=1e-12)), (key, s)
            assert s.mean == pytest.approx(math.fsum(values) / len(values), rel=1e-12), (key, s)
            if len(values) > 1:
                assert s.stddev == pytest.approx(pystats.stdev(map(float, values)), rel=1e-9), (key, s)
            else:
                assert s.stddev is None, (key, s)
            for p, q in ((0.5, s.p50), (0.95, s.p95)):
                slack = 0 if exact else 1e-12 * abs(q)  # the oracle's rounding
                below = sum(v < q - slack for v in values)
                at_most = sum(v <= q + slack for v in values)
                target = p * len(values)
                # some rank of q (below + 1 .. at_most) is within the documented rank error of p * n
                assert below + 1 - QUANTILE_RANK_ERROR * len(values) - 1 <= target <= at_most + QUANTILE_RANK_ERROR * len(values), (key, p, s)
        assert abs(s.distinct - want["distinct"]) <= DISTINCT_ERROR * want["distinct"], (key, s)


@pytest.fixture
def settings(warehouse: Path) -> Settings:
    write_sample_sources(warehouse, seed=5, **SAMPLE)
    return Settings(defs_dir=REPO_ROOT / "feature_defs", expectations_dir=warehouse / "no_suites",
                    warehouse=str(warehouse), spark_master="local[2]")


def test_statistics_of_a_backfill_match_the_oracle_and_come_from_the_write(
    spark: SparkSession, settings: Settings, caplog: pytest.LogCaptureFixture, collect_frame
) -> None:
    from featurekiln import runner
    from featurekiln.offline.delta_table import read_table
    from featurekiln.quality.statistics import query_statistics

    raw = raw_definition("merchant_country_sales")  # a string feature (first_category_30d) among numbers
    view = FeatureView.model_validate(raw)
    with caplog.at_level(logging.INFO, logger="featurekiln.quality.statistics"):
        result = runner.backfill(view, day(3), day(8), settings=settings, spark=spark, chunk_days=3)
    assert "from a query" not in caplog.text  # every day's statistics came from the values the write observed
    expected = oracle_stats(raw, 5, day(3), day(8))
    stored = read_stats(settings, view.name)
    assert_stats_match(stored, expected)
    published = collect_frame(read_table(spark, settings, view.name))
    assert_stats_match(stored, table_stats(published, raw, day(3), day(8)), exact=True)
    assert all(s.fingerprint == view.fingerprint() for s in stored)
    # each chunk's validation carries its days' statistics: the same as stored
    chunks = result.report.chunks
    assert [(c.start, c.end) for c in chunks] == [(day(3), day(5)), (day(6), day(8))]
    assert sorted((s for c in chunks for s in c.stats), key=lambda s: (s.ds, s.feature)) == stored
    # the query that takes over where the observation cannot vouch for a day agrees with the oracle too
    features = [f["name"] for f in raw["features"]]
    queried = query_statistics(read_table(spark, settings, view.name), view.name, view.fingerprint(), features,
                               [day(n) for n in range(3, 9)])
    assert_stats_match(queried, expected)
    # filters
    some = read_stats(settings, view.name, features=["orders_1d"], start=day(4), end=day(5))
    assert [(s.ds, s.feature) for s in some] == [(day(4), "orders_1d"), (day(5), "orders_1d")]


def test_stats_follow_republished_rebuilt_and_quarantined_days(
    spark: SparkSession, settings: Settings, tmp_path: Path, collect_frame
) -> None:
    from featurekiln import runner
    from featurekiln.offline.delta_table import read_table

    raw = raw_definition("user_purchases", online=False)
    view = FeatureView.model_validate(raw)
    runner.backfill(view, day(1), day(4), settings=settings, spark=spark)
    assert_stats_match(read_stats(settings, view.name), oracle_stats(raw, 5, day(1), day(4)))

    # republished: new events for every day, days 3..5 backfilled again from the source
    write_sample_sources(Path(settings.warehouse), seed=6, **SAMPLE)
    runner.backfill(view, day(3), day(5), settings=settings, spark=spark, retile=True)
    expected = {**oracle_stats(raw, 5, day(1), day(2)), **oracle_stats(raw, 6, day(3), day(5))}
    assert_stats_match(read_stats(settings, view.name), expected)

    # rebuilt: a window change with on_change: rebuild recomputes every day from the stored tiles (which the
    # retile above re-read from the new events for days 1..5)
    changed = copy.deepcopy(raw)
    changed["features"][0]["window"] = "3d"
    rebuilt = FeatureView.model_validate({**changed, "on_change": "rebuild"})
    runner.run(rebuilt, day(5), settings=settings, spark=spark)
    stored = read_stats(settings, view.name)
    assert {s.fingerprint for s in stored} == {rebuilt.fingerprint()}
    assert_stats_match(stored, oracle_stats(changed, 6, day(1), day(5)))
    assert_stats_match(stored, table_stats(collect_frame(read_table(spark, settings, view.name)), changed, day(1), day(5)),
                       exact=True)

    # quarantined: a failing suite publishes nothing, and no statistics of its days are stored
    suites = tmp_path / "suites"
    suites.mkdir()
    failing = {"type": "expect_column_max_to_be_between", "kwargs": {"column": "purchases_7d", "max_value": 0}}
    (suites / "user_purchases.json").write_text(json.dumps({"name": "user_purchases", "expectations": [failing]}))
    strict = replace(settings, expectations_dir=suites)
    with pytest.raises(QualityError):
        runner.backfill(rebuilt, day(4), day(7), settings=strict, spark=spark)
    assert read_stats(settings, view.name) == stored  # days 4..5 keep their statistics, 6..7 have none


def close(these: list[FeatureDayStats], those: list[FeatureDayStats]) -> bool:
    """The same statistics, floats within rounding (a query's partial sums depend on its partitions)."""
    def fields(s: FeatureDayStats) -> list[Any]:
        return [pytest.approx(v, rel=1e-12) if isinstance(v, float) else v for v in vars(s).values()]
    return [fields(s) for s in these] == [list(vars(s).values()) for s in those]


def _observe(spark: SparkSession, frame: Any, features: list[str]) -> dict[str, Any]:  # noqa: ANN401 - a DataFrame
    """The values :func:`observable` gives over ``frame``'s rows, as a write would observe them."""
    from pyspark.sql import Observation

    from featurekiln.quality.statistics import observable

    observation = Observation()
    frame.observe(observation, *(c.alias(n) for n, c in observable(frame, features).items())).write.format(
        "noop").mode("overwrite").save()
    return observation.get


def test_observed_days_are_trusted_only_when_whole_in_one_task(spark: SparkSession, caplog: pytest.LogCaptureFixture) -> None:
    """A day whose rows two tasks saw, or whose observed rows differ from its files', is queried instead."""
    from featurekiln.internals.delta_transaction import FileStatistics
    from featurekiln.quality.statistics import day_statistics, query_statistics

    rows = [(day(1), float(v % 37) if v % 9 else None, f"s{v % 7}") for v in range(300)]
    rows += [(day(2), float("nan") if v % 5 == 0 else v * 0.5, None) for v in range(120)]
    frame = spark.createDataFrame(rows, "ds DATE, x DOUBLE, s STRING")
    files = [FileStatistics(day(1).isoformat(), 300, {}, {}, {}), FileStatistics(day(2).isoformat(), 120, {}, {}, {})]
    days, features = [day(1), day(2), day(3)], ["x", "s"]
    queried = query_statistics(frame, "v", "f", features, days)

    whole = frame.repartition(2, "ds").sortWithinPartitions("ds")  # as a write's tasks hold them
    with caplog.at_level(logging.INFO, logger="featurekiln.quality.statistics"):
        observed = day_statistics(whole, "v", "f", features, days, _observe(spark, whole, features), files)
    assert "from a query" not in caplog.text
    x1 = sorted(float(v % 37) for v in range(300) if v % 9)
    by = {(s.ds, s.feature): s for s in observed}
    assert (by[day(1), "x"].rows, by[day(1), "x"].nulls, by[day(1), "x"].min, by[day(1), "x"].max) == (300, 300 - len(x1), x1[0], x1[-1])
    assert by[day(1), "x"].p50 == x1[math.ceil(0.5 * len(x1)) - 1] and by[day(1), "x"].distinct == len(set(x1))
    assert (by[day(2), "x"].nulls, by[day(1), "s"].distinct, by[day(2), "s"].distinct) == (24, 7, 0)  # NaN is null
    assert by[day(3), "x"] == FeatureDayStats("v", day(3), "x", 0, 0, None, None, None, None, None, None, 0, "f")
    exact = ("rows", "nulls", "min", "max")
    assert [[getattr(s, k) for k in exact] for s in observed] == [[getattr(s, k) for k in exact] for s in queried]
    assert all(abs(a.distinct - b.distinct) <= DISTINCT_ERROR * a.distinct for a, b in zip(observed, queried, strict=True))

    caplog.clear()
    apart = frame.repartition(2)  # each day's rows in both tasks
    with caplog.at_level(logging.INFO, logger="featurekiln.quality.statistics"):
        split = day_statistics(apart, "v", "f", features, days, _observe(spark, apart, features), files)
    assert "a day's rows were in more than one write task" in caplog.text
    assert close(split, queried)

    caplog.clear()
    other = [FileStatistics(day(1).isoformat(), 299, {}, {}, {}), files[1]]  # files that hold other rows
    with caplog.at_level(logging.INFO, logger="featurekiln.quality.statistics"):
        mismatched = day_statistics(whole, "v", "f", features, days, _observe(spark, whole, features), other)
    assert "observed rows differ from the files'" in caplog.text
    assert close([s for s in mismatched if s.ds == day(1)], [s for s in queried if s.ds == day(1)])
