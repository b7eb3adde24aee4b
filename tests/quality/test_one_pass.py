"""The gate's one-pass first pass decides exactly as Great Expectations does, on real Spark and GE."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from featurekiln.quality.suites import FEATURE_TS_QUERY, Expectation

pytestmark = pytest.mark.slow

ROWS = [
    # k, ds, feature_ts (seconds), n, x, s
    (1, "2025-01-01", "2025-01-02 00:00:00", 3, 1.5, "/a"),
    (1, "2025-01-02", "2025-01-03 00:00:00", 0, None, "b"),
    (2, "2025-01-01", "2025-01-02 00:00:01", None, 7.0, None),
    (2, "2025-01-01", "2025-01-02 00:00:00", -4, 2.0, "/c"),
    (3, "2025-01-03", None, 12, -1.0, "/d"),
]


def check(kind: str, **kwargs: Any) -> Expectation:
    return Expectation(kind, kwargs, {}, "error", "test")


CASES = [
    check("expect_table_columns_to_match_ordered_list", column_list=["k", "ds", "feature_ts", "n", "x", "s"]),
    check("expect_table_columns_to_match_ordered_list", column_list=["k", "ds", "n"]),
    check("expect_compound_columns_to_be_unique", column_list=["k", "ds"]),
    check("expect_compound_columns_to_be_unique", column_list=["k", "ds", "feature_ts"]),
    check("expect_column_values_to_not_be_null", column="n"),
    check("expect_column_values_to_not_be_null", column="k"),
    check("expect_column_values_to_be_between", column="n", min_value=0),
    check("expect_column_values_to_be_between", column="n", min_value=-4, max_value=12),
    check("expect_column_values_to_be_between", column="x", max_value=2.0),
    check("expect_column_values_to_be_of_type", column="n", type_="LongType"),
    check("expect_column_values_to_be_of_type", column="x", type_="LongType"),
    check("expect_column_values_to_be_in_set", column="s", value_set=["/a", "/c", "/d"]),
    check("expect_column_values_to_be_in_set", column="s", value_set=["/a", "b", "/c", "/d"]),
    check("expect_column_values_to_match_regex", column="s", regex="^/"),
    check("expect_column_pair_values_a_to_be_greater_than_b", column_A="n", column_B="x", or_equal=True,
          ignore_row_if="either_value_is_missing"),
    check("expect_column_pair_values_a_to_be_greater_than_b", column_A="x", column_B="n", or_equal=False,
          ignore_row_if="either_value_is_missing"),
    check("unexpected_rows_expectation", unexpected_rows_query=FEATURE_TS_QUERY),
    check("unexpected_rows_expectation", unexpected_rows_query="SELECT * FROM {batch} WHERE n > 100"),
]


def test_one_pass_agrees_with_great_expectations(spark) -> None:
    from featurekiln.quality import gate, one_pass

    frame = spark.createDataFrame(ROWS, "k long, ds string, feature_ts string, n long, x double, s string")
    frame = frame.selectExpr("k", "CAST(ds AS DATE) AS ds", "CAST(feature_ts AS TIMESTAMP) AS feature_ts", "n", "x", "s").persist()
    expectations = dict(enumerate(CASES))
    rows, decided = one_pass.decide(frame, expectations, gate.SAMPLE_SIZE)
    assert rows == len(ROWS)
    assert sorted(decided) == sorted(expectations), "every case is one the first pass decides"

    batch = gate._batch_definition("one_pass").get_batch(batch_parameters={"dataframe": frame})
    by_ge = gate._run(batch, "one_pass", expectations, gate._SAMPLES)
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
            assert expectation.type not in one_pass.SAMPLED, label
    assert {decided[i]["success"] for i in decided} == {True, False}
    assert sampled >= 4, "failures of every sampled type are compared with GE's"

    # Without a uniqueness check the counts come from a plain aggregation instead of its groups: the same results.
    plain = {i: e for i, e in expectations.items() if e.type != "expect_compound_columns_to_be_unique"}
    assert _comparable(one_pass.decide(frame, plain, gate.SAMPLE_SIZE)[1]) == _comparable(
        {i: decided[i] for i in plain})


def test_a_column_without_values_reads_as_great_expectations_says(spark) -> None:
    """Checks on a column that holds only nulls and on one with values: the same outcomes as Great
    Expectations' (no percentage of no values, 0%, 50%)."""
    from featurekiln.quality import gate, one_pass

    frame = spark.createDataFrame([(1, None, 2.0), (2, None, 3.0)], "k long, z double, y double").persist()
    expectations = dict(enumerate([
        check("expect_column_values_to_be_between", column="z", min_value=0),
        check("expect_column_values_to_be_in_set", column="z", value_set=[1.0]),
        check("expect_column_values_to_be_between", column="y", min_value=0),
        check("expect_column_values_to_be_between", column="y", min_value=2.5),
    ]))
    decided = one_pass.decide(frame, expectations, gate.SAMPLE_SIZE)[1]
    batch = gate._batch_definition("one_pass").get_batch(batch_parameters={"dataframe": frame})
    by_ge = gate._run(batch, "one_pass", expectations, gate._SAMPLES)
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


