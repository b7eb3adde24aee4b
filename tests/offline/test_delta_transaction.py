"""Audited writes (featurekiln.internals.delta_transaction and replace_days' ``audit``) on real Delta tables: the
written rows are seen before the commit, a rejected write leaves neither a version nor a file, a new table is
created by the commit, and a commit race lost after the audit is written again."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

import pytest

from featurekiln.internals.catalyst import jvm_aggregate, jvm_class
from featurekiln.internals.jars import REPEATED_KEYS_CLASS
from featurekiln.errors import QualityError
from featurekiln.offline.delta_log import DeltaLog
from featurekiln.offline.delta_table import day_fingerprints, replace_days
from featurekiln.internals.delta_transaction import write_uncommitted
from featurekiln.settings import Settings
from featurekiln.warehouse_files import LocalFiles

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

START = date(2025, 1, 1)
SCHEMA = "id long, value double, ds date"


def _rows(spark: SparkSession, days: range, value: float) -> DataFrame:
    return spark.createDataFrame([(i, value, START + timedelta(days=d)) for d in days for i in range(3)], SCHEMA)


def _table(spark: SparkSession, path: Path) -> list[tuple[int, float, date]]:
    return sorted(tuple(r) for r in spark.read.format("delta").load(str(path)).collect())


def _parquet_files(path: Path) -> set[Path]:
    return {p for p in path.rglob("*.parquet") if "_delta_log" not in p.parts}


def _committed_files(path: Path) -> set[Path]:
    """Every data file some version of the table added."""
    added = set()
    for commit in sorted((path / "_delta_log").glob("*.json")):
        for line in commit.read_text().splitlines():
            action = json.loads(line)
            if "add" in action:
                added.add(path / unquote(action["add"]["path"]))
    return added


def _interval(first: int, stop: int) -> tuple[date, date]:
    return START + timedelta(days=first), START + timedelta(days=stop)


def test_written_rows_are_seen_before_the_commit_and_only_the_commit_publishes_them(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = tmp_path / "table"
    settings = Settings(warehouse=str(tmp_path))
    replace_days(spark, settings, str(path), _rows(spark, range(4), 1.0), _interval(0, 4), {"run": "old"}, "t")
    before = _table(spark, path)
    where = f"ds >= '{START + timedelta(days=1)}' AND ds < '{START + timedelta(days=3)}'"

    pending = write_uncommitted(spark, str(path), _rows(spark, range(1, 3), 2.0), where=where, partition="ds",
                                metadata='{"run": "new"}')
    assert pending.rows.columns == ["id", "value", "ds"]
    assert sorted(tuple(r) for r in pending.rows.collect()) == sorted(
        (i, 2.0, START + timedelta(days=d)) for d in range(1, 3) for i in range(3))
    assert _table(spark, path) == before, "written files are not part of the table before the commit"
    assert all(Path(f).exists() for f in pending.files) and len(pending.files) == 2
    assert sorted((f.partition, f.rows, dict(f.nulls), dict(f.least), dict(f.greatest)) for f in pending.statistics) == [
        (str(START + timedelta(days=d)), 3, {"id": 0, "value": 0}, {"id": 0, "value": 2.0}, {"id": 2, "value": 2.0})
        for d in range(1, 3)], "Delta's statistics of each written file come with it"

    version = pending.commit('{"run": "new"}')
    assert version == 1
    assert _table(spark, path) == sorted(
        [r for r in before if r[2] in (START, START + timedelta(days=3))]
        + [(i, 2.0, START + timedelta(days=d)) for d in range(1, 3) for i in range(3)])
    assert [c.metadata for c in DeltaLog(str(path), LocalFiles()).commits()] == [{"run": "old"}, {"run": "new"}]


def test_a_rejected_write_leaves_no_version_and_no_file(spark: SparkSession, tmp_path: Path) -> None:
    path = tmp_path / "table"
    settings = Settings(warehouse=str(tmp_path))
    replace_days(spark, settings, str(path), _rows(spark, range(3), 1.0), _interval(0, 3), {"run": "old"}, "t")
    before, files = _table(spark, path), _parquet_files(path)
    seen: list[int] = []

    def reject(written: DataFrame, _statistics: object, _observed: object) -> None:
        seen.append(written.count())
        raise QualityError("rejected", ["value: not between"])

    with pytest.raises(QualityError, match="rejected"):
        replace_days(spark, settings, str(path), _rows(spark, range(3), 9.0), _interval(0, 3), {"run": "bad"}, "t",
                     audit=reject)
    assert seen == [9]
    assert _table(spark, path) == before
    assert _parquet_files(path) == files == _committed_files(path), "the rejected write's files are deleted"
    assert len(DeltaLog(str(path), LocalFiles()).commits()) == 1


def test_an_audited_write_creates_the_table_and_records_days_without_rows(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = tmp_path / "table"
    settings = Settings(warehouse=str(tmp_path))
    audited: list[int] = []
    first = replace_days(spark, settings, str(path), _rows(spark, range(2), 1.0), _interval(0, 2),
                         {"fingerprint": "a", "start": "2025-01-01", "end": "2025-01-02"}, "t",
                         audit=lambda written, _statistics, _observed: audited.append(written.count()))
    assert (first.version, first.rows) == (0, 6)
    empty = spark.createDataFrame([], SCHEMA)
    second = replace_days(spark, settings, str(path), empty, _interval(5, 7),
                          {"fingerprint": "a", "start": "2025-01-06", "end": "2025-01-07"}, "t",
                          audit=lambda written, _statistics, _observed: audited.append(written.count()))
    assert audited == [6, 0]
    assert (second.version, second.rows) == (1, 0)
    assert sorted(day_fingerprints(settings, str(path))) == [START + timedelta(days=d) for d in (0, 1, 5, 6)]


def test_a_commit_race_lost_after_the_audit_is_written_again(spark: SparkSession, tmp_path: Path) -> None:
    """Another run commits the same days while this one validates: this one's commit conflicts, and it writes
    its (identical) rows again on top without a second audit."""
    path = tmp_path / "table"
    settings = Settings(warehouse=str(tmp_path))
    replace_days(spark, settings, str(path), _rows(spark, range(3), 1.0), _interval(0, 3), {"run": "old"}, "t")
    audits: list[int] = []

    def meanwhile(written: DataFrame, _statistics: object, _observed: object) -> None:
        audits.append(written.count())
        replace_days(spark, settings, str(path), _rows(spark, range(3), 2.0), _interval(0, 3), {"run": "other"}, "t")

    ours = replace_days(spark, settings, str(path), _rows(spark, range(3), 2.0), _interval(0, 3), {"run": "ours"},
                        "t", audit=meanwhile)
    assert audits == [9]
    commits = DeltaLog(str(path), LocalFiles()).commits()
    assert [c.metadata["run"] for c in commits] == ["old", "other", "ours"]
    assert ours.version == 2
    assert _table(spark, path) == sorted((i, 2.0, START + timedelta(days=d)) for d in range(3) for i in range(3))
    assert _parquet_files(path) == _committed_files(path), "the files of the attempt that lost are deleted"


def test_an_audit_is_not_for_a_write_that_adds_columns(spark: SparkSession, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot add columns"):
        replace_days(spark, Settings(warehouse=str(tmp_path)), str(tmp_path / "t"), _rows(spark, range(1), 1.0),
                     _interval(0, 1), {}, "t", evolve=True, audit=lambda _written, _statistics, _observed: None)


def test_a_write_without_statistics_hands_over_none(spark: SparkSession, tmp_path: Path) -> None:
    """With Delta's statistics switched off the files come without them (the gate then scans every check)."""
    spark.conf.set("spark.databricks.delta.stats.collect", "false")
    try:
        pending = write_uncommitted(spark, str(tmp_path / "t"), _rows(spark, range(2), 1.0), partition="ds",
                                    where=f"ds >= '{START}'", metadata="{}")
    finally:
        spark.conf.unset("spark.databricks.delta.stats.collect")
    assert len(pending.files) == 2 and pending.statistics is None
    pending.discard()


