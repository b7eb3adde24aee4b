"""What the values a write observed prove for the gate: pure code on literal values, and on files written
through Delta's transaction against the scan."""

from __future__ import annotations

import logging
from datetime import date

import pytest

from featurekiln.quality.expectation_sql import COUNT_PREFIX
from featurekiln.quality.proofs_from_statistics import Known
from featurekiln.quality.proofs_observed import REPEATS_PREFIX, settle
from featurekiln.quality.suites import FEATURE_TS_QUERY
from tests.quality.cases import CASES, FEATURE_TS, ROWS, UNIQUE, check, comparable, snapshots

CHUNKS = [(date(2025, 1, 1), date(2025, 1, 1)), (date(2025, 1, 2), date(2025, 1, 3)), (date(2025, 1, 5), date(2025, 1, 9))]


def test_observed_values_decide_only_what_they_prove() -> None:
    """A check is decided only when nothing unexpected was observed, a uniqueness check only with one file per
    day too, a value check's non-null base only from the statistics; every other check gets its reason."""
    expectations = {0: check("expect_compound_columns_to_be_unique", column_list=["k", "ds"]),
                    1: check("unexpected_rows_expectation", unexpected_rows_query=FEATURE_TS_QUERY),
                    2: check("expect_column_values_to_match_regex", column="s", regex="^/")}
    counted, grouped = dict.fromkeys([1, 2]), {0: ["k", "ds"]}
    files = [Known(3, {"s": 1}, {}, {}, True), Known(0, {}, {}, {}, True)]
    clean = {f"{REPEATS_PREFIX}0": 0, "_unexpected_1": 0, "_unexpected_2": 0}
    proofs = settle(expectations, counted, grouped, files, clean)
    assert proofs.decided == {0: [{0: 0}, {0: 0}], 1: [{"_unexpected_1": 0}, {"_unexpected_1": 0}]}
    assert proofs.unproven == {2: "Delta took no null counts of s"}, \
        "the regex check's column has no null count in the second chunk's statistics"
    files[1] = Known(0, {"s": 0}, {}, {}, True)
    assert settle(expectations, counted, grouped, files, clean).decided[2] == [
        {"_unexpected_2": 0, "_nonnull_2": 2}, {"_unexpected_2": 0, "_nonnull_2": 0}]
    broken = {**clean, f"{REPEATS_PREFIX}0": 1, "_unexpected_1": 3}
    proofs = settle(expectations, counted, grouped, files, broken)
    assert set(proofs.decided) == {2}
    assert proofs.unproven == {0: "the write observed 1 row(s) that may repeat a combination",
                               1: "the write observed 3 unexpected row(s)"}
    files[0] = Known(3, {"s": 1}, {}, {}, False)  # two files of one day
    proofs = settle(expectations, counted, grouped, files, clean)
    assert set(proofs.decided) == {1, 2}
    assert proofs.unproven == {0: "a partition value's rows are in more than one file"}
    nothing = settle(expectations, counted, grouped, files, {})
    assert nothing.decided == {} and set(nothing.unproven.values()) == {"not observed during the write"}


def _written(spark, tmp_path, rows, suites, name):  # noqa: ANN001, ANN202
    """``rows`` written as a backfill writes them (each day sorted by ``k``), observing the gate's checks."""
    from featurekiln.offline.delta_table import one_file_per_day
    from featurekiln.internals.delta_transaction import write_uncommitted
    from featurekiln.quality import gate

    frame = snapshots(spark, rows)
    return write_uncommitted(spark, str(tmp_path / name), one_file_per_day(frame.repartition(3), "ds", 9),
                             partition="ds", metadata="{}", where="ds >= '2025-01-01' AND ds < '2025-01-10'",
                             observe=gate.observed_checks(frame, suites))


