"""The run history: one row per run of a view, in a Delta table under ``<warehouse>/_kiln/runs``.

Rows are appended when a run ends (blind appends, so runs of different views
never conflict). The row summarises the run; the run's full validation
outcomes are in its JSON report (see :mod:`featurekiln.quality.report`).
"""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

from featurekiln.errors import KilnError
from featurekiln.layout import history_path
from featurekiln.quality.results import RunReport
from featurekiln.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

HISTORY_SCHEMA = (
    "view STRING, run_id STRING, trigger STRING, start DATE, `end` DATE, status STRING, rows BIGINT, "
    "failed ARRAY<STRING>, warnings ARRAY<STRING>, published STRING, duration_s DOUBLE, "
    "started_at TIMESTAMP, finished_at TIMESTAMP, report STRING, quarantine STRING, error STRING"
)


class UnvalidatedError(KilnError):
    """A snapshot was not published by a validated run, so it may not be pushed online."""


def record_run(spark: SparkSession, settings: Settings, report: RunReport) -> None:
    """Append the summary row of a finished run to the history table (created on first use)."""
    row = (
        report.view,
        report.run_id,
        report.trigger,
        report.start,
        report.end,
        report.status,
        report.rows,
        [o.line() for o in report.failed],
        [o.line() for o in report.warnings],
        json.dumps(report.published),
        round(report.seconds, 3),
        report.started_at,
        report.finished_at or datetime.now(timezone.utc),
        report.report,
        report.quarantine,
        report.error,
    )
    from featurekiln.offline.delta_table import COMMIT_ATTEMPTS, lost_commit_race

    frame = spark.createDataFrame([row], HISTORY_SCHEMA)
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        try:
            frame.write.format("delta").mode("append").save(history_path(settings))
            return
        except Exception as error:  # noqa: BLE001 - only a lost race to create the table is retried
            if attempt == COMMIT_ATTEMPTS or not lost_commit_race(error):
                raise


def read_runs(settings: Settings, view: str | None = None, last: int | None = None) -> list[dict[str, Any]]:
    """The history rows (newest first: by ``finished_at``, then ``run_id``), of one view or of all; at most
    ``last`` of them. Read without Spark (:mod:`featurekiln.offline.table_reader`); no history is no rows."""
    import pyarrow.compute as pc

    from featurekiln.offline.table_reader import open_table, python_rows, sort_rows

    table = open_table(history_path(settings), settings)
    if table is None:
        return []
    frame = table.read()
    if view is not None:
        frame = frame.filter(pc.equal(frame["view"], view))
    rows = python_rows(sort_rows(frame, ["finished_at", "run_id"], descending=True, limit=last))
    for row in rows:
        row["published"] = [tuple(p) for p in json.loads(row["published"] or "[]")]
    return rows


def require_validated(spark: SparkSession, settings: Settings, view: str, ds: date) -> dict[str, Any]:
    """The newest run that published snapshot ``ds`` of ``view``, if it validated it.

    Every chunk that a validating run published passed its blocking expectations,
    even when a later chunk of the same run failed; only runs with validation
    switched off (status ``unvalidated``) publish unchecked snapshots.

    Raises:
        UnvalidatedError: no run published ``ds``, or the newest one did so with
            validation switched off.
    """
    day = ds.isoformat()
    for run in read_runs(settings, view):
        if any(first <= day <= last for first, last in run["published"]):
            if run["status"] == "unvalidated":
                raise UnvalidatedError(
                    f"{view}: snapshot {day} was published by run {run['run_id']} without validation; "
                    f"backfill it again with validation before pushing it online"
                )
            return run
    raise UnvalidatedError(
        f"{view}: no run in the history published snapshot {day}; run `kiln backfill {view} --start {day} --end {day}` first"
    )