def test_chunks_decided_at_once_as_each_alone(spark) -> None:
    """A backfill's chunks validated in one pass (`gate.validate_chunks`) give what validating each alone gives:
    rows, outcomes, sample values; for an empty chunk, and with an expectation left to Great Expectations."""
    from datetime import date

    from featurekiln.quality import gate
    from featurekiln.quality.suites import Suite

    frame = spark.createDataFrame(ROWS, "k long, ds string, feature_ts string, n long, x double, s string")
    frame = frame.selectExpr("k", "CAST(ds AS DATE) AS ds", "CAST(feature_ts AS TIMESTAMP) AS feature_ts", "n", "x", "s").persist()
    suites = [Suite("cases", None, (*CASES, check("expect_column_mean_to_be_between", column="x", min_value=0, max_value=3)))]
    chunks = [(date(2025, 1, 1), date(2025, 1, 1)), (date(2025, 1, 2), date(2025, 1, 3)), (date(2025, 1, 5), date(2025, 1, 9))]

    def comparable(checked) -> tuple:  # noqa: ANN001
        return checked.rows, [replace(o, sample=sorted(map(repr, o.sample))) for o in checked.outcomes]

    together = gate.validate_chunks(frame, "one_pass", suites, chunks)
    alone = [gate.validate_chunk(frame.where(f"ds BETWEEN '{a}' AND '{b}'"), "one_pass", suites, a, b) for a, b in chunks]
    assert [(c.start, c.end) for c in together] == chunks
    assert [c.rows for c in together] == [3, 2, 0]
    assert [comparable(c) for c in together] == [comparable(c) for c in alone]
    assert any(o.sample for c in together for o in c.outcomes if not o.success), "failures with samples are compared"


UNIQUE_ROWS = [
    # k, name, ds, n: repeats of (k, ds) inside one block of 64 days, the same day-of-block in two blocks,
    # null days, negative and 64-apart integers, a null name
    (1, "a", "2025-01-01", -1), (1, "a", "2025-01-01", 63), (1, "b", "2025-03-06", -1), (1, "b", "2025-03-07", 63),
    (2, "a", None, 0), (2, "a", None, 64), (2, None, "2025-01-01", 0), (2, None, "2025-01-02", 0),
    (3, "c", "2024-12-31", -65), (3, "c", "2025-01-01", -1), (3, "c", "2025-01-01", -1), (3, "c", "2025-02-01", 5),
]


@pytest.mark.parametrize(
    "columns", [["k", "ds"], ["ds"], ["name", "n"], ["k", "n"], ["k", "name"], ["name", "ds", "n"]])