def test_an_audited_write_sorts_each_day_and_hands_over_what_it_observed(
    spark: SparkSession, tmp_path: Path
) -> None:
    """Each write task sees its rows grouped by day (what the gate's observed proofs need), and the observed
    aggregates come back with the written rows, for a write with rows and for one without."""
    from pyspark.sql import functions as F

    path = tmp_path / "table"
    settings = Settings(warehouse=str(tmp_path))
    seen: list[tuple[list[int], dict | None]] = []

    def audit(written: DataFrame, _statistics: object, observed: dict | None) -> None:
        ids = sorted(r.id for r in written.where(F.col("ds") == START).collect())
        seen.append((ids, observed))

    shuffled = spark.createDataFrame([(i, 1.0, START + timedelta(days=d)) for i in (5, 2, 9, 0, 7) for d in range(3)],
                                     SCHEMA).repartition(3)
    # RepeatedKeys counts a day whose rows a task meets apart from each other: 0 says each day came together.
    repeated = jvm_aggregate(jvm_class(REPEATED_KEYS_CLASS), F.xxhash64("ds"), F.xxhash64("id"))
    observe = {"rows": F.count(F.lit(1)), "big": F.count_if(F.col("id") > 4), "repeated": repeated}
    replace_days(spark, settings, str(path), shuffled, _interval(0, 3), {}, "t", audit=audit, observe=observe)
    replace_days(spark, settings, str(path), spark.createDataFrame([], SCHEMA), _interval(3, 4), {}, "t",
                 audit=audit, observe=observe)
    assert seen == [([0, 2, 5, 7, 9], {"rows": 15, "big": 9, "repeated": 0}),
                    ([], {"rows": 0, "big": 0, "repeated": 0})]


