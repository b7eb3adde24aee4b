"""The runtime guard: a source reads only files under its ``source.path``, on real Spark + Delta.

Views are built as models directly (``FeatureView.model_validate``), which
bypasses the loader and so the static SQL policy: the guard is tested on its
own. Each refused view is also refused statically, to show the bypass is real.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest

from featurekiln.compute.read_scope import ReadScope, is_within, normalise_location, scope_root
from featurekiln.compute.sources import read_events
from featurekiln.definitions import FeatureView
from featurekiln.definitions.checks import definition_problems
from featurekiln.definitions.spark_functions import SPARK_BUILTIN_FUNCTIONS
from featurekiln.errors import SourceError
from featurekiln.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

EVENTS = pd.DataFrame(
    {
        "user_id": [1, 1, 2, 3, 3, 3],
        "event_ts": pd.to_datetime(
            ["2025-01-01 01:00", "2025-01-02 02:00", "2025-01-02 03:00", "2025-01-01 04:00", "2025-01-03 05:00",
             "2025-01-03 06:00"]
        ),
        "amount": [1.0, 2.0, 4.0, 8.0, 16.0, 32.0],
        "status": ["ok", "ok", "refunded", "ok", "ok", "refunded"],
    }
)
FORMATS = ("parquet", "csv", "delta")
EVENTS_RANGE = (date(2025, 1, 1), date(2025, 1, 4))


@pytest.fixture(scope="module")
def data(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``raw/<format>`` holds the events; ``other/<format>`` and ``raw/parquet_private`` hold other data."""
    root = tmp_path_factory.mktemp("read_scope")
    frame = spark.createDataFrame(EVENTS.assign(event_ts=EVENTS["event_ts"].dt.tz_localize("UTC")))
    for base in ("raw", "other"):
        frame.write.parquet(str(root / base / "parquet"))
        frame.write.option("header", True).csv(str(root / base / "csv"))
        frame.write.format("delta").save(str(root / base / "delta"))
    frame.write.parquet(str(root / "raw" / "parquet_private"))
    return root


def make_view(source: dict[str, Any], features: list[dict[str, Any]] | None = None) -> FeatureView:
    """A view built without the loader, so without the static SQL policy."""
    return FeatureView.model_validate(
        {
            "name": "guarded",
            "entity": {"name": "user", "keys": ["user_id"]},
            "source": {"timestamp": "event_ts", **source},
            "start": "2025-01-01",
            "features": features or [{"name": "n_7d", "agg": "count", "window": "7d"}],
        }
    )


def statically_refused(view: FeatureView) -> list[str]:
    """The static policy's problems for ``view`` (as the loader would report them)."""
    return [message for _, message in definition_problems(view.model_dump(mode="json", exclude_none=True))]


def count_events(spark: SparkSession, view: FeatureView, settings: Settings) -> int:
    return read_events(spark, view, settings, EVENTS_RANGE).count()


@pytest.mark.parametrize("fmt", FORMATS)
def test_definitions_over_their_own_source_pass(spark: SparkSession, data: Path, fmt: str) -> None:
    query = (
        "WITH big AS (SELECT * FROM source WHERE amount >= 2) "
        "SELECT b.* FROM big b JOIN (SELECT DISTINCT user_id FROM source) u ON b.user_id = u.user_id "
        "WHERE b.amount <= (SELECT max(amount) FROM source)"
    )
    features = [
        {"name": "n_7d", "agg": "count", "window": "7d"},
        {"name": "s_7d", "agg": "sum", "expr": "amount * 2", "window": "7d"},
    ]
    view = make_view({"path": f"raw/{fmt}", "format": fmt, "filter": "status = 'ok'", "query": query}, features)
    assert statically_refused(view) == []
    expected = int(((EVENTS["status"] == "ok") & (EVENTS["amount"] >= 2)).sum())
    assert count_events(spark, view, Settings(warehouse=str(data))) == expected


@pytest.mark.parametrize("form", ["file://{p}", "{p}/", "{p}/../parquet"])
def test_every_form_of_the_source_path_passes(spark: SparkSession, data: Path, form: str) -> None:
    path = form.format(p=data / "raw" / "parquet")
    view = make_view({"path": path, "format": "parquet"})
    assert count_events(spark, view, Settings(warehouse=str(data))) == len(EVENTS)


