"""What each task of a view's DAG does, as plain functions of their inputs.

The DAG factory wraps these in Airflow tasks; they take explicit arguments (the
view, the settings, the run's dates and params) so that they can be tested and
reasoned about without Airflow. Spark and the runner are imported only when a
chunk is materialized, never when a DAG file is parsed.
"""

from __future__ import annotations

import json
import logging
from datetime import date, datetime
from typing import Any

from featurekiln.errors import PlanError
from featurekiln.orchestration.run_dates import DayRange, requested_range, scheduled_range
from featurekiln.planning.intervals import ONE_DAY, missing
from featurekiln.planning.plan import Chunk, plan_backfill
from featurekiln.settings import Settings
from featurekiln.definitions.models import FeatureView

log = logging.getLogger(__name__)

ChunkSpec = dict[str, Any]


def chunk_days_param(value: object, default: int) -> int:
    """The ``chunk_days`` param as a positive int (``default`` when empty).

    Raises:
        PlanError: the value is not a positive whole number.
    """
    if value is None or value == "":
        return default
    try:
        days = int(str(value))
    except ValueError:
        raise PlanError(f"param chunk_days: {value!r} is not a whole number of days") from None
    if days < 1:
        raise PlanError(f"param chunk_days: must be at least 1, got {days}")
    return days


def run_range(
    view: FeatureView,
    params: dict[str, Any],
    *,
    interval_start: datetime | None,
    interval_end: datetime | None,
    reference: datetime,
    now: datetime,
) -> DayRange:
    """The snapshot days a run computes: the params' range, else the scheduled days.

    See :mod:`featurekiln.orchestration.run_dates` for the rules.

    Raises:
        PlanError: the params ask for an invalid range (the message names the param).
    """
    requested = requested_range(params.get("start"), params.get("end"), view.start, now)
    if requested is not None:
        return requested
    return scheduled_range(interval_start, interval_end, reference, view_start=view.start)


def _flag(params: dict[str, Any], name: str) -> bool:
    return str(params.get(name) or "").lower() in ("true", "1", "yes")


def plan_run_chunks(
    view: FeatureView,
    params: dict[str, Any],
    settings: Settings,
    *,
    interval_start: datetime | None,
    interval_end: datetime | None,
    reference: datetime,
    now: datetime,
    run_id: str,
    run_type: object = None,
) -> list[ChunkSpec]:
    """The ``plan`` task: what this run computes, from the view's ledger, split into chunks.

    * A run of Airflow's native backfill (``run_type`` ``backfill``): its own
      days, recomputed (Airflow's reprocess behaviour chose the runs); tiles
      that are stored are read, not re-read.
    * Without ``start``/``end`` params (the nightly run, a plain manual run):
      what ``kiln run VIEW --until <its last day>`` would compute (the plan is
      logged): its days, the ``lookback`` days before them, and every day a
      missed night left out. A table that holds days of another definition is
      refused (or rebuilt with ``on_change: rebuild``), as by ``kiln run``.
    * With them (the trigger form): the days of the range that are not
      materialized with the current definition, or all of them with ``force``;
      ``retile`` re-reads their events from the source.

    Every chunk carries ``refresh``: the tile days the ``tiles`` task re-reads
    from the source although they are stored.

    Raises:
        PlanError: the params ask for an invalid range.
        StaleTableError: the nightly plan is refused (the message says how to rebuild).
    """
    from featurekiln.errors import StaleTableError
    from featurekiln.planning.intervals import from_inclusive, widen_back
    from featurekiln.planning.materialization import inclusive
    from featurekiln.runner import plan_run

    chunk_days = chunk_days_param(params.get("chunk_days"), settings.chunk_days)
    days = run_range(view, params, interval_start=interval_start, interval_end=interval_end, reference=reference, now=now)
    if days.empty:
        log.info("%s: %s", view.name, days)
        return []
    requested = requested_range(params.get("start"), params.get("end"), view.start, now)
    if requested is None and run_kind(run_type) == "backfill":  # no ledger needed: its days, recomputed
        ranges, refresh = [from_inclusive(days.first, days.last)], []
        log.info("%s: a run of Airflow's backfill: %s (%s)", view.name, days, days.reason)
    elif requested is None:
        plan = plan_run(view, days.last, settings=settings)
        log.info("%s: plan until %s (as `kiln run %s --until %s`):\n%s", view.name, days.last, view.name, days.last,
                 json.dumps(plan.to_json(), indent=2))
        if plan.refused:
            raise StaleTableError(plan.refused)
        ranges, refresh = list(plan.will_compute), list(plan.refresh)
    else:
        wanted = from_inclusive(days.first, days.last)
        force = _flag(params, "force")
        ranges = [wanted] if force else missing(wanted, plan_run(view, days.last, settings=settings).materialized)
        refresh = [widen_back(r, view.horizon_days - 1) for r in ranges] if _flag(params, "retile") else []
        log.info("%s: trigger form %s: %s (force=%s, retile=%s)", view.name, days,
                 ", ".join(f"{a}..{b}" for a, b in inclusive(ranges)) or "every day is materialized already",
                 force, _flag(params, "retile"))
    chunks = []
    for start, end in ranges:
        chunks += plan_chunks(view, DayRange(start, end - ONE_DAY, days.reason), chunk_days, run_id)
    for chunk in chunks:
        chunk["refresh"] = inclusive(refresh)
    return chunks


