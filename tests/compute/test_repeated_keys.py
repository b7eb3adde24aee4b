"""featurekiln's RepeatedKeys: per task, the rows that may repeat a (run, key) of the task's rows before them.

The oracle is plain Python over each Spark partition's rows in their order: a row
with a null run or key counts; so does a row whose key its run has seen already
while the run lasts. A run the task left and meets again counts once, and from then
on the task's rows count no more (the aggregate gives up on that task).
"""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest
from pyspark.sql import DataFrame, Observation, SparkSession

from featurekiln.internals.catalyst import jvm_aggregate, jvm_class
from featurekiln.internals.jars import REPEATED_KEYS_CLASS
from featurekiln.quality.proofs_observed import as_long

pytestmark = pytest.mark.slow

SCHEMA = "ds date, name string, id bigint"


def _oracle(partitions: list[list[tuple]], width: int = 2) -> int:
    """``width``: how many of the columns after ``ds`` make the key (the last ones)."""
    counted = 0
    for rows in partitions:
        left: set = set()
        run, keys = None, set()
        for ds, *rest in rows:
            key = rest[len(rest) - width:]
            if ds is None or None in key:
                counted += 1
                continue
            if ds != run:
                if run is not None:
                    left.add(run)
                if ds in left:
                    counted += 1
                    break
                run, keys = ds, set()
            if tuple(key) in keys:
                counted += 1
            keys.add(tuple(key))
    return counted


def _repeated(frame: DataFrame, keys: tuple[str, ...], constants: tuple = ()):  # noqa: ANN202
    """The aggregate as the gate builds it: the day and an integral key as themselves, other keys hashed."""
    types = {f.name: type(f.dataType).__name__ for f in frame.schema.fields}
    return jvm_aggregate(jvm_class(REPEATED_KEYS_CLASS), as_long(["ds"], types), as_long(keys, types),
                         constants=constants)


def _observed(frame: DataFrame, keys: tuple[str, ...] = ("name", "id"), constants: tuple = ()) -> int:
    observation = Observation()
    repeated = _repeated(frame, keys, constants).alias("repeated")
    frame.observe(observation, repeated).write.format("noop").mode("overwrite").save()
    return observation.get["repeated"]


def _rows(seed: int) -> list[tuple]:
    rng = random.Random(seed)
    return [(date(2025, 1, 1) + timedelta(days=rng.randint(0, 2)), rng.choice(["a", "b", "ab", ""]),
             rng.randint(0, 4)) for _ in range(400)]


def test_the_session_has_it(spark: SparkSession) -> None:
    assert jvm_class(REPEATED_KEYS_CLASS) is not None, "featurekiln's jar is on the test session's class path"


@pytest.mark.parametrize("seed", [1, 2])
def test_unique_rows_sorted_by_run_have_none_and_each_repeat_is_one(spark: SparkSession, seed: int) -> None:
    """Each of 3 partitions sorted by day alone (keys in any order): the unique rows give 0 (the partial
    results add up), and every duplicate counts one."""
    rows = list(set(_rows(seed)))
    random.Random(seed).shuffle(rows)
    frame = spark.createDataFrame(rows, SCHEMA).repartition(3, "ds").sortWithinPartitions("ds")
    assert frame.rdd.getNumPartitions() == 3
    assert _observed(frame) == 0
    repeated = rows + rows[:5] + rows[-2:]
    frame = spark.createDataFrame(repeated, SCHEMA).repartition(3, "ds").sortWithinPartitions("ds")
    assert _observed(frame) == 7


@pytest.mark.parametrize(("seed", "keys"), [(3, ("name", "id")), (4, ("name", "id")), (5, ("id",))])
def test_it_equals_the_oracle_in_any_order_and_with_nulls(spark: SparkSession, seed: int, keys: tuple) -> None:
    """Unsorted rows with nulls: the days come apart (the aggregate gives up with a count) and nulls count;
    for a string and a long key (hashed) and for a long key alone (itself)."""
    rows = _rows(seed)
    rng = random.Random(seed)
    rows = [(d, None if rng.random() < 0.05 else n, None if rng.random() < 0.05 else i) for d, n, i in rows]
    for sort in (False, True):
        frame = spark.createDataFrame(rows, SCHEMA).repartition(2)
        frame = frame.sortWithinPartitions("ds") if sort else frame
        partitions = frame.rdd.glom().map(lambda part: [tuple(r) for r in part]).collect()
        expected = _oracle(partitions, len(keys))
        assert expected > 0
        assert _observed(frame, keys) == expected


def test_a_day_met_again_is_counted_though_no_key_repeats(spark: SparkSession) -> None:
    """Day 1, day 2, day 1 again in one task with distinct keys: not a proof (the first run's keys are gone)."""
    day = date(2025, 1, 1)
    rows = [(day, "a", 1), (day + timedelta(days=1), "a", 1), (day, "b", 2)]
    assert _observed(spark.createDataFrame(rows, SCHEMA).coalesce(1)) == 1
    assert _observed(spark.createDataFrame(sorted(rows), SCHEMA).coalesce(1)) == 0


def test_past_its_cap_on_one_day_s_keys_it_gives_up_with_one(spark: SparkSession) -> None:
    """With at most 3 keys held: a day of 3 unique keys is proved, one of 5 gives up (one count, whatever
    follows, repeats included)."""
    day = date(2025, 1, 1)
    three = [(day, "a", i) for i in range(3)]
    assert _observed(spark.createDataFrame(three, SCHEMA).coalesce(1), ("id",), (3,)) == 0
    five = [(day, "a", i) for i in [0, 1, 2, 3, 4, 4, 0]]
    assert _observed(spark.createDataFrame(five, SCHEMA).coalesce(1), ("id",), (3,)) == 1
    assert _observed(spark.createDataFrame(five, SCHEMA).coalesce(1), ("id",)) == 2


def test_it_runs_in_a_group_by_as_well(spark: SparkSession) -> None:
    """As an ordinary aggregate: partial counts per task, merged after the shuffle."""
    day = date(2025, 1, 1)
    frame = spark.createDataFrame([(day, "a", 1), (day, "a", 1), (day, "b", 1), (day, "a", 2)], SCHEMA).coalesce(1)
    assert frame.groupBy("ds").agg(_repeated(frame, ("name", "id")).alias("r")).collect()[0]["r"] == 1
