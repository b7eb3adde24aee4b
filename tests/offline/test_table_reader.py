"""Delta tables read without Spark (featurekiln.offline.table_reader) against what Spark's Delta reads of them.

Real tables written by Spark: a view's feature table, its stored tiles and the
run history from a real run; and tables with the shapes that matter to a log
replay: absent, empty, days replaced (files removed), a column added later, a
log cleaned up to its checkpoint. Each is read locally and from moto's S3 (the
same files uploaded to a bucket: a Delta table is relocatable).
"""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from featurekiln.errors import TableError
from featurekiln.offline.table_reader import open_table, python_rows
from featurekiln.settings import Settings
from tests.online.servers import AWS_ENV

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

REPO_ROOT = Path(__file__).resolve().parents[2]
VIEW = "user_purchases"
START = date(2025, 1, 1)


def _spark_rows(spark: SparkSession, path: str) -> list[dict[str, Any]]:
    return [row.asDict(recursive=True) for row in spark.read.format("delta").load(path).collect()]


def _ordered(rows: list[dict[str, Any]]) -> list[str]:
    """Rows as comparable text, in a fixed order (Spark's read order is not part of the contract)."""
    return sorted(json.dumps(row, default=repr, sort_keys=True) for row in rows)


def assert_reads_as_spark(spark: SparkSession, local: str, reader_path: str, settings: Settings) -> None:
    """The reader's rows, columns, count and latest partition at ``reader_path`` equal Spark's of ``local``."""
    frame = spark.read.format("delta").load(local)
    table = open_table(reader_path, settings)
    assert table is not None
    rows = table.read()
    assert table.columns == frame.columns == rows.column_names
    assert _ordered(python_rows(rows)) == _ordered(_spark_rows(spark, local))
    assert table.count() == frame.count()
    if "ds" in table.partition_columns:
        assert table.max_partition("ds") == frame.agg({"ds": "max"}).first()[0]
        day = table.max_partition("ds")
        if day is not None:
            assert _ordered(python_rows(table.read({"ds": day}))) == _ordered(
                [r.asDict(recursive=True) for r in frame.where(frame.ds == day).collect()]
            )


@pytest.fixture(scope="module")
def run_warehouse(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A warehouse after a real run of the sample view: its feature table, tiles and run history."""
    from featurekiln import runner
    from featurekiln.definitions.loader import load_catalog
    from featurekiln.samples import write_sample_sources

    root = tmp_path_factory.mktemp("run_warehouse")
    write_sample_sources(root, seed=5, start=START, days=12, users=40)
    settings = Settings(defs_dir=REPO_ROOT / "feature_defs", expectations_dir=REPO_ROOT / "expectations", warehouse=str(root),
                        spark_master="local[2]")
    view = load_catalog(settings.defs_dir)[VIEW].model_copy(update={"start": START, "online": False})
    runner.run(view, START + timedelta(days=9), settings=settings, spark=spark)
    return settings


@pytest.fixture(scope="module")
def shapes(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tables of every shape a replay must get right, below one folder."""
    from featurekiln.offline.delta_table import replace_days

    root = tmp_path_factory.mktemp("shapes")
    settings = Settings(warehouse=str(root))
    schema = "user_id long, name string, ds date, feature_ts timestamp, spend double, tags array<string>"

    def rows(first: date, days: int, value: float) -> list[tuple]:
        from datetime import datetime, timezone

        return [
            (user, None if user == 3 else f"ü{user}", first + timedelta(days=d),
             datetime(2025, 1, 2, 0, 0, 0, 123456, tzinfo=timezone.utc) + timedelta(days=d),
             None if user == 2 else value + user, ["a", str(user)] if user % 2 else None)
            for d in range(days) for user in range(1, 5)
        ]

    # Replaced days: 14 commits (a checkpoint at version 10), some days rewritten, one range cleared.
    replaced = str(root / "replaced")
    for n in range(14):
        first = START + timedelta(days=n % 5)
        written = [] if n == 7 else rows(first, 2, float(n))
        frame = spark.createDataFrame(written, schema)
        replace_days(spark, settings, replaced, frame, (first, first + timedelta(days=2)), {"n": n}, "t")
    assert (root / "replaced" / "_delta_log" / f"{10:020d}.checkpoint.parquet").exists()

    # The same log cleaned up to its checkpoint.
    shutil.copytree(root / "replaced", root / "checkpointed")
    for old in range(10):
        (root / "checkpointed" / "_delta_log" / f"{old:020d}.json").unlink()

    # A column added after the first files were written: they read it as nulls.
    evolved = str(root / "evolved")
    spark.createDataFrame(rows(START, 2, 1.0), schema).write.format("delta").partitionBy("ds").save(evolved)
    spark.createDataFrame([(9, "x", START, None, 1.5, None, 7)], f"{schema}, extra int").write.format("delta") \
        .mode("append").option("mergeSchema", "true").partitionBy("ds").save(evolved)

    # A table with a schema and no row, and an unpartitioned one.
    spark.createDataFrame([], schema).write.format("delta").partitionBy("ds").save(str(root / "empty"))
    spark.createDataFrame(rows(START, 3, 2.0), schema).write.format("delta").save(str(root / "flat"))
    return root


SHAPES = ["replaced", "checkpointed", "evolved", "empty", "flat"]
RUN_TABLES = ["features/user_purchases", "_tiles/user_purchases", "_kiln/runs"]


@pytest.mark.parametrize("name", SHAPES)
def test_each_shape_reads_as_spark_reads_it(spark: SparkSession, shapes: Path, name: str) -> None:
    path = str(shapes / name)
    assert_reads_as_spark(spark, path, path, Settings(warehouse=str(shapes)))


def test_the_empty_table_has_no_row_and_no_latest_day(shapes: Path) -> None:
    table = open_table(str(shapes / "empty"), Settings(warehouse=str(shapes)))
    assert table is not None and table.count() == 0 and table.max_partition("ds") is None
    assert table.read().num_rows == 0 and table.read({"ds": START}).num_rows == 0


def test_an_absent_table_is_none(spark: SparkSession, tmp_path: Path) -> None:
    from delta.tables import DeltaTable

    assert open_table(str(tmp_path / "nothing"), Settings(warehouse=str(tmp_path))) is None
    assert not DeltaTable.isDeltaTable(spark, str(tmp_path / "nothing"))


@pytest.mark.parametrize("name", RUN_TABLES)
def test_a_real_runs_tables_read_as_spark_reads_them(spark: SparkSession, run_warehouse: Settings, name: str) -> None:
    path = f"{run_warehouse.warehouse}/{name}"
    assert_reads_as_spark(spark, path, path, run_warehouse)


def _upload(moto_server, bucket: str, root: Path) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto_server.endpoint_url, region_name=AWS_ENV["AWS_DEFAULT_REGION"])
    for file in (f for f in root.rglob("*") if f.is_file()):
        s3.upload_file(str(file), bucket, f"wh/{file.relative_to(root).as_posix()}")


