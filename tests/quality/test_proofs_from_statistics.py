"""What Delta's statistics of written files prove for the gate: pure code on literal statistics (as
write_uncommitted reads them from the AddFile actions), and on files written through Delta's transaction
against the scan."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

import pytest

from featurekiln.internals.delta_transaction import FileStatistics
from featurekiln.quality.expectation_sql import COUNT_PREFIX, NONNULL_PREFIX
from featurekiln.quality.proofs_from_statistics import Known, known, settle
from tests.quality.cases import CASES, check, comparable, snapshots

TYPES = {"k": "LongType", "ds": "DateType", "n": "LongType", "x": "DoubleType", "f": "FloatType", "s": "StringType"}


def stats(day: str | None, rows: int, nulls: dict[str, int], least: dict[str, Any], greatest: dict[str, Any]) -> FileStatistics:
    return FileStatistics(day, rows, nulls, least, greatest)


FILES = [
    stats("2025-01-01", 3, {"k": 0, "n": 1, "x": 0, "f": 0, "s": 3}, {"k": 1, "n": -4, "x": 0.5, "f": 0.1}, {"k": 3, "n": 12, "x": 2.0, "f": 0.3}),
    stats("2025-01-02", 2, {"k": 0, "n": 2, "x": 0, "f": 0, "s": 0}, {"k": 2, "x": 1.5, "f": 0.2, "s": "a"}, {"k": 5, "x": "NaN", "f": 0.2, "s": "b"}),
]


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


def test_settle_decides_what_the_statistics_prove_and_gives_the_reason_for_the_rest() -> None:
    expectations = dict(enumerate([
        check("expect_column_values_to_not_be_null", column="n"),                            # 0: 3 nulls, exactly
        check("expect_column_values_to_not_be_null", column="ds"),                           # 1: the partition
        check("expect_column_values_to_be_between", column="n", min_value=-4, max_value=12),  # 2: kept
        check("expect_column_values_to_be_between", column="n", min_value=0),                # 3: not kept: scan
        check("expect_column_values_to_be_between", column="x", min_value=0),                # 4: NaN: scan
        check("expect_column_values_to_be_between", column="f", max_value=1),                # 5: float: not provable
        check("expect_column_values_to_be_between", column="k", max_value=5),                # 6: kept
        check("expect_column_values_to_be_in_set", column="k", value_set=[1]),               # 7: not provable
        check("expect_column_values_to_not_be_null", column="missing"),                      # 8: not known: scan
    ]))
    counted = dict.fromkeys(expectations)
    chunks = [known(FILES[:1], "ds"), known(FILES[1:], "ds"), known([], "ds")]  # the last without rows
    proofs = settle(expectations, counted, TYPES, chunks)
    assert sorted(proofs.decided) == [0, 1, 2, 6]
    assert proofs.decided[0] == [{f"{COUNT_PREFIX}0": 1}, {f"{COUNT_PREFIX}0": 2}, {f"{COUNT_PREFIX}0": 0}]
    assert proofs.decided[1] == [{f"{COUNT_PREFIX}1": 0}] * 3
    assert proofs.decided[2] == [{f"{COUNT_PREFIX}2": 0, f"{NONNULL_PREFIX}2": values} for values in (2, 0, 0)], \
        "a chunk whose column holds only nulls keeps any bound"
    assert proofs.decided[6] == [{f"{COUNT_PREFIX}6": 0, f"{NONNULL_PREFIX}6": values} for values in (3, 2, 0)]
    assert proofs.unproven == {
        3: "the files' statistics of n do not keep the bounds (or are not known)",
        4: "the files' statistics of x do not keep the bounds (or are not known)",
        8: "Delta took no null counts of missing",
    }, "a reason for every provable check left to the scan, none for the others"
    assert sorted(settle(expectations, counted, TYPES, chunks[2:]).decided) == [0, 1, 2, 3, 4, 6, 8], \
        "a chunk without rows has no unexpected rows"


@pytest.mark.slow
def test_statistics_of_the_written_files_decide_as_the_scan_does(spark, tmp_path, caplog) -> None:
    """Written through Delta's transaction, the chunks' not-null and kept-bound checks are decided from the
    files' statistics, failures included: the same rows, outcomes and sample values as the scan alone gives,
    for an empty chunk too; the checks left to the scan are logged with their reason."""
    from featurekiln.internals.delta_transaction import write_uncommitted
    from featurekiln.quality import expectation_sql, gate
    from featurekiln.quality.suites import Suite

    frame = snapshots(spark)
    kept = (check("expect_column_values_to_be_between", column="x", min_value=-1, max_value=7),
            check("expect_column_values_to_be_between", column="k", max_value=3))
    suites = [Suite("cases", None, (*CASES, *kept))]
    chunks = [(date(2025, 1, 1), date(2025, 1, 1)), (date(2025, 1, 2), date(2025, 1, 3)), (date(2025, 1, 5), date(2025, 1, 9))]
    pending = write_uncommitted(spark, str(tmp_path / "t"), frame.repartition(3), partition="ds", metadata="{}",
                                where="ds >= '2025-01-01' AND ds < '2025-01-10'")

    caplog.set_level(logging.INFO, logger="featurekiln.quality")
    with_statistics = gate.validate_chunks(pending.rows, "cases", suites, chunks, pending.statistics)
    logged = caplog.text
    scanned = gate.validate_chunks(pending.rows, "cases", suites, chunks)
    assert [c.rows for c in with_statistics] == [3, 2, 0]
    assert [comparable(c) for c in with_statistics] == [comparable(c) for c in scanned]
    assert "expect_column_values_to_be_between(n): the files' statistics of n do not keep the bounds" in logged
    assert "expect_column_values_to_match_regex(s): no values were observed during the write" in logged
    assert "cases: the written files carry no statistics" in caplog.text, "the scan without proofs is logged"

    expectations = dict(enumerate(suites[0].expectations))
    proofs = settle(expectations, dict.fromkeys(expectations), expectation_sql.column_types(pending.rows),
                    [known(pending.statistics, "ds")])
    assert {(expectations[i].type, expectations[i].kwargs.get("column")) for i in proofs.decided} == {
        ("expect_column_values_to_not_be_null", "n"), ("expect_column_values_to_not_be_null", "k"),
        ("expect_column_values_to_be_between", "n"), ("expect_column_values_to_be_between", "x"),
        ("expect_column_values_to_be_between", "k")}
    assert proofs.decided[4] == [{f"{COUNT_PREFIX}4": 1}], "the failing not-null check, from the null counts"
