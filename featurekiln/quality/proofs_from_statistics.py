"""Checks proven from Delta's statistics of the written files, without reading a row.

Delta takes exact statistics of every file it writes: its rows, and per column
its nulls and its least and greatest non-null values
(:class:`featurekiln.internals.delta_transaction.FileStatistics`). Summed over a
chunk's files (:func:`known`), they decide two kinds of counted check
(:func:`settle`):

- a not-null check: its unexpected rows are its column's nulls;
- a bound check on a column whose statistics compare as Spark compares its
  values (integers and doubles, :data:`EXACT_BOUNDS`): it passes, with no
  unexpected row, when every chunk's least and greatest values keep the bounds.

A bound that some file breaks, a NaN (Delta writes it as text), a float column
(its statistics are the shortest decimal text of a float, not its value), or a
column without statistics (Delta takes them of the first 32 columns) proves
nothing: the scan counts it. A chunk without rows has no unexpected row.
``tests/quality/test_proofs_from_statistics.py`` checks this on literal
statistics and against the scan on files written through Delta.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from featurekiln.quality.expectation_sql import COUNT_PREFIX, NONNULL_PREFIX, is_number
from featurekiln.quality.suites import Expectation

if TYPE_CHECKING:
    from featurekiln.internals.delta_transaction import FileStatistics

# Column types whose Delta statistics compare with a bound as Spark compares their values
# (not FloatType: its statistics are the shortest decimal text of a float, not its value).
EXACT_BOUNDS = frozenset({"ByteType", "ShortType", "IntegerType", "LongType", "DoubleType"})


@dataclass(frozen=True)
class Known:
    """What the statistics of a chunk's files say of its rows, exactly: their number, and per column
    its nulls and (where every file with a non-null value has a numeric one) its least and greatest
    non-null value; a column absent is not known."""

    rows: int
    nulls: Mapping[str, int]
    least: Mapping[str, int | float]
    greatest: Mapping[str, int | float]
    one_file_per_value: bool = False  # every file has a partition value, and no two files the same


@dataclass(frozen=True)
class Proofs:
    """What a source of proofs decides of a write's chunks.

    Attributes:
        decided: by check index, per chunk the counts the scan would give it (named as
            :mod:`featurekiln.quality.expectation_sql` names them).
        unproven: by check index, why a check this source could have decided is left to the scan.
    """

    decided: dict[int, list[dict[str | int, int]]] = field(default_factory=dict)
    unproven: dict[int, str] = field(default_factory=dict)


def known(files: Sequence[FileStatistics], partition: str) -> Known:
    """What ``files`` (Delta's statistics of each, partitioned by ``partition``) say of their rows together."""
    values = [f.partition for f in files]
    single = None not in values and len(set(values)) == len(values)
    rows = sum(f.rows for f in files)
    columns = set.intersection(*(set(f.nulls) for f in files)) if files else set()
    nulls = {c: sum(f.nulls[c] for f in files) for c in columns}
    nulls[partition] = sum(f.rows for f in files if f.partition is None)
    bounds: dict[str, list[tuple[Any, Any]]] = {c: [] for c in columns}
    for f in files:
        for c in columns:
            if f.nulls[c] < f.rows:  # a file with values in c has numeric bounds, or c's are not known
                bounds[c].append((f.least.get(c), f.greatest.get(c)))
    finite = {c: b for c, b in bounds.items() if b and all(_finite(x) and _finite(y) for x, y in b)}
    return Known(rows, nulls, {c: min(x for x, _ in b) for c, b in finite.items()},
                 {c: max(y for _, y in b) for c, b in finite.items()}, single)


def _finite(value: object) -> bool:
    return is_number(value) and math.isfinite(value)


def provable(kind: str, column_type: str | None) -> bool:
    """Whether statistics can decide a counted check of type ``kind`` on a column of ``column_type``."""
    return kind == "expect_column_values_to_not_be_null" or (
        kind == "expect_column_values_to_be_between" and column_type in EXACT_BOUNDS)


def settle(
    expectations: Mapping[int, Expectation], counted: Mapping[int, Any], types: Mapping[str, str],
    chunks: Sequence[Known],
) -> Proofs:
    """The ``counted`` checks (by index) that the statistics of every chunk decide.

    A check is decided only when the statistics decide it in every chunk; the
    :func:`provable` checks they do not decide get their reason. Any other check is
    neither decided nor given a reason here.
    """
    proofs = Proofs()
    for index in counted:
        kind, kwargs = expectations[index].type, expectations[index].kwargs
        column, count, values = kwargs.get("column"), f"{COUNT_PREFIX}{index}", f"{NONNULL_PREFIX}{index}"
        if not provable(kind, types.get(column)):
            continue
        if kind == "expect_column_values_to_not_be_null":
            decided = [{count: k.nulls[column]} if column in k.nulls else {count: 0} if not k.rows else None
                       for k in chunks]
            why = f"Delta took no null counts of {column}"
        else:
            decided = [{count: 0, values: k.rows - k.nulls.get(column, 0)} if not k.rows or _kept(k, column, kwargs)
                       else None for k in chunks]
            why = f"the files' statistics of {column} do not keep the bounds (or are not known)"
        if None in decided:
            proofs.unproven[index] = why
        else:
            proofs.decided[index] = decided
    return proofs


def _kept(chunk: Known, column: str, kwargs: Mapping[str, Any]) -> bool:
    """Whether the statistics show every non-null value of ``column`` in the chunk within the bounds."""
    if column not in chunk.nulls:
        return False
    if chunk.nulls[column] == chunk.rows:
        return True
    if column not in chunk.least:
        return False
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    return (low is None or chunk.least[column] >= low) and (high is None or chunk.greatest[column] <= high)