def test_uniqueness_counts_repeats_as_a_group_by_would(spark, columns: list[str]) -> None:
    """The uniqueness check packs a date or integer column in blocks of 64 values (:func:`one_pass._groups`):
    its unexpected rows are those of a plain group-by (pandas' duplicates here, a null being one value),
    for the whole frame and chunk by chunk, whatever the column types."""
    from datetime import date

    import pandas as pd
    from pyspark.sql import functions as F

    from featurekiln.quality import one_pass

    frame = spark.createDataFrame(UNIQUE_ROWS, "k long, name string, ds string, n int") \
        .withColumn("ds", F.col("ds").cast("date")).persist()
    rows = pd.DataFrame(UNIQUE_ROWS, columns=["k", "name", "ds", "n"])

    def oracle(part: pd.DataFrame) -> int:
        return len(part) - len(part.drop_duplicates(subset=columns))

    expectation = {0: check("expect_compound_columns_to_be_unique", column_list=columns)}
    decided = one_pass.decide(frame, expectation, 5)[1][0]
    assert decided["result"]["unexpected_count"] == oracle(rows)

    chunks = [(date(2024, 12, 1), date(2025, 1, 1)), (date(2025, 1, 2), date(2025, 3, 31))]
    chunk = F
    for position, (first, last) in enumerate(chunks):
        chunk = chunk.when(F.col("ds").between(F.lit(first), F.lit(last)), F.lit(position))
    counts, results = one_pass.decide_chunks(frame, expectation, chunk, len(chunks), 5)
    days = pd.to_datetime(rows["ds"]).dt.date
    parts = [rows[(days >= first) & (days <= last)] for first, last in chunks]
    assert counts == [len(p) for p in parts]
    assert [r[0]["result"]["unexpected_count"] for r in results] == [oracle(p) for p in parts]
    assert oracle(rows) > 0


def test_statistics_of_the_written_files_decide_as_the_scan_does(spark, tmp_path) -> None:
    """Written through Delta's transaction, the chunks' not-null and kept-bound checks are decided from the
    files' statistics (:func:`one_pass.settle`), failures included: the same rows, outcomes and sample values
    as the scan alone gives, for an empty chunk too."""
    from datetime import date

    from featurekiln.offline.delta_transaction import write_uncommitted
    from featurekiln.quality import gate, one_pass
    from featurekiln.quality.suites import Suite

    frame = spark.createDataFrame(ROWS, "k long, ds string, feature_ts string, n long, x double, s string")
    frame = frame.selectExpr("k", "CAST(ds AS DATE) AS ds", "CAST(feature_ts AS TIMESTAMP) AS feature_ts", "n", "x", "s")
    kept = (check("expect_column_values_to_be_between", column="x", min_value=-1, max_value=7),
            check("expect_column_values_to_be_between", column="k", max_value=3))
    suites = [Suite("cases", None, (*CASES, *kept))]
    chunks = [(date(2025, 1, 1), date(2025, 1, 1)), (date(2025, 1, 2), date(2025, 1, 3)), (date(2025, 1, 5), date(2025, 1, 9))]
    pending = write_uncommitted(spark, str(tmp_path / "t"), frame.repartition(3), partition="ds", metadata="{}",
                                where="ds >= '2025-01-01' AND ds < '2025-01-10'")

    def comparable(checked) -> tuple:  # noqa: ANN001
        return checked.rows, [replace(o, sample=sorted(map(repr, o.sample))) for o in checked.outcomes]

    with_statistics = gate.validate_chunks(pending.rows, "one_pass", suites, chunks, pending.statistics)
    scanned = gate.validate_chunks(pending.rows, "one_pass", suites, chunks)
    assert [c.rows for c in with_statistics] == [3, 2, 0]
    assert [comparable(c) for c in with_statistics] == [comparable(c) for c in scanned]

    expectations = dict(enumerate(suites[0].expectations))
    settled = one_pass.settle(expectations, dict.fromkeys(expectations), one_pass._types(pending.rows),
                              [one_pass.known(pending.statistics, "ds")])
    assert {(expectations[i].type, expectations[i].kwargs.get("column")) for i in settled} == {
        ("expect_column_values_to_not_be_null", "n"), ("expect_column_values_to_not_be_null", "k"),
        ("expect_column_values_to_be_between", "n"), ("expect_column_values_to_be_between", "x"),
        ("expect_column_values_to_be_between", "k")}
    assert settled[4] == [{f"{one_pass.COUNT_PREFIX}4": 1}], "the failing not-null check, from the null counts"