def _raises(spark: SparkSession, view: FeatureView, data: Path, field: str, reads: str) -> None:
    """``read_events`` stops with one message: the view, the field, and what it reads (a regex)."""
    with pytest.raises(SourceError) as raised:
        read_events(spark, view, Settings(warehouse=str(data)), EVENTS_RANGE)
    tail = "; a definition reads only its own source (to use another dataset, see docs/definitions.md)"
    message = str(raised.value)
    assert re.fullmatch(f"guarded: {re.escape(field)}: reads {reads}{re.escape(tail)}", message), message


def _file_outside(path: str, under: str) -> str:
    return rf"'file:[^']*{under}[^']*', outside source.path {re.escape(repr(path))}"


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_query_that_joins_other_files_is_stopped(spark: SparkSession, data: Path, fmt: str) -> None:
    other = f"{fmt}.`{data / 'other' / fmt}`"
    query = f"SELECT s.* FROM source s JOIN {other} o ON s.user_id = o.user_id"
    if fmt == "csv":
        query = f"SELECT s.* FROM source s WHERE s.user_id IN (SELECT CAST(_c0 AS INT) FROM {other})"
    view = make_view({"path": f"raw/{fmt}", "format": fmt, "query": query})
    assert statically_refused(view) == [
        f"reads {other}; a query may read only `source` (to use another dataset, see docs/definitions.md)"
    ]
    outside = _file_outside(str(data / "raw" / fmt), rf"{re.escape(str(data))}/other/{fmt}/part-")
    _raises(spark, view, data, "source.query", outside)


def test_a_cte_that_reads_a_path_is_stopped(spark: SparkSession, data: Path) -> None:
    other = data / "other" / "delta"
    query = f"WITH x AS (SELECT * FROM delta.`{other}`) SELECT * FROM x UNION ALL SELECT * FROM source"
    view = make_view({"path": "raw/parquet", "format": "parquet", "query": query})
    _raises(spark, view, data, "source.query", _file_outside(str(data / "raw" / "parquet"), "/other/delta/part-"))


def test_a_filter_with_a_subquery_is_stopped_where_input_files_sees_nothing(spark: SparkSession, data: Path) -> None:
    condition = f"amount > (SELECT max(amount) - 20 FROM parquet.`{data / 'other' / 'parquet'}`)"
    source = str(data / "raw" / "parquet")
    assert all("/other/" not in f for f in spark.read.parquet(source).where(condition).inputFiles())
    view = make_view({"path": "raw/parquet", "format": "parquet", "filter": condition})
    assert statically_refused(view) == ["may not contain a subquery: an expression uses only the source's columns"]
    _raises(spark, view, data, "source.filter", _file_outside(str(data / "raw" / "parquet"), "/other/parquet/part-"))


def test_an_expr_with_a_subquery_is_stopped(spark: SparkSession, data: Path) -> None:
    features = [
        {"name": "n_7d", "agg": "count", "window": "7d"},
        {"name": "leak_7d", "agg": "max", "expr": f"(SELECT count(*) FROM csv.`{data / 'other' / 'csv'}`)"},
    ]
    view = make_view({"path": "raw/parquet", "format": "parquet"}, features)
    _raises(spark, view, data, "features[1].expr", _file_outside(str(data / "raw" / "parquet"), "/other/csv/part-"))


def test_a_sibling_directory_with_the_same_prefix_is_outside(spark: SparkSession, data: Path) -> None:
    query = f"SELECT * FROM source UNION ALL SELECT * FROM parquet.`{data / 'raw' / 'parquet_private'}`"
    view = make_view({"path": "raw/parquet", "format": "parquet", "query": query})
    outside = _file_outside(str(data / "raw" / "parquet"), "/raw/parquet_private/part-")
    _raises(spark, view, data, "source.query", outside)


def test_a_relation_that_is_no_file_source_is_stopped(spark: SparkSession, data: Path) -> None:
    spark.createDataFrame(pd.DataFrame({"user_id": [1], "secret": ["x"]})).createOrReplaceTempView("kiln_test_people")
    try:
        query = "SELECT s.* FROM source s JOIN kiln_test_people p ON s.user_id = p.user_id"
        view = make_view({"path": "raw/parquet", "format": "parquet", "query": query})
        path = re.escape(repr(str(data / "raw" / "parquet")))
        _raises(spark, view, data, "source.query", rf"a \w+ relation, not files under source.path {path}")
    finally:
        spark.catalog.dropTempView("kiln_test_people")


