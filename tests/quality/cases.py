"""Rows and expectations shared by the gate's tests: every case the gate translates, passing and failing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from featurekiln.quality.suites import FEATURE_TS_QUERY, Expectation

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

ROWS = [
    # k, ds, feature_ts (seconds), n, x, s
    (1, "2025-01-01", "2025-01-02 00:00:00", 3, 1.5, "/a"),
    (1, "2025-01-02", "2025-01-03 00:00:00", 0, None, "b"),
    (2, "2025-01-01", "2025-01-02 00:00:01", None, 7.0, None),
    (2, "2025-01-01", "2025-01-02 00:00:00", -4, 2.0, "/c"),
    (3, "2025-01-03", None, 12, -1.0, "/d"),
]


def check(kind: str, **kwargs: Any) -> Expectation:
    """An expectation of severity ``error`` from the suite ``test``."""
    return Expectation(kind, kwargs, {}, "error", "test")


CASES = [
    check("expect_table_columns_to_match_ordered_list", column_list=["k", "ds", "feature_ts", "n", "x", "s"]),
    check("expect_table_columns_to_match_ordered_list", column_list=["k", "ds", "n"]),
    check("expect_compound_columns_to_be_unique", column_list=["k", "ds"]),
    check("expect_compound_columns_to_be_unique", column_list=["k", "ds", "feature_ts"]),
    check("expect_column_values_to_not_be_null", column="n"),
    check("expect_column_values_to_not_be_null", column="k"),
    check("expect_column_values_to_be_between", column="n", min_value=0),
    check("expect_column_values_to_be_between", column="n", min_value=-4, max_value=12),
    check("expect_column_values_to_be_between", column="x", max_value=2.0),
    check("expect_column_values_to_be_of_type", column="n", type_="LongType"),
    check("expect_column_values_to_be_of_type", column="x", type_="LongType"),
    check("expect_column_values_to_be_in_set", column="s", value_set=["/a", "/c", "/d"]),
    check("expect_column_values_to_be_in_set", column="s", value_set=["/a", "b", "/c", "/d"]),
    check("expect_column_values_to_match_regex", column="s", regex="^/"),
    check("expect_column_pair_values_a_to_be_greater_than_b", column_A="n", column_B="x", or_equal=True,
          ignore_row_if="either_value_is_missing"),
    check("expect_column_pair_values_a_to_be_greater_than_b", column_A="x", column_B="n", or_equal=False,
          ignore_row_if="either_value_is_missing"),
    check("unexpected_rows_expectation", unexpected_rows_query=FEATURE_TS_QUERY),
    check("unexpected_rows_expectation", unexpected_rows_query="SELECT * FROM {batch} WHERE n > 100"),
]
UNIQUE, FEATURE_TS = 2, 16  # the indexes of the (k, ds) uniqueness and feature_ts checks in CASES


def snapshots(spark: SparkSession, rows: list[tuple] = ROWS) -> DataFrame:
    """``rows`` as snapshot rows: ``k, ds (date), feature_ts (timestamp), n, x, s``; not cached."""
    frame = spark.createDataFrame(rows, "k long, ds string, feature_ts string, n long, x double, s string")
    return frame.selectExpr("k", "CAST(ds AS DATE) AS ds", "CAST(feature_ts AS TIMESTAMP) AS feature_ts", "n", "x",
                            "s")


def comparable(checked) -> tuple:  # noqa: ANN001 - a ChunkValidation
    """A chunk's rows and outcomes, with each outcome's sample values in a fixed order."""
    from dataclasses import replace

    return checked.rows, [replace(o, sample=sorted(map(repr, o.sample))) for o in checked.outcomes]
