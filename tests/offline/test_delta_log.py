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
