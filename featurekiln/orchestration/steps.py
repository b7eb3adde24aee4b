"""What each task of a view's DAG does, as plain functions of their inputs.

The DAG factory wraps these in Airflow tasks; they take explicit arguments (the
view, the settings, the run's dates and params) so that they can be tested and
reasoned about without Airflow. ``plan`` makes the run's
:class:`~featurekiln.planning.plan.RunPlan` (it goes through XCom as JSON);
every other task runs one step of it through the one executor
(:func:`featurekiln.runner.execute`), as ``kiln run`` runs all of them. Spark
and the executor are imported only when a step runs, never when a DAG file is
parsed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from featurekiln.definitions.models import FeatureView
from featurekiln.errors import PlanError
from featurekiln.orchestration.run_dates import RunDays, requested_range, scheduled_range
from featurekiln.planning.intervals import ONE_DAY
from featurekiln.settings import Settings

if TYPE_CHECKING:
    from featurekiln.planning.plan import RunPlan

log = logging.getLogger(__name__)


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
) -> RunDays:
    """The snapshot days a run computes (half-open) and why: the params' range, else the scheduled days.

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


def plan_dag_run(
    view: FeatureView,
    params: dict[str, Any],
    settings: Settings,
    *,
    interval_start: datetime | None,
    interval_end: datetime | None,
    reference: datetime,
    now: datetime,
    run_type: object = None,
) -> RunPlan:
    """The ``plan`` task: the plan of this run, from the view's ledger.

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

    Every plan of an online view pushes: the latest validated snapshot goes
    online when the store holds an older one.

    Raises:
        PlanError: the params ask for an invalid range.
        StaleTableError: the nightly plan is refused (the message says how to rebuild).
    """
    from featurekiln.layout import tiles_path
    from featurekiln.offline.tile_store import held_tiles
    from featurekiln.planning.intervals import missing, widen_back
    from featurekiln.planning.plan import plan_from_ledger, plan_ranges
    from featurekiln.runner import plan_run

    chunk_days = chunk_days_param(params.get("chunk_days"), settings.chunk_days)
    days, reason = run_range(view, params, interval_start=interval_start, interval_end=interval_end,
                             reference=reference, now=now)
    requested = requested_range(params.get("start"), params.get("end"), view.start, now)
    if days[0] >= days[1]:
        plan = plan_ranges(view, [], chunk_days, reason=reason, push=view.online)
    elif requested is None and run_kind(run_type) == "backfill":  # no ledger needed: its days, recomputed
        plan = plan_ranges(view, [days], chunk_days, reason=f"a run of Airflow's backfill: {reason}",
                           held_tiles=held_tiles(settings, tiles_path(settings, view.name)), push=view.online)
    elif requested is None:
        last = days[1] - ONE_DAY
        ledger = plan_run(view, last, settings=settings)
        log.info("%s: plan until %s (as `kiln run %s --until %s`):\n%s", view.name, last, view.name, last,
                 json.dumps(ledger.to_json(), indent=2))
        plan = plan_from_ledger(view, ledger, chunk_days, reason=f"{reason}, as `kiln run --until {last}`")
    else:
        force, retile = _flag(params, "force"), _flag(params, "retile")
        ranges = [days] if force else missing(days, plan_run(view, days[1] - ONE_DAY, settings=settings).materialized)
        refresh = [widen_back(r, view.horizon_days - 1) for r in ranges] if retile else []
        plan = plan_ranges(view, ranges, chunk_days, reason=f"trigger form (force={force}, retile={retile})",
                           held_tiles=held_tiles(settings, tiles_path(settings, view.name)), refresh=refresh,
                           push=view.online)
    log.info("%s: %s in %d chunk(s) of up to %d days", view.name, plan, len(plan.chunks), chunk_days)
    return replace(plan, asked=days) if days[0] < days[1] else plan