def _written(spark, tmp_path, rows, suites, name):  # noqa: ANN001, ANN202
    """``rows`` written as a backfill writes them (each day sorted by ``k``), observing the gate's checks."""
    from featurekiln.offline.delta_table import one_file_per_day
    from featurekiln.offline.delta_transaction import write_uncommitted
    from featurekiln.quality import gate

    frame = spark.createDataFrame(rows, "k long, ds string, feature_ts string, n long, x double, s string")
    frame = frame.selectExpr("k", "CAST(ds AS DATE) AS ds", "CAST(feature_ts AS TIMESTAMP) AS feature_ts", "n", "x",
                             "s")
    return write_uncommitted(spark, str(tmp_path / name), one_file_per_day(frame.repartition(3), "ds", 9),
                             partition="ds", metadata="{}", where="ds >= '2025-01-01' AND ds < '2025-01-10'",
                             observe=gate.observed_checks(frame, suites))


def test_values_observed_as_the_files_are_written_decide_as_the_scan_does(spark, tmp_path) -> None:
    """With the values observed during the write (:func:`one_pass.observable`), the outcomes are the scan's:
    on rows that fail (a repeated key and day, a wrong feature_ts: the scan decides those) and on rows that
    pass, where the uniqueness and feature_ts checks come from the observed values and nothing is scanned."""
    from datetime import date

    from featurekiln.quality import gate, one_pass
    from featurekiln.quality.suites import Suite

    suites = [Suite("cases", None, tuple(CASES))]
    expectations = dict(enumerate(CASES))
    chunks = [(date(2025, 1, 1), date(2025, 1, 1)), (date(2025, 1, 2), date(2025, 1, 3)),
              (date(2025, 1, 5), date(2025, 1, 9))]
    unique, feature_ts = 2, 16  # the indexes of the (k, ds) uniqueness and feature_ts checks in CASES

    def comparable(checked) -> tuple:  # noqa: ANN001
        return checked.rows, [replace(o, sample=sorted(map(repr, o.sample))) for o in checked.outcomes]

    failing = _written(spark, tmp_path, ROWS, suites, "failing")
    assert failing.observed[f"{one_pass.REPEATS_PREFIX}{unique}"] == 1
    observed = gate.validate_chunks(failing.rows, "one_pass", suites, chunks, failing.statistics, failing.observed)
    scanned = gate.validate_chunks(failing.rows, "one_pass", suites, chunks)
    assert [comparable(c) for c in observed] == [comparable(c) for c in scanned]
    assert not observed[0].outcomes[unique].success and observed[0].outcomes[unique].unexpected_count == 2

    clean = [(k, ds, ts.replace("00:00:01", "00:00:00") if ts else f"{ds[:-2]}{int(ds[-2:]) + 1:02d} 00:00:00", n, x, s)
             for k, ds, ts, n, x, s in ROWS if (k, ds, ts) != (2, "2025-01-01", "2025-01-02 00:00:01")]
    passing = _written(spark, tmp_path, clean, suites, "passing")
    known = [one_pass.known(passing.statistics, "ds")]
    _, counted, _, grouped = one_pass._checks(passing.rows, expectations)
    settled = one_pass.settle_observed(expectations, counted, grouped, known, passing.observed)
    assert {unique, feature_ts} <= set(settled)
    observed = gate.validate_chunks(passing.rows, "one_pass", suites, chunks, passing.statistics, passing.observed)
    scanned = gate.validate_chunks(passing.rows, "one_pass", suites, chunks)
    assert [comparable(c) for c in observed] == [comparable(c) for c in scanned]
    assert observed[0].outcomes[unique].success and observed[0].outcomes[feature_ts].success
    wrong = {**passing.observed, one_pass.ROWS: passing.observed[one_pass.ROWS] + 1}  # not these files' rows
    assert [comparable(c) for c in gate.validate_chunks(passing.rows, "one_pass", suites, chunks, passing.statistics,
                                                        wrong)] == [comparable(c) for c in scanned]

