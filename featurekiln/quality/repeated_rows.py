"""How many rows repeat a combination of columns: an exact count from one group-by, with no proof needed.

What it proves: per value of ``by`` (a chunk), the number of rows whose
combination of ``columns`` an earlier row of the same chunk already holds, that
is the chunk's rows minus its distinct combinations. It is 0 exactly when no
combination repeats, which is when Great Expectations'
``expect_compound_columns_to_be_unique`` passes; a null counts as one value, as
in a ``groupBy``. A positive count only says the check failed: Great
Expectations counts every row of a repeated combination, and the gate asks it
for that count and its samples. ``tests/quality/test_repeated_rows.py`` checks
the count against pandas' duplicates, whole and chunk by chunk.

How: the rows are grouped so that rows holding one combination always meet in
one group, and each group counts its rows and its distinct combinations. When
``columns`` has a date or integer column (a snapshot's ``ds``), a group is the
other columns and a block of 64 of its values, and the values present in a
block are the bits of one ``bit_or``, so a group's distinct combinations are
its set bits. Spark then adds up each task's rows before its shuffle, where a
group per combination would shuffle every row of the chunk. Other aggregates
(the counts of the gate's conditions) ride in the same groups and are summed
with them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

ROWS, REPEATED = "__kiln_grouped_rows", "__kiln_repeated_rows"
_INTEGERS = frozenset({"tinyint", "smallint", "int", "bigint"})
_DISTINCT = "__kiln_distinct"


def _groups(frame: DataFrame, columns: Sequence[str], by: Sequence[str],
            aggregates: Mapping[str, Column] | None = None) -> DataFrame:
    """Groups of ``frame`` (by ``by`` too) such that rows repeat each other's ``columns`` only inside a
    group; per group its rows (:data:`ROWS`), how many distinct combinations of ``columns`` they hold
    (``_DISTINCT``), and the ``aggregates``."""
    from pyspark.sql import functions as F

    types = dict(frame.dtypes)
    aggregated = [c.alias(n) for n, c in (aggregates or {}).items()]
    rows = F.count(F.lit(1)).alias(ROWS)
    packed = [c for c in reversed(columns) if types[c] == "date"] or [c for c in reversed(columns) if types[c] in _INTEGERS]
    if not packed:
        return frame.groupBy(*columns, *by).agg(rows, *aggregated).withColumn(_DISTINCT, F.lit(1))
    value = F.col(packed[0])
    value = (F.unix_date(value) if types[packed[0]] == "date" else value).cast("long")
    block, mask = "__kiln_block", "__kiln_mask"
    bit = F.call_function("shiftleft", F.lit(1).cast("long"), value.bitwiseAND(63).cast("int"))
    grouped = frame.groupBy(*[c for c in columns if c != packed[0]], *by, F.shiftright(value, 6).alias(block)) \
        .agg(rows, F.bit_or(bit).alias(mask), *aggregated)
    return grouped.withColumn(_DISTINCT, F.when(F.col(block).isNull(), 1).otherwise(F.bit_count(mask)))


def repeated_rows(frame: DataFrame, columns: Sequence[str], by: str,
                  aggregates: Mapping[str, Column] | None = None) -> DataFrame:
    """Per value of the column ``by``: its rows (:data:`ROWS`), the rows that repeat a combination of
    ``columns`` (:data:`REPEATED`), and each of ``aggregates`` (by name: counts, which the groups sum).

    Lazy: one query, with one shuffle, when it runs.
    """
    from pyspark.sql import functions as F

    return _groups(frame, columns, [by], aggregates).groupBy(by).agg(
        F.sum(ROWS).alias(ROWS), F.sum(F.col(ROWS) - F.col(_DISTINCT)).alias(REPEATED),
        *[F.sum(name).alias(name) for name in aggregates or {}])
