"""What Delta's statistics of written files (one_pass.known and one_pass.settle), and the values a write observed
(one_pass.settle_observed), decide for the gate: pure code on literal statistics, as write_uncommitted reads them
from the AddFile actions."""

from __future__ import annotations

from typing import Any

from featurekiln.offline.delta_transaction import FileStatistics
from featurekiln.quality.one_pass import (
    COUNT_PREFIX, NONNULL_PREFIX, REPEATS_PREFIX, Known, known, settle, settle_observed,
)
from featurekiln.quality.suites import FEATURE_TS_QUERY, Expectation

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
    not known; the partition column has the rows of a null partition as its nulls; one file per partition value
    only when no file lacks one and no two share one."""
    together = known(FILES, "ds")
    assert together.rows == 5
    assert together.nulls == {"k": 0, "n": 3, "x": 0, "f": 0, "s": 3, "ds": 0}
    assert together.least == {"k": 1, "n": -4, "f": 0.1} and together.greatest == {"k": 5, "n": 12, "f": 0.3}

    partial = known([*FILES, stats(None, 4, {"k": 1}, {"k": 7}, {"k": 9})], "ds")
    assert partial.nulls == {"k": 1, "ds": 4}, "only the columns every file counted"
    assert (partial.least, partial.greatest) == ({"k": 1}, {"k": 9})
    assert known([], "ds") == Known(0, {"ds": 0}, {}, {}, True)
    assert together.one_file_per_value and not partial.one_file_per_value
    assert not known([*FILES, FILES[0]], "ds").one_file_per_value


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


def test_observed_values_decide_only_what_they_prove() -> None:
    """:func:`settle_observed`, pure: a check is decided only when nothing unexpected was observed, a
    uniqueness check only with one file per day too, a value check's non-null base only from the statistics."""
    expectations = {0: check("expect_compound_columns_to_be_unique", column_list=["k", "ds"]),
                    1: check("unexpected_rows_expectation", unexpected_rows_query=FEATURE_TS_QUERY),
                    2: check("expect_column_values_to_match_regex", column="s", regex="^/")}
    counted, grouped = dict.fromkeys([1, 2]), {0: ["k", "ds"]}
    files = [Known(3, {"s": 1}, {}, {}, True), Known(0, {}, {}, {}, True)]
    clean = {f"{REPEATS_PREFIX}0": 0, f"{COUNT_PREFIX}1": 0, f"{COUNT_PREFIX}2": 0}
    assert settle_observed(expectations, counted, grouped, files, clean) == {
        0: [{0: 0}, {0: 0}], 1: [{"_unexpected_1": 0}, {"_unexpected_1": 0}],
    }, "the regex check's column has no null count in the second chunk's statistics"
    files[1] = Known(0, {"s": 0}, {}, {}, True)
    assert settle_observed(expectations, counted, grouped, files, clean)[2] == [
        {"_unexpected_2": 0, "_nonnull_2": 2}, {"_unexpected_2": 0, "_nonnull_2": 0}]
    broken = {**clean, f"{REPEATS_PREFIX}0": 1, f"{COUNT_PREFIX}1": 3}
    assert set(settle_observed(expectations, counted, grouped, files, broken)) == {2}
    files[0] = Known(3, {"s": 1}, {}, {}, False)  # two files of one day
    assert set(settle_observed(expectations, counted, grouped, files, clean)) == {1, 2}
    assert settle_observed(expectations, counted, grouped, files, {}) == {}