@pytest.mark.slow
def test_values_observed_as_the_files_are_written_decide_as_the_scan_does(spark, tmp_path, caplog) -> None:
    """With the values observed during the write, the outcomes are the scan's: on rows that fail (a repeated
    key and day, a wrong feature_ts: the scan decides those, logged with the reason) and on rows that pass,
    where the uniqueness and feature_ts checks come from the observed values and nothing is scanned; values
    observed over other rows are refused, logged."""
    from featurekiln.quality import expectation_sql, gate, proofs_from_statistics
    from featurekiln.quality.suites import Suite

    suites = [Suite("cases", None, tuple(CASES))]
    expectations = dict(enumerate(CASES))
    caplog.set_level(logging.INFO, logger="featurekiln.quality")

    failing = _written(spark, tmp_path, ROWS, suites, "failing")
    assert failing.observed[f"{REPEATS_PREFIX}{UNIQUE}"] == 1
    observed = gate.validate_chunks(failing.rows, "cases", suites, CHUNKS, failing.statistics, failing.observed)
    assert "expect_compound_columns_to_be_unique(k, ds): the write observed 1 row(s) that may repeat" in caplog.text
    scanned = gate.validate_chunks(failing.rows, "cases", suites, CHUNKS)
    assert [comparable(c) for c in observed] == [comparable(c) for c in scanned]
    assert not observed[0].outcomes[UNIQUE].success and observed[0].outcomes[UNIQUE].unexpected_count == 2

    clean = [(k, ds, ts.replace("00:00:01", "00:00:00") if ts else f"{ds[:-2]}{int(ds[-2:]) + 1:02d} 00:00:00", n, x, s)
             for k, ds, ts, n, x, s in ROWS if (k, ds, ts) != (2, "2025-01-01", "2025-01-02 00:00:01")]
    passing = _written(spark, tmp_path, clean, suites, "passing")
    known = [proofs_from_statistics.known(passing.statistics, "ds")]
    checks = expectation_sql.translate(passing.rows, expectations)
    proofs = settle(expectations, checks.counted, checks.grouped, known, passing.observed)
    assert {UNIQUE, FEATURE_TS} <= set(proofs.decided)
    observed = gate.validate_chunks(passing.rows, "cases", suites, CHUNKS, passing.statistics, passing.observed)
    scanned = gate.validate_chunks(passing.rows, "cases", suites, CHUNKS)
    assert [comparable(c) for c in observed] == [comparable(c) for c in scanned]
    assert observed[0].outcomes[UNIQUE].success and observed[0].outcomes[FEATURE_TS].success

    caplog.clear()
    wrong = {**passing.observed, expectation_sql.ROWS: passing.observed[expectation_sql.ROWS] + 1}  # other rows
    assert [comparable(c) for c in gate.validate_chunks(passing.rows, "cases", suites, CHUNKS, passing.statistics,
                                                        wrong)] == [comparable(c) for c in scanned]
    rows = passing.observed[expectation_sql.ROWS]
    assert f"the values observed during the write are of {rows + 1} row(s), the files hold {rows}" in caplog.text


@pytest.mark.slow
def test_a_session_without_the_aggregate_observes_no_repeats_and_says_so(spark, caplog, monkeypatch) -> None:
    """Where the session's JVM has no ``RepeatedKeys`` class, the uniqueness check is not observed (the scan
    decides it) and the log says why."""
    from featurekiln.internals import jars
    from featurekiln.quality import gate
    from featurekiln.quality.suites import Suite

    suites = [Suite("cases", None, tuple(CASES))]
    assert f"{REPEATS_PREFIX}{UNIQUE}" in gate.observed_checks(snapshots(spark), suites)
    monkeypatch.setattr(jars, "REPEATED_KEYS_CLASS", "featurekiln.NoSuchAggregate")
    caplog.set_level(logging.INFO, logger="featurekiln.quality")
    observable = gate.observed_checks(snapshots(spark), suites)
    assert not any(name.startswith(REPEATS_PREFIX) for name in observable)
    assert f"{COUNT_PREFIX}{FEATURE_TS}" in observable, "the other checks are observed still"
    assert "featurekiln.NoSuchAggregate is not in this session's JVM" in caplog.text