def test_a_delta_table_with_files_elsewhere_is_stopped(spark: SparkSession, data: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    spark.sql(f"CREATE TABLE delta.`{clone}` SHALLOW CLONE delta.`{data / 'raw' / 'delta'}`")
    view = make_view({"path": str(clone), "format": "delta"})
    assert statically_refused(view) == []
    _raises(spark, view, data, "source.path", _file_outside(str(clone), "/raw/delta/part-"))


def test_a_run_stops_before_anything_is_written(spark: SparkSession, data: Path, warehouse: Path) -> None:
    from featurekiln.runner import backfill

    query = f"SELECT s.* FROM source s JOIN parquet.`{data / 'other' / 'parquet'}` o USING (user_id)"
    view = make_view({"path": str(data / "raw" / "parquet"), "format": "parquet", "query": query})
    with pytest.raises(SourceError, match="guarded: source.query: reads "):
        backfill(view, date(2025, 1, 1), date(2025, 1, 3), settings=Settings(warehouse=str(warehouse)), spark=spark)
    assert not (warehouse / "features" / "guarded").exists()


def test_the_source_files_are_listed_once_per_read(spark: SparkSession, data: Path) -> None:
    scope = ReadScope(str(data / "raw" / "delta"))
    frame = spark.read.format("delta").load(str(data / "raw" / "delta"))
    assert scope.outside(frame) is None and len(scope._checked) == 1
    assert scope.outside(frame.selectExpr("amount * 2")) is None and len(scope._checked) == 1


def test_spark_built_in_function_list_is_current(spark: SparkSession) -> None:
    listed = {row[0] for row in spark.sql("SHOW SYSTEM FUNCTIONS").collect()}
    named = {name for name in listed if re.fullmatch(r"[a-z_][a-z0-9_]*", name)}
    # New Spark functions: review them against featurekiln/definitions/sql_policy.py before listing them.
    added, gone = sorted(named - SPARK_BUILTIN_FUNCTIONS), sorted(SPARK_BUILTIN_FUNCTIONS - named)
    assert (added, gone) == ([], [])


def test_spark_does_not_substitute_variables_into_sql(spark: SparkSession) -> None:
    [row] = spark.sql("SELECT '${spark.app.name}' AS text").collect()
    assert row.text == "${spark.app.name}"


@pytest.mark.parametrize(
    ("location", "encoded", "normal"),
    [
        ("/w/raw/events", False, "file:///w/raw/events"),
        ("/w/raw/events/", False, "file:///w/raw/events"),
        ("/w/raw/./x/../events", False, "file:///w/raw/events"),
        ("file:/w/raw/events", False, "file:///w/raw/events"),
        ("file:///w/raw/events", False, "file:///w/raw/events"),
        ("file://localhost/w/raw/events", False, "file:///w/raw/events"),
        ("file:/w/a%20b/part-0.parquet", True, "file:///w/a b/part-0.parquet"),
        ("/w/a%20b", False, "file:///w/a%20b"),
        ("s3a://bucket/wh/raw/events", False, "s3a://bucket/wh/raw/events"),
        ("S3A://bucket//wh/raw/", False, "s3a://bucket/wh/raw"),
        ("s3a://bucket/wh/a%20b/part-0", True, "s3a://bucket/wh/a b/part-0"),
    ],
)
def test_locations_normalise(location: str, encoded: bool, normal: str) -> None:
    assert normalise_location(location, encoded=encoded) == normal


def test_is_within_compares_whole_directories() -> None:
    root = scope_root("s3a://bucket/wh/raw/events")
    assert is_within(normalise_location("s3a://bucket/wh/raw/events/ds=1/part-0", encoded=True), root)
    assert not is_within(normalise_location("s3a://bucket/wh/raw/events_private/part-0", encoded=True), root)
    assert not is_within(normalise_location("s3a://other/wh/raw/events/part-0", encoded=True), root)
    assert not is_within(normalise_location("file:/wh/raw/events/part-0", encoded=True), root)
    assert scope_root("/w/raw/2025-*/x") == "file:///w/raw"
    assert is_within(normalise_location("file:/w/raw/2025-01/x/part-0", encoded=True), scope_root("/w/raw/2025-*/x"))