def store_tiles(view: FeatureView, chunks: list[ChunkSpec], settings: Settings, *, run_id: str, trigger: str) -> dict[str, Any]:
    """The ``tiles`` task: store the tiles every chunk reads, once, before the chunks run in parallel.

    Tile days not stored (or without a partial group of the definition) and the
    plan's ``refresh`` days are computed from the source; the mapped
    ``materialize`` tasks then read stored tiles only.

    Returns:
        The event days read from the source (inclusive ISO ranges).
    """
    from featurekiln.planning.intervals import from_inclusive, widen_back
    from featurekiln.planning.materialization import inclusive
    from featurekiln.pipeline.tiling import tile_work

    needed = [widen_back(chunk_of(c).interval, view.horizon_days - 1) for c in chunks]
    refreshed = chunks[0].get("refresh", []) if chunks else []
    refresh = [from_inclusive(date.fromisoformat(a), date.fromisoformat(b)) for a, b in refreshed]
    work = tile_work(view, settings, needed, refresh)
    if not work.empty:  # a JVM only when there is something to tile
        from pyspark.errors import PySparkException

        from featurekiln.compute.session import get_spark
        from featurekiln.pipeline.record import spark_failure
        from featurekiln.pipeline.tiling import ensure_tiles

        try:
            ensure_tiles(get_spark(settings), view, settings, work, run_id=run_id, trigger=trigger)
        except PySparkException as error:
            raise spark_failure(view.name, error) from error
    read = inclusive(work.reads_events)
    log.info("%s: tiles stored; event days read from the source: %s", view.name,
             ", ".join(f"{a}..{b}" for a, b in read) or "none")
    return {"reads_events": read}


def plan_chunks(view: FeatureView, days: DayRange, chunk_days: int, run_id: str = "") -> list[ChunkSpec]:
    """Split ``days`` into the chunks the mapped ``materialize`` task runs, one per task.

    Each chunk is a JSON-able dict: ``view``, ``start`` and ``end`` (ISO days, both
    included), ``chunk_days``, ``label`` (shown as the mapped task's name) and
    ``run_id`` (the Airflow run, which names the staging tables; mapped
    arguments are not templated, so the cluster job gets it from here).
    An empty range gives no chunks.

    Raises:
        PlanError: the planner rejects the range.
    """
    if days.empty:
        log.info("%s: %s", view.name, days)
        return []
    plan = plan_backfill(view, days.first, days.last, chunk_days)
    log.info("%s: snapshots %s in %d chunk(s) of up to %d days", view.name, days, len(plan.chunks), chunk_days)
    out = []
    for chunk in plan.chunks:
        out.append(
            {
                "view": view.name,
                "start": chunk.start.isoformat(),
                "end": (chunk.end - ONE_DAY).isoformat(),
                "chunk_days": chunk_days,
                "label": str(chunk),
                "run_id": run_id,
            }
        )
    return out


def chunk_dates(chunk: ChunkSpec) -> tuple[date, date]:
    """The first and last snapshot day of a chunk (both included)."""
    return date.fromisoformat(chunk["start"]), date.fromisoformat(chunk["end"])


def run_kind(run_type: object) -> str:
    """Airflow's run type as its plain value (``scheduled``, ``manual``, ``backfill``, ...), also when it
    is given as the task SDK's ``DagRunType`` enum, whose ``str()`` is ``DagRunType.BACKFILL``."""
    return str(getattr(run_type, "value", run_type) or "").lower()


def trigger_of(run_type: object) -> str:
    """The trigger a run is recorded with: ``nightly`` for scheduled runs, else ``backfill``."""
    return "nightly" if run_kind(run_type) == "scheduled" else "backfill"


def chunk_of(chunk: ChunkSpec) -> Chunk:
    """The planning chunk of a chunk spec."""
    first, last = chunk_dates(chunk)
    return Chunk(first, last + ONE_DAY)


def materialize_chunk(view: FeatureView, chunk: ChunkSpec, settings: Settings, *, run_id: str) -> dict[str, Any]:
    """Compute the snapshots of ``chunk`` into the run's staging table, through the same runner as the CLI.

    Nothing is published here: ``validate`` audits the staged chunks and ``publish``
    commits them.

    Args:
        view: the view.
        chunk: one chunk from :func:`plan_chunks`.
        settings: where the definitions and the warehouse are, and the Spark master.
        run_id: the Airflow run id (names the staging tables).

    Returns:
        A JSON-able summary: the view, the days and the rows staged.
    """
    from featurekiln.compute.session import get_spark
    from featurekiln.runner import stage

    spark = get_spark(settings)
    log.info("%s: materializing %s..%s on %s", view.name, chunk["start"], chunk["end"], settings.spark_master)
    rows = stage(view, chunk_of(chunk), settings=settings, spark=spark, run_id=run_id)
    return {"view": view.name, "start": chunk["start"], "end": chunk["end"], "rows": rows}


