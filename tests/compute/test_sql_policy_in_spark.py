"""What the SQL policy accepts runs in Spark, and its kinds of functions are Spark's.

The pure tests (tests/definitions/test_sql_policy.py) check what the policy
accepts; these check the same texts against the pinned Spark, so the policy's
lists cannot drift from what Spark does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from featurekiln.definitions.spark_functions import (
    AGGREGATE_FUNCTIONS,
    GENERATOR_FUNCTIONS,
    SPARK_BUILTIN_FUNCTIONS,
    TABLE_FUNCTIONS,
    WINDOW_FUNCTIONS,
)
from tests.definitions.test_sql_policy import AGGREGATE_QUERIES, ROW_LEVEL_EXPRESSIONS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

SOURCE = """SELECT 1L AS user_id, timestamp'2025-01-01 10:00:00' AS event_ts, 12.5D AS amount, 3 AS qty,
  'completed' AS status, '/home/x' AS page, 'sale,new' AS tags,
  array(named_struct('price', 2.0D, 'qty', 1), named_struct('price', 3.0D, 'qty', 2)) AS items,
  map('country', 'FR') AS attrs, '{"device": {"os": "ios"}, "n": [1, 2]}' AS payload,
  parse_json('{"device": {"os": "ios"}}') AS v"""


@pytest.fixture(scope="module")
def source(spark: SparkSession) -> DataFrame:
    frame = spark.sql(SOURCE)
    frame.createOrReplaceTempView("source")
    return frame


def test_every_accepted_row_level_expression_runs_in_spark(source: DataFrame) -> None:
    from pyspark.errors import PySparkException
    from pyspark.sql import functions as F

    failed = {}
    for text in ROW_LEVEL_EXPRESSIONS:
        try:
            source.select(F.expr(text)).collect()
        except PySparkException as error:
            failed[text] = str(error).splitlines()[0]
    assert failed == {}


def test_every_accepted_aggregate_query_runs_in_spark(spark: SparkSession, source: DataFrame) -> None:
    from pyspark.errors import PySparkException

    failed = {}
    for text in AGGREGATE_QUERIES:
        try:
            spark.sql(text).collect()
        except PySparkException as error:
            failed[text] = str(error).splitlines()[0]
    assert failed == {}


def test_the_kinds_of_functions_are_sparks(spark: SparkSession) -> None:
    # Spark says a function's kind only in its function registry (the group of its ExpressionInfo and
    # the class it builds); no public API lists it, so this test reads the registry through py4j.
    jvm = spark._jvm
    registry = jvm.org.apache.spark.sql.catalyst.analysis.FunctionRegistry.builtin()
    kinds = {
        "aggregate": ("agg_funcs", "org.apache.spark.sql.catalyst.expressions.aggregate.AggregateFunction"),
        "window": ("window_funcs", None),
        "generator": ("generator_funcs", "org.apache.spark.sql.catalyst.expressions.Generator"),
    }
    found: dict[str, set[str]] = {kind: set() for kind in kinds}
    for name in sorted(SPARK_BUILTIN_FUNCTIONS):
        info = registry.lookupFunction(jvm.org.apache.spark.sql.catalyst.FunctionIdentifier.apply(name))
        if info.isEmpty():
            continue
        info = info.get()
        built = jvm.java.lang.Class.forName(info.getClassName())
        for kind, (group, base) in kinds.items():
            if info.getGroup() == group or (base and jvm.java.lang.Class.forName(base).isAssignableFrom(built)):
                found[kind].add(name)
    found["aggregate"] -= found["window"]  # rank(), ntile(), ... are aggregates to Catalyst, window functions to SQL
    tables = jvm.org.apache.spark.sql.catalyst.analysis.TableFunctionRegistry.builtin().listFunction()
    table_functions = {tables.apply(i).funcName() for i in range(tables.size())} - found["generator"]
    assert found == {"aggregate": AGGREGATE_FUNCTIONS, "window": WINDOW_FUNCTIONS, "generator": GENERATOR_FUNCTIONS}
    assert table_functions == TABLE_FUNCTIONS
