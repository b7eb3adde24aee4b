"""A run that fails on bad source data says why: ``kiln backfill`` as a user runs it, on a tiny sample warehouse.

Each case adds one bad file to the purchases source: a truncated parquet file,
a file whose ``amount`` is a string, a file without ``amount``. The one error
line names the view, the file and the column where Spark gives them, carries
no py4j object id, nothing is published, and the run history's row holds the
same line.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurekiln.samples import purchases_frame, write_sample_sources
from tests.test_cli import NOISE, REPO_ROOT, kiln

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.slow
PY4J = re.compile(r"\bo\d+\.\w+|Py4J")


def _parquet(path: Path, frame: pd.DataFrame) -> None:
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None), path)


def _new_day() -> pd.DataFrame:
    return purchases_frame(date(2025, 1, 6), 1, 20, 5)


def _truncated(raw: Path) -> str:
    data = (raw / "part-00000.parquet").read_bytes()
    (raw / "part-truncated.parquet").write_bytes(data[: len(data) // 2])
    return "part-truncated.parquet"


def _drift(raw: Path) -> str:
    frame = _new_day()
    _parquet(raw / "part-drift.parquet", frame.assign(amount=frame["amount"].astype(str)))
    return "part-drift.parquet"


def _missing(raw: Path) -> str:
    # Spark takes a parquet source's schema from its first file by name: this one, so `amount` is unknown.
    # (A file without `amount` that sorts later is read with `amount` null, which is no error.)
    _parquet(raw / "2025-01-06.parquet", _new_day().drop(columns=["amount"]))
    return "2025-01-06.parquet"


@pytest.mark.parametrize(
    ("add_bad_file", "expected"),
    [
        (_truncated, ["[FAILED_READ_FILE.NO_HINT] Encountered error while reading file", "part-truncated.parquet: "]),
        (
            _drift,
            [
                "[FAILED_READ_FILE.PARQUET_COLUMN_DATA_TYPE_MISMATCH]",
                "part-drift.parquet",
                "column [amount]",
                "Expected Spark type double, actual Parquet type BINARY",
            ],
        ),
        (
            _missing,
            [
                "features[1].expr: 'amount' does not resolve against the source",
                "[UNRESOLVED_COLUMN.WITH_SUGGESTION]",
                "`amount`",
            ],
        ),
    ],
    ids=["truncated", "type-drift", "missing-column"],
)
def test_a_run_on_a_bad_source_file_says_why(
    spark: SparkSession, tmp_path: Path, add_bad_file: Callable[[Path], str], expected: list[str]
) -> None:
    warehouse, defs = tmp_path / "warehouse", tmp_path / "defs"
    write_sample_sources(warehouse, days=6, users=20, seed=3)
    defs.mkdir()
    shutil.copy(REPO_ROOT / "feature_defs" / "user_purchases.yaml", defs)
    add_bad_file(warehouse / "raw" / "purchases")

    done = kiln(
        "backfill",
        "user_purchases",
        "--start",
        "2025-01-05",
        "--end",
        "2025-01-07",
        "--defs",
        str(defs),
        "--warehouse",
        str(warehouse),
        env={"KILN_SPARK_MASTER": "local[1]"},
    )

    assert done.returncode == 1, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    line = errors[0].removeprefix("error: ")
    assert line.startswith("user_purchases: "), line
    assert all(part in line for part in expected), line
    assert not PY4J.search(line) and "SQLSTATE" not in line, line
    assert "Traceback" not in done.stderr and not [x for x in done.stderr.splitlines() if any(n in x for n in NOISE)]

    features = warehouse / "features" / "user_purchases"
    assert not features.exists() or spark.read.format("delta").load(str(features)).count() == 0, "nothing published"
    runs = spark.read.format("delta").load(str(warehouse / "_kiln" / "runs")).collect()
    assert [(run.view, run.status, run.error) for run in runs] == [("user_purchases", "error", line)]
