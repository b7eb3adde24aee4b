"""The run history: one row per run of a view, in a Delta table under ``<warehouse>/_kiln/runs``.

Rows are appended when a run ends (blind appends, so runs of different views
never conflict). The row summarises the run; the run's full validation
outcomes are in its JSON report (see :mod:`featurekiln.quality.report`).

A run is also recorded when it starts, as a small JSON file under
``<warehouse>/_kiln/started`` (:func:`record_start`; a file write, not a Delta
commit, so a night's run pays no extra commit), removed once its history row is
written. A start record without a row is a run that is still going, or one that
died: :func:`read_runs` shows it as ``running``, or as ``interrupted`` once a
later run of the view has finished (or a day has passed), with the days it had
committed, read from the feature table's own commits (the ledger). The history
decides nothing: whether a day may be served is in the feature table's log.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timezone
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
    """The history rows (newest first: by ``finished_at``, then ``run_id``), of one view or of all, with the runs
    that started and have no row (:func:`unfinished_runs`); at most ``last`` of them. Read without Spark
    (:mod:`featurekiln.offline.table_reader`); no history is no rows."""
    import pyarrow.compute as pc

    from featurekiln.offline.table_reader import open_table, python_rows, sort_rows

    rows: list[dict[str, Any]] = []
    table = open_table(history_path(settings), settings)
    if table is not None:
        frame = table.read()
        if view is not None:
            frame = frame.filter(pc.equal(frame["view"], view))
        rows = python_rows(sort_rows(frame, ["finished_at", "run_id"], descending=True, limit=last))
        for row in rows:
            row["published"] = [tuple(p) for p in json.loads(row["published"] or "[]")]
    return with_unfinished(rows, unfinished_runs(settings, view), last)


def with_unfinished(rows: list[dict[str, Any]], started: list[dict[str, Any]], last: int | None = None
                    ) -> list[dict[str, Any]]:
    """``rows`` (history rows, newest first) with the unfinished runs ``started`` that have no row among them,
    newest first; a run that started before a finished run of its view (or over a day ago) is ``interrupted``."""
    have = {(r["view"], r["run_id"]) for r in rows}
    now = datetime.now(UTC)
    merged = list(rows)
    for run in started:
        if (run["view"], run["run_id"]) in have:
            continue
        later = any(r["view"] == run["view"] and r["started_at"] is not None
                    and _utc(r["started_at"]) > run["started_at"] for r in rows)
        stale = (now - run["started_at"]).total_seconds() > STALE_SECONDS
        status = "interrupted" if later or stale else "running"
        elapsed = 0.0 if status == "interrupted" else round((now - run["started_at"]).total_seconds(), 3)
        merged.append({**run, "status": status, "duration_s": elapsed})
    merged.sort(key=lambda r: _utc(r["finished_at"] or r["started_at"]), reverse=True)
    return merged[:last] if last is not None else merged


STALE_SECONDS = 86_400


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def record_start(settings: Settings, report: RunReport) -> None:
    """Record that the run of ``report`` started (its start record; replaced if the run starts a step again)."""
    from featurekiln.layout import started_path
    from featurekiln.warehouse_files import files_for

    path = started_path(settings, report.view, report.run_id)
    body = {k: report.to_dict()[k] for k in ("view", "run_id", "trigger", "start", "end", "started_at")}
    files_for(path, settings).write(path, json.dumps(body).encode("utf-8"), "application/json")


def clear_start(settings: Settings, report: RunReport) -> None:
    """Remove the start record of the run of ``report`` (its history row is written)."""
    from featurekiln.layout import started_path
    from featurekiln.warehouse_files import files_for

    path = started_path(settings, report.view, report.run_id)
    files_for(path, settings).remove(path)


def unfinished_runs(settings: Settings, view: str | None = None) -> list[dict[str, Any]]:
    """The runs with a start record (of ``view``, or all), as history rows: ``published`` and ``rows`` are what
    the feature table's commits say the run committed (no Spark)."""
    from featurekiln.layout import started_folder, table_path
    from featurekiln.offline.delta_log import DeltaLog
    from featurekiln.warehouse_files import files_for

    folder = started_folder(settings)
    files = files_for(folder, settings)
    runs: list[dict[str, Any]] = []
    for entry in sorted(files.listing(folder), key=lambda e: e.name):
        if not entry.name.endswith(".json") or (view is not None and not entry.name.startswith(f"{view}.")):
            continue
        try:
            body = json.loads(files.read(f"{folder}/{entry.name}"))
        except (FileNotFoundError, ValueError):  # finished (and removed) meanwhile, or half a file
            continue
        if view is not None and body.get("view") != view:
            continue
        log = DeltaLog.of(table_path(settings, body["view"]), settings)
        ours = [c for c in log.commits() if c.metadata.get("run_id") == body["run_id"]] if log.exists() else []
        runs.append({
            "view": body["view"], "run_id": body["run_id"], "trigger": body["trigger"],
            "start": date.fromisoformat(body["start"]), "end": date.fromisoformat(body["end"]),
            "status": "running", "rows": sum(c.rows for c in ours), "failed": [], "warnings": [],
            "published": [(str(c.metadata["start"]), str(c.metadata["end"])) for c in ours],
            "duration_s": None, "started_at": datetime.fromisoformat(body["started_at"]), "finished_at": None,
            "report": None, "quarantine": None, "error": None,
        })
    return runs


def require_validated(settings: Settings, view: str, ds: date) -> dict[str, Any]:
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
