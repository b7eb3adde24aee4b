"""Push from Spark executors into each backend: a small Delta feature table, the session's local[2] Spark."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from featurekiln.errors import OnlineStoreError, TableError
from featurekiln.layout import table_path
from featurekiln.online import get_features
from featurekiln.online.push import push_view
from featurekiln.settings import Settings
from featurekiln.definitions.models import FeatureView

pytestmark = pytest.mark.slow
D1, D2 = date(2025, 1, 30), date(2025, 1, 31)


def view(online: bool = True) -> FeatureView:
    return FeatureView.model_validate(
        {
            "name": "user_purchases",
            "entity": {"name": "user", "keys": ["user_id", "shop"]},
            "source": {"path": "raw/purchases", "format": "parquet", "timestamp": "event_ts"},
            "start": "2025-01-01",
            "features": [
                {"name": "purchases_7d", "agg": "count", "window": "7d"},
                {"name": "spend_30d", "agg": "sum", "expr": "amount", "window": "30d"},
                {"name": "last_category", "agg": "last", "expr": "category"},
                {"name": "last_ts", "agg": "last", "expr": "event_ts"},
            ],
            "ttl": "30d",
            "online": online,
        }
    )


def feature_row(user: int, ds: date) -> tuple[Any, ...]:
    cut = datetime(ds.year, ds.month, ds.day, tzinfo=UTC) + timedelta(days=1)
    spend = None if user % 4 == 0 else user * 1.5 + ds.day
    return (user, f"s{user % 3}", ds, cut, user + ds.day, spend, f"c{user}", cut - timedelta(hours=user))


def write_feature_table(spark, settings: Settings, rows: list[tuple[Any, ...]]) -> None:  # noqa: ANN001
    schema = (
        "user_id bigint, shop string, ds date, feature_ts timestamp, purchases_7d bigint, spend_30d double, "
        "last_category string, last_ts timestamp"
    )
    frame = spark.createDataFrame(rows, schema).repartition(3)
    frame.write.format("delta").mode("overwrite").partitionBy("ds").save(table_path(settings, "user_purchases"))


def expected(user: int, ds: date) -> dict[str, Any]:
    values = feature_row(user, ds)
    names = ["user_id", "shop", "ds", "feature_ts", "purchases_7d", "spend_30d", "last_category", "last_ts"]
    return dict(zip(names, values, strict=True))


@pytest.fixture(scope="module")
def warehouse_with_table(spark, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: ANN001
    """One Delta feature table for the module: keys 0..59 on D1, keys 10..49 on D2."""
    root = tmp_path_factory.mktemp("push") / "wh"
    rows = [feature_row(u, D1) for u in range(60)] + [feature_row(u, D2) for u in range(10, 50)]
    write_feature_table(spark, Settings(warehouse=str(root)), rows)
    return root


def test_push_the_latest_snapshot_from_spark_then_read(spark, warehouse_with_table: Path, store: str) -> None:  # noqa: ANN001
    settings = Settings(warehouse=str(warehouse_with_table), online_store=store)
    old = push_view(spark, view(), settings, ds=D1)
    assert (old.rows, old.written, old.deleted, old.newest) == (60, 60, 0, D1)
    latest = push_view(spark, view(), settings)
    assert (latest.ds, latest.rows, latest.written, latest.skipped, latest.deleted) == (D2, 40, 40, 0, 20)
    keys = [{"user_id": u, "shop": f"s{u % 3}"} for u in range(60)]
    got = get_features("user_purchases", keys, settings=settings)
    assert got == [None] * 10 + [expected(u, D2) for u in range(10, 50)] + [None] * 10
    again = push_view(spark, view(), settings, ds=D1)  # an old snapshot pushed late changes nothing online
    assert (again.written, again.skipped, again.newest) == (20, 40, D2) and again.deleted == 20
    assert get_features("user_purchases", keys, settings=settings) == got


def test_push_errors_are_clear(spark, warehouse_with_table: Path, tmp_path: Path) -> None:  # noqa: ANN001
    settings = Settings(warehouse=str(warehouse_with_table), online_store=f"sqlite:///{tmp_path / 'online.db'}")
    with pytest.raises(OnlineStoreError, match="does not set `online: true`"):
        push_view(spark, view(online=False), settings)
    with pytest.raises(OnlineStoreError, match=r"no snapshot ds=2025-02-01 \(latest: 2025-01-31\)"):
        push_view(spark, view(), settings, ds=date(2025, 2, 1))
    with pytest.raises(TableError, match="no feature table"):
        push_view(spark, view(), Settings(warehouse=str(tmp_path / "empty"), online_store=settings.online_store))


def test_whether_a_snapshot_has_rows_comes_from_its_files_row_counts(spark, tmp_path: Path) -> None:  # noqa: ANN001
    """A day with rows, a day committed without rows and a day never written: the log's row counts answer, and
    with Delta's statistics switched off (no row count in the log) the files' parquet footers give the same
    answers."""
    from featurekiln.offline.delta_log import DeltaLog
    from featurekiln.offline.delta_table import replace_days
    from featurekiln.pipeline.serving import has_rows

    settings = Settings(warehouse=str(tmp_path))
    rows = [feature_row(user, D1) for user in range(3)]
    schema = ("user_id bigint, shop string, ds date, feature_ts timestamp, purchases_7d bigint, spend_30d double, "
              "last_category string, last_ts timestamp")
    path = table_path(settings, "user_purchases")
    replace_days(spark, settings, path, spark.createDataFrame(rows, schema), (D1, D2 + timedelta(days=1)), {}, "t")
    answers = {day: has_rows(settings, view(), day) for day in (D1, D2, D2 + timedelta(days=1))}
    assert answers == {D1: True, D2: False, D2 + timedelta(days=1): False}

    spark.conf.set("spark.databricks.delta.stats.collect", "false")
    try:
        replace_days(spark, settings, path, spark.createDataFrame(rows, schema), (D1, D2 + timedelta(days=1)), {}, "t")
    finally:
        spark.conf.unset("spark.databricks.delta.stats.collect")
    live = DeltaLog.of(path, settings).state().files.values()
    assert live and all("numRecords" not in (add.get("stats") or "") for add in live), "no row count: the footers answer"
    assert {day: has_rows(settings, view(), day) for day in answers} == answers
