"""Spark's errors as one line: real Spark failing on real bad files, and the text fallback."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurekiln.compute.spark_errors import SparkProblem, _text_links, spark_error_line, spark_error_types
from featurekiln.samples import purchases_frame

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import SparkSession

PY4J_ID = re.compile(r"\bo\d+\.\w+|Py4J|JavaObject id")


def _write(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None), path)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A parquet source of purchases with one good file."""
    root = tmp_path / "purchases"
    _write(root / "part-00000.parquet", purchases_frame(date(2025, 1, 1), 2, 10, 1))
    return root


def _failure(spark: SparkSession, source: Path, out: Path) -> Exception:
    """The error of reading ``source`` and writing it as Delta, as a run does."""
    frame = spark.read.parquet(str(source)).selectExpr("user_id", "amount * 2 AS doubled")
    with pytest.raises(spark_error_types()) as caught:
        frame.write.format("delta").mode("overwrite").save(str(out))
    return caught.value


def test_a_column_type_drift_names_the_file_and_the_column(spark: SparkSession, source: Path, tmp_path: Path) -> None:
    frame = purchases_frame(date(2025, 1, 3), 1, 10, 2)
    _write(source / "part-drift.parquet", frame.assign(amount=frame["amount"].astype(str)))
    error = _failure(spark, source, tmp_path / "out")
    line = spark_error_line("user_purchases", error)
    assert line.startswith("user_purchases: Spark failed: [FAILED_READ_FILE.PARQUET_COLUMN_DATA_TYPE_MISMATCH] ")
    assert f"file://{source / 'part-drift.parquet'}" in line
    assert "column [amount]" in line and "Expected Spark type double, actual Parquet type BINARY" in line
    assert "\n" not in line and not PY4J_ID.search(line) and "SQLSTATE" not in line


def test_a_truncated_file_names_the_file_and_what_is_wrong_with_it(
    spark: SparkSession, source: Path, tmp_path: Path
) -> None:
    data = (source / "part-00000.parquet").read_bytes()
    (source / "part-truncated.parquet").write_bytes(data[: len(data) // 2])
    error = _failure(spark, source, tmp_path / "out")
    line = spark_error_line("user_purchases", error)
    assert line.startswith(
        "user_purchases: Spark failed: [FAILED_READ_FILE.NO_HINT] Encountered error while reading file file:"
    )
    # what the parquet reader says depends on where the file is cut: "is not a Parquet file", "footer is too large"
    assert re.search(r"part-truncated\.parquet: .{10,}", line), line
    assert "\n" not in line and not PY4J_ID.search(line)


def test_an_analysis_error_names_the_column(spark: SparkSession, source: Path) -> None:
    from pyspark.errors import PySparkException

    with pytest.raises(PySparkException) as caught:
        spark.read.parquet(str(source)).selectExpr("amout + 1").collect()
    line = spark_error_line("user_purchases", caught.value)
    assert line.startswith("user_purchases: Spark failed: [UNRESOLVED_COLUMN.WITH_SUGGESTION] ")
    assert "`amout`" in line and "\n" not in line and "JVM stacktrace" not in line
    assert "SQLSTATE" not in line and "pos 0" not in line, line


def test_the_line_adds_the_file_and_the_column_when_the_message_does_not_name_them() -> None:
    problem = SparkProblem("SOME_ERROR", "Something broke.", None, {"path": "file:/w/x.parquet", "column": "`a`"})
    assert problem.file == "file:/w/x.parquet" and problem.column == "`a`"
    assert problem.line("v") == "v: Spark failed: [SOME_ERROR] Something broke. (file file:/w/x.parquet, column `a`)"
    assert SparkProblem(None, "Boom").line() == "Spark failed: Boom"


def test_without_a_jvm_the_text_of_a_java_trace_is_read() -> None:
    text = (
        "An error occurred while calling o306.save.\n"
        ": org.apache.spark.SparkException: Job aborted due to stage failure: Task 0 in stage 3.0 failed 1 times\n"
        "\tat org.apache.spark.scheduler.DAGScheduler.failJobAndIndependentStages(DAGScheduler.scala:2935)\n"
        "Caused by: org.apache.spark.SparkException: [FAILED_READ_FILE.PARQUET_COLUMN_DATA_TYPE_MISMATCH] "
        "Encountered error while reading file file:///w/raw/part-drift.parquet. Data type mismatches when reading "
        "Parquet column [amount]. Expected Spark type double, actual Parquet type BINARY. SQLSTATE: 42846\n"
        "\tat org.apache.spark.sql.errors.QueryExecutionErrors$.failedToReadDataError(QueryExecutionErrors.scala:1)\n"
        "Caused by: org.apache.spark.sql.execution.datasources.SchemaColumnConvertNotSupportedException: column: "
        "[amount], physicalType: BINARY, logicalType: double\n"
    )
    links = list(_text_links(text))
    assert [link.condition for link in links] == [None, "FAILED_READ_FILE.PARQUET_COLUMN_DATA_TYPE_MISMATCH", None]
    assert links[0].message == "Job aborted due to stage failure: Task 0 in stage 3.0 failed 1 times"
    assert links[1].message.startswith("Encountered error while reading file file:///w/raw/part-drift.parquet.")
    assert links[1].message.endswith("actual Parquet type BINARY.")
    assert links[2].message == "column: [amount], physicalType: BINARY, logicalType: double"
