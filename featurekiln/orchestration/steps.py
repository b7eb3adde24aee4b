"""What each task of a view's DAG does, as plain functions of their inputs.

The DAG factory wraps these in Airflow tasks; they take explicit arguments (the
view, the settings, the run's dates and params) so that they can be tested and
reasoned about without Airflow. Spark and the runner are imported only when a
chunk is materialized, never when a DAG file is parsed.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from featurekiln.errors import PlanError
from featurekiln.orchestration.run_dates import DayRange, requested_range, scheduled_range
from featurekiln.planning.intervals import ONE_DAY
from featurekiln.planning.plan import plan_backfill
from featurekiln.settings import Settings
from featurekiln.spec.models import FeatureView

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
    return scheduled_range(
        interval_start, interval_end, reference, lookback=view.lookback_days, view_start=view.start
    )


def plan_chunks(view: FeatureView, days: DayRange, chunk_days: int) -> list[ChunkSpec]:
    """Split ``days`` into the chunks the mapped ``materialize`` task runs, one per task.

    Each chunk is a JSON-able dict: ``view``, ``start`` and ``end`` (ISO days, both
    included), ``chunk_days`` and ``label`` (shown as the mapped task's name).
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
            }
        )
    return out


def chunk_dates(chunk: ChunkSpec) -> tuple[date, date]:
    """The first and last snapshot day of a chunk (both included)."""
    return date.fromisoformat(chunk["start"]), date.fromisoformat(chunk["end"])


def materialize_chunk(
    view: FeatureView, chunk: ChunkSpec, settings: Settings, *, run_id: str | None = None
) -> dict[str, Any]:
    """Compute the snapshots of ``chunk`` in this process, through the same runner as the CLI.

    Args:
        view: the view.
        chunk: one chunk from :func:`plan_chunks`.
        settings: where the definitions and the warehouse are, and the Spark master.
        run_id: recorded in the Delta commit (the Airflow run and map index).

    Returns:
        A JSON-able summary: the view, the days, the rows written and the table.
    """
    from featurekiln.compute.session import get_spark
    from featurekiln.runner import backfill

    first, last = chunk_dates(chunk)
    spark = get_spark(settings.spark_master)
    log.info("%s: materializing %s..%s on %s", view.name, first, last, settings.spark_master)
    result = backfill(
        view, first, last, settings=settings, spark=spark, chunk_days=chunk["chunk_days"], run_id=run_id, trigger="airflow"
    )
    log.info("%s: %s..%s: %d rows in %d commit(s) to %s", view.name, first, last, result.rows, len(result.chunks), result.table)
    return {"view": view.name, "start": chunk["start"], "end": chunk["end"], "rows": result.rows, "table": result.table}


def spark_submit_args(chunk: ChunkSpec) -> list[str]:
    """The arguments of ``jobs/materialize.py`` for one chunk (those of ``kiln backfill``).

    The definitions directory and the warehouse reach the job through
    ``KILN_DEFS``/``KILN_WAREHOUSE`` in its environment, as for the CLI.
    """
    return [chunk["view"], "--start", chunk["start"], "--end", chunk["end"], "--chunk-days", str(chunk["chunk_days"])]


def published_range(chunks: list[ChunkSpec]) -> dict[str, str] | None:
    """The first and last day that a run published, or None when it computed nothing."""
    if not chunks:
        return None
    return {"start": min(c["start"] for c in chunks), "end": max(c["end"] for c in chunks)}
