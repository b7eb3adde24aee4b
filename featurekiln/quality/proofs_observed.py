"""Checks proven from values the write observed as the rows went to their files, without reading a row.

The write computes aggregates over its rows as it writes them
(``DataFrame.observe``, :func:`observable`): the rows, the unexpected rows of
each counted check that Delta's statistics cannot decide
(:mod:`featurekiln.quality.proofs_from_statistics` decides the not-null checks
and the exact bounds, so they are not observed), and, for a compound-uniqueness
check over the partition column and others, featurekiln's ``RepeatedKeys``
aggregate (``featurekiln/internals/RepeatedKeys.java``): per write task, the rows
that may repeat a combination of the task's rows before them. Each task's rows
come sorted by the partition column
(:func:`featurekiln.offline.delta_table.one_file_per_day`), so the aggregate
holds one value's combinations at a time, as longs (:func:`as_long`).

An observed value only ever proves a pass (:func:`settle`):

- a counted check with no unexpected row observed has none in any chunk;
- a uniqueness check is decided when no task's row may repeat a combination
  (none repeats inside a task) and every chunk's files hold one partition value
  each (none repeats across tasks, since a value's rows are one file, so one task).
  Hash collisions and the order of the rows can only add to the observed count,
  never hide a repeat.

Anything else (a count above 0, two files of one day, a session without
featurekiln's jar, observed values of other rows than the files') goes to the
scan, which gives a failure's exact counts and samples.
``tests/quality/test_proofs_observed.py`` checks that observed values decide as
the scan does, on failing and passing rows.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from featurekiln.quality.expectation_sql import COUNT_PREFIX, NONNULL_PREFIX, ROWS, SAMPLED, column_types, translate
from featurekiln.quality.proofs_from_statistics import Known, Proofs, provable
from featurekiln.quality.suites import Expectation

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from featurekiln.internals.delta_transaction import FileStatistics

log = logging.getLogger(__name__)

REPEATS_PREFIX = "_repeated_"
_INTEGRAL = frozenset({"ByteType", "ShortType", "IntegerType", "LongType"})


def observable(frame: DataFrame, expectations: Mapping[int, Expectation], partition: str) -> dict[str, Column]:
    """The aggregates (by name) that a write of ``frame``, partitioned by ``partition``, observes for :func:`settle`.

    Args:
        frame: the rows to be written; each write task's rows must come sorted by ``partition``.
        expectations: by index.
        partition: the column the files are partitioned by.

    Returns:
        :data:`ROWS`; ``COUNT_PREFIX + i`` for each counted check that statistics cannot
        prove; ``REPEATS_PREFIX + i`` for each uniqueness check over ``partition`` (none,
        logged, where the session's JVM lacks featurekiln's ``RepeatedKeys``).
    """
    from pyspark.sql import functions as F

    from featurekiln.internals.catalyst import jvm_aggregate, jvm_class
    from featurekiln.internals.jars import REPEATED_KEYS_CLASS

    checks = translate(frame, expectations)
    types = column_types(frame)
    out = {ROWS: F.count(F.lit(1))}
    for index, condition in checks.counted.items():
        if not provable(expectations[index].type, types.get(expectations[index].kwargs.get("column"))):
            out[f"{COUNT_PREFIX}{index}"] = F.count_if(condition)
    over_partition = {i: columns for i, columns in checks.grouped.items() if partition in columns}
    repeats = jvm_class(REPEATED_KEYS_CLASS) if over_partition else None
    if over_partition and repeats is None:
        log.info("featurekiln's %s is not in this session's JVM: the gate scans the written rows for %d "
                 "uniqueness check(s) instead of observing them", REPEATED_KEYS_CLASS, len(over_partition))
    for index, columns in over_partition.items() if repeats is not None else ():
        others = [c for c in columns if c != partition]
        out[f"{REPEATS_PREFIX}{index}"] = jvm_aggregate(repeats, as_long([partition], types), as_long(others, types))
    return out


def as_long(columns: Sequence[str], types: Mapping[str, str]) -> Column:
    """One long that stands for the values of ``columns``, null when one of them is null: the value itself
    for one integral or date column (no collision), else their 64-bit hash (a constant for no column)."""
    from pyspark.sql import functions as F

    if not columns:
        return F.lit(0).cast("long")
    if len(columns) == 1 and types.get(columns[0]) in _INTEGRAL:
        return F.col(columns[0]).cast("long")
    if len(columns) == 1 and types.get(columns[0]) == "DateType":
        return F.unix_date(F.col(columns[0])).cast("long")
    present = F.lit(True)
    for column in columns:
        present = present & F.col(column).isNotNull()
    return F.when(present, F.xxhash64(*columns))


def of_these_files(observed: Mapping[str, Any] | None, statistics: Sequence[FileStatistics]) -> Mapping[str, Any] | None:
    """``observed`` when it was observed over the rows of the files ``statistics`` describes (the same
    row count), else None (logged with the reason): values of other rows prove nothing of these."""
    if observed is None:
        return None
    files = sum(f.rows for f in statistics)
    if observed.get(ROWS) != files:
        log.info("the values observed during the write are of %s row(s), the files hold %d: the gate scans "
                 "the written rows instead", observed.get(ROWS), files)
        return None
    return observed


def settle(
    expectations: Mapping[int, Expectation], counted: Mapping[int, Any], grouped: Mapping[int, list[str]],
    chunks: Sequence[Known], observed: Mapping[str, Any],
) -> Proofs:
    """The checks that the ``observed`` values of :func:`observable` over the whole write (whose files'
    statistics are ``chunks``) decide for every chunk, by index; every other counted or grouped check
    gets its reason.

    A counted check none of whose rows was unexpected has none in any chunk (its
    column's non-null values, where its result needs them, from the statistics).
    """
    proofs = Proofs()
    for index in counted:
        kind, column = expectations[index].type, expectations[index].kwargs.get("column")
        unexpected = observed.get(f"{COUNT_PREFIX}{index}")
        if unexpected != 0:
            proofs.unproven[index] = _why(unexpected, "unexpected row(s)")
        elif kind in SAMPLED - {"expect_column_values_to_not_be_null"}:
            if all(column in k.nulls for k in chunks):
                proofs.decided[index] = [{f"{COUNT_PREFIX}{index}": 0, f"{NONNULL_PREFIX}{index}": k.rows - k.nulls[column]}
                                         for k in chunks]
            else:
                proofs.unproven[index] = f"Delta took no null counts of {column}"
        else:
            proofs.decided[index] = [{f"{COUNT_PREFIX}{index}": 0} for _ in chunks]
    for index in grouped:
        repeats = observed.get(f"{REPEATS_PREFIX}{index}")
        if repeats != 0:
            proofs.unproven[index] = _why(repeats, "row(s) that may repeat a combination")
        elif not all(k.one_file_per_value for k in chunks):
            proofs.unproven[index] = "a partition value's rows are in more than one file"
        else:
            proofs.decided[index] = [{index: 0} for _ in chunks]
    return proofs


def _why(count: object, what: str) -> str:
    return "not observed during the write" if count is None else f"the write observed {count} {what}"