def validate_chunks(
    view: FeatureView, chunks: list[ChunkSpec], settings: Settings, *, run_id: str, trigger: str, started_at: datetime
) -> dict[str, Any]:
    """Audit the staged chunks of a run; log one summary table per chunk.

    Returns:
        ``chunks`` and their ``validations`` (JSON-able), for ``publish``.

    Raises:
        QualityError: a chunk failed a blocking expectation (logged with the report path).
    """
    from featurekiln.compute.session import get_spark
    from featurekiln.errors import QualityError
    from featurekiln.runner import audit

    if not chunks:
        return {"chunks": [], "validations": []}
    spark = get_spark(settings)
    try:
        validations = audit(
            view, [chunk_of(c) for c in chunks], settings=settings, spark=spark, run_id=run_id, trigger=trigger,
            started_at=started_at,
        )
    except QualityError as error:
        log.error("%s: the quality gate failed; nothing is published:\n%s", view.name, "\n".join(error.problems))
        raise
    for checked in validations:
        for warning in checked.warnings:
            log.warning("%s: %s..%s: %s", view.name, checked.start, checked.end, warning.line())
    return {"chunks": chunks, "validations": [v.to_dict() for v in validations]}


def publish_chunks(
    view: FeatureView, audited: dict[str, Any], settings: Settings, *, run_id: str, trigger: str, started_at: datetime
) -> dict[str, Any] | None:
    """Commit the audited chunks to the feature table and record the run.

    Returns:
        The first and last day published, the rows and the report path; None when
        the run computed nothing.
    """
    from featurekiln.compute.session import get_spark
    from featurekiln.quality.results import ChunkValidation
    from featurekiln.runner import publish

    chunks = audited["chunks"]
    if not chunks:
        return None
    report = publish(
        view,
        [chunk_of(c) for c in chunks],
        [ChunkValidation.from_dict(v) for v in audited["validations"]],
        settings=settings,
        spark=get_spark(settings),
        run_id=run_id,
        trigger=trigger,
        started_at=started_at,
    )
    log.info("%s: run %s %s: %d rows published; report: %s", view.name, run_id, report.status, report.rows, report.report)
    return {**published_range(chunks), "rows": report.rows, "report": report.report, "status": report.status}


def push_snapshot(view: FeatureView, published: dict[str, Any] | None, settings: Settings) -> dict[str, Any] | None:
    """Push the last snapshot a run published to the online store (views with ``online: true``).

    Raises:
        UnvalidatedError: the snapshot was not published by a validated run.
    """
    if not view.online:
        log.info("%s: online is off; nothing to push", view.name)
        return None
    if not published:
        log.info("%s: the run published nothing; nothing to push", view.name)
        return None
    if not published.get("rows"):
        # An empty snapshot would delete every key online; far more often it means the
        # source had no data yet. Keep the online values and say so.
        log.warning("%s: snapshots %s..%s have no rows; nothing pushed, the online store keeps its values",
                    view.name, published["start"], published["end"])
        return None
    from featurekiln.compute.session import get_spark
    from featurekiln.online.push import push_view
    from featurekiln.quality.history import require_validated

    spark = get_spark(settings)
    ds = date.fromisoformat(published["end"])
    require_validated(spark, settings, view.name, ds)
    result = push_view(spark, view, settings, ds)
    log.info("%s: pushed snapshot %s online: %s", view.name, ds, result)
    return {"ds": ds.isoformat(), "result": str(result)}


def verify_pushed(view: FeatureView, pushed: dict[str, Any] | None, settings: Settings) -> dict[str, Any] | None:
    """Check that the online store serves the latest snapshot after a push (``settings.verify_online``).

    Returns:
        The check's counts, or None when nothing was pushed.

    Raises:
        OnlineMismatchError: values differ, keys are missing online or extra keys are online.
    """
    if not pushed:
        log.info("%s: nothing was pushed; nothing to verify", view.name)
        return None
    from featurekiln.compute.session import get_spark
    from featurekiln.online.consistency import OnlineMismatchError, check_online

    report = check_online(get_spark(settings), view, settings, settings.verify_sample or None)
    if not report.ok:
        log.error("%s", "\n".join([report.summary(), *report.examples]))
        raise OnlineMismatchError(report)
    log.info("%s", report.summary())
    return {"ds": report.ds.isoformat(), "compared": report.compared, "scanned": report.scanned}


def spark_submit_args(chunk: ChunkSpec) -> list[str]:
    """The arguments of ``jobs/materialize.py`` for one chunk: stage it for the chunk's run.

    The definitions directory and the warehouse reach the job through
    ``KILN_DEFS``/``KILN_WAREHOUSE`` in its environment, as for the CLI.
    """
    return [chunk["view"], "--start", chunk["start"], "--end", chunk["end"], "--stage", "--run-id", chunk["run_id"]]


def published_range(chunks: list[ChunkSpec]) -> dict[str, str] | None:
    """The first and last day that a run published, or None when it computed nothing."""
    if not chunks:
        return None
    return {"start": min(c["start"] for c in chunks), "end": max(c["end"] for c in chunks)}