@pytest.fixture
def s3_settings(moto_server, s3_bucket: str) -> Settings:
    return Settings(warehouse=f"s3a://{s3_bucket}/wh", s3_endpoint=moto_server.endpoint_url)


def test_the_same_tables_read_from_an_object_store(
    spark: SparkSession, shapes: Path, run_warehouse: Settings, moto_server, s3_bucket: str, s3_settings: Settings
) -> None:
    from featurekiln.quality.history import read_runs

    for root, names in ((shapes, SHAPES), (Path(run_warehouse.warehouse), RUN_TABLES)):
        _upload(moto_server, s3_bucket, root)
        for name in names:
            assert_reads_as_spark(spark, str(root / name), f"{s3_settings.warehouse}/{name}", s3_settings)
    assert open_table(f"{s3_settings.warehouse}/nothing", s3_settings) is None
    assert read_runs(s3_settings, VIEW) == read_runs(run_warehouse, VIEW)


def _spark_runs(spark: SparkSession, settings: Settings, view: str | None, last: int | None) -> list[dict[str, Any]]:
    """The run history as Spark reads it (the reference: ordered, filtered and limited by Spark)."""
    frame = spark.read.format("delta").load(f"{settings.warehouse}/_kiln/runs")
    if view is not None:
        frame = frame.where(frame.view == view)
    frame = frame.orderBy(frame.finished_at.desc(), frame.run_id.desc())
    rows = [row.asDict() for row in (frame.limit(last) if last else frame).collect()]
    for row in rows:
        row["published"] = [tuple(p) for p in json.loads(row["published"] or "[]")]
    return rows


def test_read_runs_equals_spark_ordered_filtered_and_limited(spark: SparkSession, tmp_path: Path) -> None:
    from datetime import datetime, timezone

    from featurekiln.quality.history import read_runs, record_run
    from featurekiln.quality.results import RunReport

    settings = Settings(warehouse=str(tmp_path))
    assert read_runs(settings) == []
    finished = datetime(2025, 2, 1, 12, 0, 0, 500, tzinfo=timezone.utc)
    for n, (view, status) in enumerate([("a", "success"), ("b", "failed"), ("a", "unvalidated"), ("a", "warned")]):
        report = RunReport(view=view, run_id=f"run-{n % 3}", trigger="manual", start=START, end=START + timedelta(days=n),
                           started_at=finished, finished_at=finished + timedelta(seconds=n // 2), status=status,
                           rows=n * 10, published=[[START.isoformat(), START.isoformat()]] if n else [])
        record_run(spark, settings, report)
    for view, last in [(None, None), ("a", None), ("a", 2), ("b", 5), ("c", None), (None, 1)]:
        assert read_runs(settings, view, last) == _spark_runs(spark, settings, view, last)


def test_a_table_with_deletion_vectors_is_refused_not_misread(spark: SparkSession, tmp_path: Path) -> None:
    """Deleted rows live in the vectors, not in the files: reading the files alone would bring them back."""
    path = str(tmp_path / "dv")
    spark.createDataFrame([(n, START) for n in range(10)], "id long, ds date").coalesce(1).write.format("delta") \
        .option("delta.enableDeletionVectors", "true").save(path)
    spark.sql(f"DELETE FROM delta.`{path}` WHERE id < 3")
    with pytest.raises(TableError, match="deletion vectors"):
        open_table(path, Settings(warehouse=str(tmp_path)))
