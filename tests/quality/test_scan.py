"""The gate's scan: a backfill's chunks decided at once as each alone, and a scan Spark cannot run left to Great
Expectations, logged with its reason; on real Spark and GE."""

from __future__ import annotations

import logging
from datetime import date

import pytest

from tests.quality.cases import CASES, check, comparable, snapshots

pytestmark = pytest.mark.slow

CHUNKS = [(date(2025, 1, 1), date(2025, 1, 1)), (date(2025, 1, 2), date(2025, 1, 3)), (date(2025, 1, 5), date(2025, 1, 9))]


def test_chunks_decided_at_once_as_each_alone(spark) -> None:
    """A backfill's chunks validated in one pass (`gate.validate_chunks`) give what validating each alone gives:
    rows, outcomes, sample values; for an empty chunk, and with an expectation left to Great Expectations."""
    from featurekiln.quality import gate
    from featurekiln.quality.suites import Suite

    frame = snapshots(spark).persist()
    suites = [Suite("cases", None, (*CASES, check("expect_column_mean_to_be_between", column="x", min_value=0, max_value=3)))]
    together = gate.validate_chunks(frame, "cases", suites, CHUNKS)
    alone = [gate.validate_chunk(frame.where(f"ds BETWEEN '{a}' AND '{b}'"), "cases", suites, a, b) for a, b in CHUNKS]
    assert [(c.start, c.end) for c in together] == CHUNKS
    assert [c.rows for c in together] == [3, 2, 0]
    assert [comparable(c) for c in together] == [comparable(c) for c in alone]
    assert any(o.sample for c in together for o in c.outcomes if not o.success), "failures with samples are compared"


def test_a_scan_spark_cannot_run_is_left_to_great_expectations_and_logged(spark, caplog) -> None:
    """A rows query on a column the chunk lacks fails the scan's query: every check then goes to Great
    Expectations (the same outcomes as the scan's for the others, a failure for the broken one), and the
    fallback is logged at INFO with Spark's reason."""
    from featurekiln.quality import gate
    from featurekiln.quality.suites import Suite

    frame = snapshots(spark).persist()
    broken = check("unexpected_rows_expectation", unexpected_rows_query="SELECT * FROM {batch} WHERE missing > 1")
    suites = [Suite("cases", None, (*CASES, broken))]
    caplog.set_level(logging.INFO, logger="featurekiln.quality")
    fallen = gate.validate_chunk(frame, "cases", suites, date(2025, 1, 1), date(2025, 1, 9))
    [record] = [r for r in caplog.records if r.name == "featurekiln.quality.scan"]
    assert record.levelno == logging.INFO
    assert "the gate's scan failed" in record.getMessage() and "missing" in record.getMessage()
    assert "Great Expectations decides 15 check(s)" in record.getMessage(), "13 counted and 2 uniqueness checks"

    scanned = gate.validate_chunk(frame, "cases", [Suite("cases", None, tuple(CASES))], date(2025, 1, 1),
                                  date(2025, 1, 9))
    rows, outcomes = comparable(fallen)
    assert (rows, outcomes[:-1]) == comparable(scanned)
    assert not outcomes[-1].success, "Great Expectations fails the broken query"
