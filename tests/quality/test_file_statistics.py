"""What Delta's statistics of written files decide for the gate (one_pass.known and one_pass.settle): pure code
on literal statistics, as write_uncommitted reads them from the AddFile actions."""

from __future__ import annotations

from typing import Any

from featurekiln.offline.delta_transaction import FileStatistics
from featurekiln.quality.one_pass import COUNT_PREFIX, NONNULL_PREFIX, Known, known, settle
from featurekiln.quality.suites import Expectation

TYPES = {"k": "LongType", "ds": "DateType", "n": "LongType", "x": "DoubleType", "f": "FloatType", "s": "StringType"}


def stats(day: str | None, rows: int, nulls: dict[str, int], least: dict[str, Any], greatest: dict[str, Any]) -> FileStatistics:
    return FileStatistics(day, rows, nulls, least, greatest)


FILES = [
    stats("2025-01-01", 3, {"k": 0, "n": 1, "x": 0, "f": 0, "s": 3}, {"k": 1, "n": -4, "x": 0.5, "f": 0.1}, {"k": 3, "n": 12, "x": 2.0, "f": 0.3}),
    stats("2025-01-02", 2, {"k": 0, "n": 2, "x": 0, "f": 0, "s": 0}, {"k": 2, "x": 1.5, "f": 0.2, "s": "a"}, {"k": 5, "x": "NaN", "f": 0.2, "s": "b"}),
]


def check(kind: str, **kwargs: Any) -> Expectation:
    return Expectation(kind, kwargs, {}, "error", "test")


def test_known_adds_up_the_files() -> None:
    """Rows and nulls add up; bounds are the least and greatest over the files with values (a file whose
    column is all null has none); NaN (Delta writes it as text) or a column a file has no statistics of is
    not known; the partition column has the rows of a null partition as its nulls."""
    together = known(FILES, "ds")
    assert together.rows == 5
    assert together.nulls == {"k": 0, "n": 3, "x": 0, "f": 0, "s": 3, "ds": 0}
    assert together.least == {"k": 1, "n": -4, "f": 0.1} and together.greatest == {"k": 5, "n": 12, "f": 0.3}

    partial = known([*FILES, stats(None, 4, {"k": 1}, {"k": 7}, {"k": 9})], "ds")
    assert partial.nulls == {"k": 1, "ds": 4}, "only the columns every file counted"
    assert (partial.least, partial.greatest) == ({"k": 1}, {"k": 9})
    assert known([], "ds") == Known(0, {"ds": 0}, {}, {})


def test_settle_decides_what_the_statistics_prove_and_leaves_the_rest_to_the_scan() -> None:
    expectations = dict(enumerate([
        check("expect_column_values_to_not_be_null", column="n"),                            # 0: 3 nulls, exactly
        check("expect_column_values_to_not_be_null", column="ds"),                           # 1: the partition
        check("expect_column_values_to_be_between", column="n", min_value=-4, max_value=12),  # 2: kept
        check("expect_column_values_to_be_between", column="n", min_value=0),                # 3: not kept: scan
        check("expect_column_values_to_be_between", column="x", min_value=0),                # 4: NaN: scan
        check("expect_column_values_to_be_between", column="f", max_value=1),                # 5: float: scan
        check("expect_column_values_to_be_between", column="k", max_value=5),                # 6: kept
        check("expect_column_values_to_be_in_set", column="k", value_set=[1]),               # 7: scan
        check("expect_column_values_to_not_be_null", column="missing"),                      # 8: not known: scan
    ]))
    counted = dict.fromkeys(expectations)
    chunks = [known(FILES[:1], "ds"), known(FILES[1:], "ds"), known([], "ds")]  # the last without rows
    settled = settle(expectations, counted, TYPES, chunks)
    assert sorted(settled) == [0, 1, 2, 6]
    assert settled[0] == [{f"{COUNT_PREFIX}0": 1}, {f"{COUNT_PREFIX}0": 2}, {f"{COUNT_PREFIX}0": 0}]
    assert settled[1] == [{f"{COUNT_PREFIX}1": 0}] * 3
    assert settled[2] == [{f"{COUNT_PREFIX}2": 0, f"{NONNULL_PREFIX}2": values} for values in (2, 0, 0)], \
        "a chunk whose column holds only nulls keeps any bound"
    assert settled[6] == [{f"{COUNT_PREFIX}6": 0, f"{NONNULL_PREFIX}6": values} for values in (3, 2, 0)]
    assert sorted(settle(expectations, counted, TYPES, chunks[2:])) == [0, 1, 2, 3, 4, 6, 8], \
        "a chunk without rows has no unexpected rows"
