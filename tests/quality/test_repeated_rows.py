"""The uniqueness group-by counts the rows that repeat a combination as a plain group-by would, whatever the
column types, whole and chunk by chunk, on real Spark."""

from __future__ import annotations

from datetime import date

import pytest

from tests.quality.cases import check

pytestmark = pytest.mark.slow

UNIQUE_ROWS = [
    # k, name, ds, n: repeats of (k, ds) inside one block of 64 days, the same day-of-block in two blocks,
    # null days, negative and 64-apart integers, a null name
    (1, "a", "2025-01-01", -1), (1, "a", "2025-01-01", 63), (1, "b", "2025-03-06", -1), (1, "b", "2025-03-07", 63),
    (2, "a", None, 0), (2, "a", None, 64), (2, None, "2025-01-01", 0), (2, None, "2025-01-02", 0),
    (3, "c", "2024-12-31", -65), (3, "c", "2025-01-01", -1), (3, "c", "2025-01-01", -1), (3, "c", "2025-02-01", 5),
]
CHUNKS = [(date(2024, 12, 1), date(2025, 1, 1)), (date(2025, 1, 2), date(2025, 3, 31))]


@pytest.mark.parametrize(
    "columns", [["k", "ds"], ["ds"], ["name", "n"], ["k", "n"], ["k", "name"], ["name", "ds", "n"]])
def test_repeated_rows_are_those_of_a_plain_group_by(spark, columns: list[str]) -> None:
    """A date or integer column is packed in blocks of 64 values: the repeated rows are still pandas'
    duplicates (a null being one value), counted directly and through the gate's scan."""
    import pandas as pd
    from pyspark.sql import functions as F

    from featurekiln.quality import repeated_rows, scan

    frame = spark.createDataFrame(UNIQUE_ROWS, "k long, name string, ds string, n int") \
        .withColumn("ds", F.col("ds").cast("date")).persist()
    rows = pd.DataFrame(UNIQUE_ROWS, columns=["k", "name", "ds", "n"])

    def oracle(part: pd.DataFrame) -> int:
        return len(part) - len(part.drop_duplicates(subset=columns))

    whole = repeated_rows.repeated_rows(frame.withColumn("c", F.lit(0)), columns, "c").collect()
    assert [(r[repeated_rows.ROWS], r[repeated_rows.REPEATED]) for r in whole] == [(len(rows), oracle(rows))]
    assert oracle(rows) > 0

    expectation = {0: check("expect_compound_columns_to_be_unique", column_list=columns)}
    decided = scan.decide(frame, expectation, 5)[1][0]
    assert decided["result"]["unexpected_count"] == oracle(rows)

    chunk = F
    for position, (first, last) in enumerate(CHUNKS):
        chunk = chunk.when(F.col("ds").between(F.lit(first), F.lit(last)), F.lit(position))
    counts, results = scan.decide_chunks(frame, expectation, chunk, len(CHUNKS), 5)
    days = pd.to_datetime(rows["ds"]).dt.date
    parts = [rows[(days >= first) & (days <= last)] for first, last in CHUNKS]
    assert counts == [len(p) for p in parts]
    assert [r[0]["result"]["unexpected_count"] for r in results] == [oracle(p) for p in parts]