STATS_LIKE = "view string, ds date, value double"


def _view_rows(spark: SparkSession, view: str, days: range, value: float) -> DataFrame:
    return spark.createDataFrame([(view, START + timedelta(days=d), value) for d in days], STATS_LIKE)


def _by_day(spark: SparkSession, path: Path) -> dict[tuple[str, int], float]:
    rows = spark.read.format("delta").load(str(path)).collect()
    assert len(rows) == len({(r.view, r.ds) for r in rows}), "one row per (view, ds)"
    return {(r.view, (r.ds - START).days): r.value for r in rows}


def test_replace_rows_replaces_the_days_of_one_value_and_keeps_the_rest(spark: SparkSession, tmp_path: Path) -> None:
    """Files chosen from the log: overlapping ranges keep the rows of other days, another partition value is
    untouched, every version is one commit, and no file is left that the log does not name."""
    from featurekiln.offline.delta_table import replace_rows

    path, settings = tmp_path / "stats", Settings(warehouse=str(tmp_path))

    def put(view: str, first: int, last: int, value: float) -> None:
        replace_rows(spark, settings, str(path), _view_rows(spark, view, range(first, last + 1), value),
                     partition="view", value=view, column="ds", days=(START + timedelta(days=first),
                                                                      START + timedelta(days=last)),
                     metadata={"view": view, "value": value}, name=view)

    put("a", 0, 9, 1.0)  # creates the table
    put("b", 0, 9, 5.0)
    put("a", 5, 12, 2.0)  # overlaps: days 0..4 kept, 5..12 replaced
    put("a", 13, 13, 3.0)  # a new day: no file holds it
    put("a", 12, 13, 4.0)  # replaces rows of two files
    expected = {**{("a", d): 1.0 for d in range(5)}, **{("a", d): 2.0 for d in range(5, 12)},
                ("a", 12): 4.0, ("a", 13): 4.0, **{("b", d): 5.0 for d in range(10)}}
    assert _by_day(spark, path) == expected
    put("a", 20, 19, 0.0)  # no day: nothing changes (an empty range holds no file)
    assert _by_day(spark, path) == expected
    commits = DeltaLog(str(path), LocalFiles()).commits()
    assert [c.metadata.get("value") for c in commits] == [1.0, 5.0, 2.0, 3.0, 4.0, 0.0]
    assert _parquet_files(path) == _committed_files(path)


def test_a_replacing_write_loses_to_a_commit_made_after_its_transaction_started(
    spark: SparkSession, tmp_path: Path
) -> None:
    """Another writer adds rows of the same days while the files are chosen: this write's commit conflicts
    (replace_rows writes again), and the table holds the other writer's rows once."""
    from pyspark.sql import functions as F

    from featurekiln.internals.delta_transaction import write_replacing
    from featurekiln.offline.delta_table import lost_commit_race, replace_rows

    path, settings = tmp_path / "stats", Settings(warehouse=str(tmp_path))

    def put(first: int, value: float) -> None:
        replace_rows(spark, settings, str(path), _view_rows(spark, "a", range(first, first + 2), value),
                     partition="view", value="a", column="ds",
                     days=(START + timedelta(days=first), START + timedelta(days=first + 1)), metadata={}, name="a")

    put(0, 1.0)

    def meanwhile(version: int) -> list:
        put(3, 2.0)  # days 3..4: no file held them at ``version``
        return []

    pending = write_replacing(spark, str(path), _view_rows(spark, "a", range(3, 5), 3.0), choose=meanwhile,
                              keep=F.lit(False), partition="view", where="view = 'a'")
    with pytest.raises(Exception) as raised:  # noqa: PT011 - Delta's conflict error, through py4j
        pending.commit("{}")
    assert lost_commit_race(raised.value), raised.value
    pending.discard()
    assert _by_day(spark, path) == {("a", 0): 1.0, ("a", 1): 1.0, ("a", 3): 2.0, ("a", 4): 2.0}
    assert _parquet_files(path) == _committed_files(path)
