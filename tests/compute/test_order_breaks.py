"""featurekiln's OrderBreaks: per task, the rows not strictly after the row before them, observed as rows go by.

The oracle is plain Python over each Spark partition's rows in their order: a row
with a null, or not greater (as a tuple) than the last row without one, is a break.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from featurekiln.compute.aggregations import jvm_aggregate, jvm_class
from featurekiln.compute.jars import ORDER_BREAKS_CLASS

pytestmark = pytest.mark.slow

SCHEMA = "ds date, name string, id bigint"


def _oracle(partitions: list[list[tuple]]) -> int:
    breaks = 0
    for rows in partitions:
        previous = None
        for row in rows:
            if None in row:
                breaks += 1
                continue
            if previous is not None and not row > previous:
                breaks += 1
            previous = row
    return breaks


def _observed(frame: DataFrame) -> int:
    observation = Observation()
    breaks = jvm_aggregate(jvm_class(ORDER_BREAKS_CLASS), F.struct("ds", "name", "id")).alias("breaks")
    frame.observe(observation, breaks).write.format("noop").mode("overwrite").save()
    return observation.get["breaks"]


def _rows(seed: int) -> list[tuple]:
    rng = random.Random(seed)
    return [(date(2025, 1, 1) + timedelta(days=rng.randint(0, 2)), rng.choice(["a", "b", "ab", ""]),
             rng.randint(0, 4)) for _ in range(400)]


def test_the_session_has_it(spark: SparkSession) -> None:
    assert jvm_class(ORDER_BREAKS_CLASS) is not None, "featurekiln's jar is on the test session's class path"


@pytest.mark.parametrize("seed", [1, 2])
def test_sorted_unique_rows_have_none_and_each_repeat_is_one(spark: SparkSession, seed: int) -> None:
    """Sorted within 3 partitions: the unique rows give 0 (the partial results add up), every duplicate one."""
    rows = sorted(set(_rows(seed)))
    frame = spark.createDataFrame(rows, SCHEMA).repartition(3, "ds").sortWithinPartitions("ds", "name", "id")
    assert frame.rdd.getNumPartitions() == 3
    assert _observed(frame) == 0
    repeated = rows + rows[:5] + rows[-2:]
    frame = spark.createDataFrame(repeated, SCHEMA).repartition(3, "ds").sortWithinPartitions("ds", "name", "id")
    assert _observed(frame) == 7


@pytest.mark.parametrize("seed", [3, 4])
def test_it_equals_the_oracle_in_any_order_and_with_nulls(spark: SparkSession, seed: int) -> None:
    rows = _rows(seed)
    rng = random.Random(seed)
    rows = [(d, None if rng.random() < 0.05 else n, i) for d, n, i in rows]
    frame = spark.createDataFrame(rows, SCHEMA).repartition(2)
    partitions = frame.rdd.glom().map(lambda part: [tuple(r) for r in part]).collect()
    expected = _oracle(partitions)
    assert expected > 0
    assert _observed(frame) == expected


def test_one_column_is_compared_as_itself(spark: SparkSession) -> None:
    frame = spark.createDataFrame([(i,) for i in [1, 2, 2, 5, 3, 7]], "id bigint").coalesce(1)
    observation = Observation()
    frame.observe(observation, jvm_aggregate(jvm_class(ORDER_BREAKS_CLASS), F.col("id")).alias("b")) \
        .write.format("noop").mode("overwrite").save()
    assert observation.get["b"] == 2
