"""The gate's translation of expectations into Spark counts decides exactly as Great Expectations does, on real
Spark and GE."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tests.quality.cases import CASES, ROWS, check, snapshots

pytestmark = pytest.mark.slow


def test_every_translated_case_agrees_with_great_expectations(spark) -> None:
    from featurekiln.quality import expectation_sql, gate, scan

    frame = snapshots(spark).persist()
    expectations = dict(enumerate(CASES))
    checks = expectation_sql.translate(frame, expectations)
    assert sorted([*checks.from_schema, *checks.counted, *checks.grouped]) == sorted(expectations), \
        "every case is one the gate translates"
    rows, decided = scan.decide(frame, expectations, gate.SAMPLE_SIZE)
    assert rows == len(ROWS)
    assert sorted(decided) == sorted(expectations)

    batch = gate._batch_definition("cases").get_batch(batch_parameters={"dataframe": frame})
    by_ge = gate._run(batch, "cases", expectations, gate._SAMPLES)
    sampled = 0
    for index, expectation in expectations.items():
        ours, theirs = decided[index], by_ge[index]
        label = f"{expectation.type} {expectation.kwargs}"
        assert ours["success"] == theirs["success"], label
        if ours["success"] or "partial_unexpected_list" in ours["result"]:
            # reported from our result: it must read like GE's (the same few unexpected values, in any order)
            mine, its = gate._outcome(expectation, ours), gate._outcome(expectation, theirs)
            assert sorted(map(repr, mine.sample)) == sorted(map(repr, its.sample)), label
            assert replace(mine, sample=[]) == replace(its, sample=[]), label
            sampled += not ours["success"]
        else:
            assert expectation.type not in expectation_sql.SAMPLED, label
    assert {decided[i]["success"] for i in decided} == {True, False}
    assert sampled >= 4, "failures of every sampled type are compared with GE's"

    # Without a uniqueness check the counts come from a plain aggregation instead of its groups: the same results.
    plain = {i: e for i, e in expectations.items() if e.type != "expect_compound_columns_to_be_unique"}
    assert _comparable(scan.decide(frame, plain, gate.SAMPLE_SIZE)[1]) == _comparable(
        {i: decided[i] for i in plain})


def test_arguments_not_known_exactly_are_left_to_great_expectations(spark) -> None:
    """``mostly``, a bound that is not a number, a set of mixed types, a rows query that is not the plain
    ``SELECT * ... WHERE`` form: none is translated."""
    from featurekiln.quality import expectation_sql

    frame = snapshots(spark)
    expectations = dict(enumerate([
        check("expect_column_values_to_not_be_null", column="n", mostly=0.9),
        check("expect_column_values_to_be_between", column="n", min_value="0"),
        check("expect_column_values_to_be_in_set", column="s", value_set=["/a", 1]),
        check("expect_column_values_to_match_regex", column="n", regex="^1"),
        check("unexpected_rows_expectation", unexpected_rows_query="SELECT k FROM {batch} WHERE n > 1"),
        check("expect_compound_columns_to_be_unique", column_list=["k", "missing"]),
        check("expect_column_mean_to_be_between", column="x", min_value=0),
    ]))
    checks = expectation_sql.translate(frame, expectations)
    assert (checks.from_schema, checks.counted, checks.aggregates, checks.grouped) == ({}, {}, {}, {})


def test_a_column_without_values_reads_as_great_expectations_says(spark) -> None:
    """Checks on a column that holds only nulls and on one with values: the same outcomes as Great
    Expectations' (no percentage of no values, 0%, 50%)."""
    from featurekiln.quality import gate, scan

    frame = spark.createDataFrame([(1, None, 2.0), (2, None, 3.0)], "k long, z double, y double").persist()
    expectations = dict(enumerate([
        check("expect_column_values_to_be_between", column="z", min_value=0),
        check("expect_column_values_to_be_in_set", column="z", value_set=[1.0]),
        check("expect_column_values_to_be_between", column="y", min_value=0),
        check("expect_column_values_to_be_between", column="y", min_value=2.5),
    ]))
    decided = scan.decide(frame, expectations, gate.SAMPLE_SIZE)[1]
    batch = gate._batch_definition("cases").get_batch(batch_parameters={"dataframe": frame})
    by_ge = gate._run(batch, "cases", expectations, gate._SAMPLES)
    outcomes = {i: gate._outcome(e, decided[i]) for i, e in expectations.items()}
    assert outcomes == {i: gate._outcome(e, by_ge[i]) for i, e in expectations.items()}
    assert [o.success for o in outcomes.values()] == [True, True, True, False]
    assert outcomes[0].observed == "0 of 2 rows unexpected", "no percentage of no values"
    assert outcomes[3].observed == "1 of 2 rows unexpected (50%)"


def _comparable(results: dict[int, dict[str, Any]]) -> dict[int, str]:
    """Results with their sample values in a fixed order."""
    out = {}
    for index, item in results.items():
        result = dict(item["result"])
        if "partial_unexpected_list" in result:
            result["partial_unexpected_list"] = sorted(map(repr, result["partial_unexpected_list"]))
        out[index] = repr((item["success"], sorted(result.items())))
    return out
