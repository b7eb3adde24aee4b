"""The Delta log read as files (featurekiln.offline.delta_log) against what Spark's Delta says of the same table."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from featurekiln.errors import TableError
from featurekiln.offline.delta_log import DeltaLog
from featurekiln.warehouse_files import LocalFiles

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

START = date(2025, 1, 1)
DS = re.compile(r"/ds=(\d{4}-\d{2}-\d{2})/")


def _spark_view(spark: SparkSession, path: str) -> tuple[list[tuple[int, str | None]], set[str]]:
    from delta.tables import DeltaTable

    history = DeltaTable.forPath(spark, path).history().select("version", "userMetadata").collect()
    files = spark.read.format("delta").load(path).inputFiles()
    return sorted((int(r[0]), r[1]) for r in history), {m.group(1) for m in map(DS.search, files) if m}


def test_commits_and_days_equal_what_spark_reads_across_checkpoints(spark: SparkSession, tmp_path: Path) -> None:
    """14 commits (a checkpoint at version 10): appends, replaced days, a day cleared, a commit without metadata."""
    from delta.tables import DeltaTable

    from featurekiln.offline.delta_table import replace_days
    from featurekiln.settings import Settings

    path, settings = str(tmp_path / "table"), Settings(warehouse=str(tmp_path))
    written = []
    for n in range(12):
        first = START + timedelta(days=n % 5)
        rows = [] if n == 7 else [(1, first + timedelta(days=d)) for d in range(2)]
        frame = spark.createDataFrame(rows, "id long, ds date")
        commit = replace_days(spark, settings, path, frame, (first, first + timedelta(days=2)), {"n": n}, "t")
        written.append((commit.version, commit.rows))
    # replace_days finds its own commit in the log files: Spark's history agrees on version and rows written.
    metrics = DeltaTable.forPath(spark, path).history().select("version", "operationMetrics").collect()
    rows_of = {int(r[0]): int((r[1] or {}).get("numOutputRows", 0)) for r in metrics}
    assert written == [(v, rows_of[v]) for v, _ in written]
    assert written[7][1] == 0 and written[8][1] == 2
    spark.createDataFrame([(2, START + timedelta(days=30))], "id long, ds date").write.format("delta") \
        .mode("append").save(path)
    assert (tmp_path / "table" / "_delta_log" / f"{10:020d}.checkpoint.parquet").exists()

    log = DeltaLog(path, LocalFiles())
    history, days = _spark_view(spark, path)
    assert [(c.version, json.dumps(c.metadata, sort_keys=True) if c.metadata else None) for c in log.commits()] \
        == [(v, json.dumps(json.loads(m), sort_keys=True) if m else None) for v, m in history]
    assert log.partition_values("ds") == days
    assert "2025-01-31" in days and len(days) > 3

    # A log cleaned up to its checkpoint: the days come from the checkpoint and the commits after it.
    for old in range(10):
        (tmp_path / "table" / "_delta_log" / f"{old:020d}.json").unlink()
    assert DeltaLog(path, LocalFiles()).partition_values("ds") == days


def test_no_table_and_an_unreadable_log(tmp_path: Path) -> None:
    assert not DeltaLog(str(tmp_path / "nothing"), LocalFiles()).exists()
    folder = tmp_path / "cut" / "_delta_log"
    folder.mkdir(parents=True)
    (folder / f"{5:020d}.json").write_text(json.dumps({"commitInfo": {"userMetadata": "not json"}}) + "\n")
    log = DeltaLog(str(tmp_path / "cut"), LocalFiles())
    assert [(c.version, c.metadata) for c in log.commits()] == [(5, {})]
    with pytest.raises(TableError, match="starts at version 5 and has no checkpoint"):
        log.partition_values("ds")


class CountedFiles(LocalFiles):
    """The local disk, counting the commit files read and refusing writes when ``read_only``."""

    def __init__(self, read_only: bool = False) -> None:
        self.commit_reads, self.read_only = 0, read_only

    def read(self, path: str) -> bytes:
        self.commit_reads += bool(re.search(r"/\d{20}\.json$", path))
        return super().read(path)

    def write(self, path: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        if self.read_only:
            raise PermissionError(path)
        super().write(path, data, content_type)


def _write_commits(folder: Path, versions: range, tag: str) -> list[tuple[int, dict]]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for version in versions:
        body = {"start": (START + timedelta(days=version)).isoformat(), "run_id": f"{tag}{version}"}
        info = {"timestamp": 1_700_000_000_000 + version, "operationMetrics": {"numOutputRows": str(version)},
                "userMetadata": json.dumps(body)}
        (folder / f"{version:020d}.json").write_text(json.dumps({"commitInfo": info}) + "\n")
        written.append((version, body))
    return written


def _seen(log: DeltaLog) -> list[tuple[int, dict, int]]:
    return [(c.version, c.metadata, c.rows) for c in log.commits()]


def test_the_ledger_summary_bounds_the_commit_files_a_plan_reads(tmp_path: Path) -> None:
    """Once a writer summarized the log, a reader reads the commit files after the summary (and the summarized
    commit's file, to check it), not the whole history; what it returns is what reading every file returns.
    Readers never write a summary."""
    from featurekiln.offline.delta_log import SUMMARY, SUMMARY_EVERY

    folder = tmp_path / "t" / "_delta_log"
    written = _write_commits(folder, range(40), "a")
    reader = CountedFiles()
    assert _seen(DeltaLog(str(tmp_path / "t"), reader)) == [(v, body, v) for v, body in written]
    assert reader.commit_reads == 40 and not (folder / SUMMARY).exists()
    DeltaLog(str(tmp_path / "t"), LocalFiles()).summarize()  # as a writer does after its commit
    written += _write_commits(folder, range(40, 45), "a")
    later = CountedFiles()
    assert _seen(DeltaLog(str(tmp_path / "t"), later)) == [(v, body, v) for v, body in written]
    assert later.commit_reads == 1 + 5  # the summarized commit's digest, and the 5 commits after it
    DeltaLog(str(tmp_path / "t"), LocalFiles()).summarize()  # 5 new commits: not yet worth a new summary
    assert json.loads((folder / SUMMARY).read_text())["version"] == 39
    written += _write_commits(folder, range(45, 40 + SUMMARY_EVERY), "a")
    DeltaLog(str(tmp_path / "t"), LocalFiles()).summarize()
    assert json.loads((folder / SUMMARY).read_text())["version"] == 39 + SUMMARY_EVERY
    assert _seen(DeltaLog(str(tmp_path / "t"), LocalFiles())) == [(v, body, v) for v, body in written]


def test_a_summary_of_another_log_is_not_used(tmp_path: Path) -> None:
    """A table deleted and written again at the same path: the old summary's commits are not the new log's."""
    from featurekiln.offline.delta_log import SUMMARY

    folder = tmp_path / "t" / "_delta_log"
    _write_commits(folder, range(30), "old")
    DeltaLog(str(tmp_path / "t"), LocalFiles()).summarize()
    stale = (folder / SUMMARY).read_bytes()
    for commit in folder.glob("*.json"):
        commit.unlink()
    written = _write_commits(folder, range(35), "new")
    (folder / SUMMARY).write_bytes(stale)
    assert _seen(DeltaLog(str(tmp_path / "t"), LocalFiles())) == [(v, body, v) for v, body in written]
    (folder / SUMMARY).write_text("{not json")
    assert _seen(DeltaLog(str(tmp_path / "t"), LocalFiles())) == [(v, body, v) for v, body in written]


def test_a_writer_that_cannot_write_the_summary_loses_nothing(tmp_path: Path) -> None:
    from featurekiln.offline.delta_log import SUMMARY

    folder = tmp_path / "t" / "_delta_log"
    written = _write_commits(folder, range(20), "a")
    DeltaLog(str(tmp_path / "t"), CountedFiles(read_only=True)).summarize()
    assert not (folder / SUMMARY).exists()
    assert _seen(DeltaLog(str(tmp_path / "t"), LocalFiles())) == [(v, body, v) for v, body in written]