def run_step(
    view: FeatureView, plan: dict[str, Any], settings: Settings, *, step: str, run_id: str, trigger: str
) -> dict[str, Any]:
    """Run the task ``step`` (``tiles``, ``publish`` or ``push``) of the plan ``plan`` (its JSON) through the
    executor: the executor's steps :meth:`~featurekiln.planning.plan.RunPlan.task_steps` gives.

    Returns:
        A JSON-able summary: the step, the days published and rows (``publish``), the day pushed (``push``).

    Raises:
        QualityError, SourceError, SparkFailure, OnlineStoreError: as :func:`featurekiln.runner.execute`;
            a quality failure is logged with every failed expectation.
    """
    from featurekiln.compute.session import get_spark
    from featurekiln.errors import QualityError
    from featurekiln.planning.plan import RunPlan
    from featurekiln.runner import execute

    run_plan = RunPlan.from_json(plan)
    todo = run_plan.task_steps(step)
    if not todo:
        log.info("%s: %s; nothing to do in %s%s", view.name, run_plan, step,
                 " (a plan of one chunk stores its tiles in publish)" if not run_plan.empty else "")
        return {"step": step}
    if todo == ("push",) and not _push_pending(view, run_plan, settings):  # no JVM when there is nothing to push
        return {"step": step}
    spark = get_spark(settings)
    try:
        result = execute(view, run_plan, settings=settings, spark=spark, run_id=run_id, trigger=trigger, steps=todo)
    except QualityError as error:
        log.error("%s: the quality gate failed; nothing is published:\n%s", view.name, "\n".join(error.problems))
        raise
    summary: dict[str, Any] = {"step": step}
    if result.report is not None:
        report = result.report
        for checked in report.chunks:
            for warning in checked.warnings:
                log.warning("%s: %s..%s: %s", view.name, checked.start, checked.end, warning.line())
        summary.update(start=report.start.isoformat(), end=report.end.isoformat(), rows=report.rows,
                       status=report.status, report=report.report)
    if result.pushed is not None:
        summary.update(ds=result.pushed.ds.isoformat(), pushed=str(result.pushed))
    return summary


def _push_pending(view: FeatureView, plan: RunPlan, settings: Settings) -> bool:
    """Whether the push step may have something to do (read from the table's log and the store; no Spark)."""
    from featurekiln.pipeline.serving import pending_push

    if not plan.push:
        log.info("%s: online is off; nothing to push", view.name)
        return False
    latest, online = pending_push(view, settings)
    if latest is None or (online is not None and online >= latest):
        log.info("%s: nothing to push (latest validated snapshot %s, online %s)", view.name, latest, online)
        return False
    return True


def run_kind(run_type: object) -> str:
    """Airflow's run type as its plain value (``scheduled``, ``manual``, ``backfill``, ...), also when it
    is given as the task SDK's ``DagRunType`` enum, whose ``str()`` is ``DagRunType.BACKFILL``."""
    return str(getattr(run_type, "value", run_type) or "").lower()


def trigger_of(run_type: object) -> str:
    """The trigger a run is recorded with: ``nightly`` for scheduled runs, else ``backfill``."""
    return "nightly" if run_kind(run_type) == "scheduled" else "backfill"


def verify_pushed(view: FeatureView, settings: Settings) -> dict[str, Any]:
    """Check that the online store serves the latest snapshot (``settings.verify_online``), after ``push_online``.

    Returns:
        The check's counts.

    Raises:
        OnlineMismatchError: values differ, keys are missing online or extra keys are online.
    """
    from featurekiln.compute.session import get_spark
    from featurekiln.online.consistency import OnlineMismatchError, check_online

    report = check_online(get_spark(settings), view, settings, settings.verify_sample or None)
    if not report.ok:
        log.error("%s", "\n".join([report.summary(), *report.examples]))
        raise OnlineMismatchError(report)
    log.info("%s", report.summary())
    return {"ds": report.ds.isoformat(), "compared": report.compared, "scanned": report.scanned}


def spark_submit_args(view: str, step: str) -> list[str]:
    """The arguments of ``jobs/materialize.py`` for one step of the run's plan (cluster mode).

    The plan, the run id and the trigger are Jinja templates that Airflow renders
    from the ``plan`` task's XCom and the run. The definitions directory and the
    warehouse reach the job through ``KILN_DEFS``/``KILN_WAREHOUSE`` in its
    environment, as for the CLI.
    """
    return [view, "--plan", "{{ ti.xcom_pull(task_ids='plan') | tojson }}", "--step", step,
            "--run-id", "{{ run_id }}", "--trigger", "{{ 'nightly' if dag_run.run_type == 'scheduled' else 'backfill' }}"]
