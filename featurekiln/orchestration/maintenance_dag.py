"""The ``kiln_maintenance`` DAG: ``kiln maintain`` on a schedule, beside the views' DAGs.

One task per view (feature table, tile table, leftovers; see
:mod:`featurekiln.offline.maintenance`) and one for the run history after
them, so a view whose maintenance fails shows alone and the others still run.
The schedule is ``KILN_MAINTENANCE_SCHEDULE`` (default ``@weekly``, UTC;
``none`` for manual runs only). Parsing imports no Spark: the tasks import it
when they run, in-process on ``KILN_SPARK_MASTER``.

Maintenance may run while the views' runs do (their commits retry against its
compactions, and VACUUM keeps what a run shorter than the retention reads), so
nothing orders it against them.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, UTC
from typing import TYPE_CHECKING, Any

from featurekiln.orchestration.timetables import timetable_for
from featurekiln.settings import Settings

if TYPE_CHECKING:
    from airflow.sdk import DAG

log = logging.getLogger(__name__)

MAINTENANCE_DAG_ID = "kiln_maintenance"
START = datetime(2025, 1, 1, tzinfo=UTC)
_DOC = """### featurekiln table maintenance

Per view: compact small files, VACUUM files replaced longer ago than the retention
(`KILN_RETAIN_DAYS`, else `retain_days` in `kiln.yaml`, else 30 days), delete the staging,
quarantine and rebuild data and the reports of finished runs older than it, and checkpoint;
then the same for the run history `_kiln/runs`. `kiln maintain --dry-run` shows what it would do.
"""


def _task_id(view: str) -> str:
    return f"maintain_{view}"


def run_maintenance(settings: Settings, views: list[str] | None) -> list[dict[str, Any]]:
    """Maintain ``views`` (by name; None: the run history only) and log one line per table; the results as dicts."""
    from featurekiln.compute.session import get_spark
    from featurekiln.definitions.loader import load_catalog
    from featurekiln.layout import history_path
    from featurekiln.offline.maintenance import maintain_table, maintain_view
    from featurekiln.offline.retention import retain_days

    days = retain_days(settings)
    spark = get_spark(settings)
    if views is None:
        done = [maintain_table(spark, history_path(settings), "-", "runs", days)]
    else:
        catalog = load_catalog(settings.defs_dir)
        done = [item for name in views for item in maintain_view(spark, settings, catalog[name], days)]
    results = [item.to_dict() for item in done if item is not None]
    for item in results:
        log.info("%s %s: %d files (%d bytes), compacted %d, reclaimed %d files (%d bytes), checkpoint %s%s",
                 item["view"], item["table"], item["files"], item["bytes"], item["compacted"], item["reclaimed_files"],
                 item["reclaimed_bytes"], item["checkpoint"], f"; {'; '.join(item['notes'])}" if item["notes"] else "")
    return results


def build_maintenance_dag(views: list[str], settings: Settings) -> DAG:
    """The DAG ``kiln_maintenance``: a task per view of ``views``, then the run history's.

    Raises:
        ScheduleError: ``settings.maintenance_schedule`` is not a schedule Airflow understands.
    """
    from airflow.sdk import DAG, task

    with DAG(
        dag_id=MAINTENANCE_DAG_ID,
        description="featurekiln: compact, vacuum past the retention, clean finished runs, checkpoint",
        schedule=timetable_for(settings.maintenance_schedule),
        start_date=START,
        catchup=False,
        max_active_runs=1,
        tags=["featurekiln", "maintenance"],
        default_args={"owner": "featurekiln", "retries": settings.retries, "retry_delay": timedelta(minutes=1)},
        doc_md=_DOC,
    ) as dag:
        per_view = []
        for name in sorted(views):

            @task(task_id=_task_id(name))
            def maintain_one(view: str = name) -> list[dict[str, Any]]:
                """Maintain this view's feature table, tile table and leftovers."""
                return run_maintenance(settings, [view])

            per_view.append(maintain_one())

        @task(task_id="maintain_run_history", trigger_rule="all_done")
        def maintain_history() -> list[dict[str, Any]]:
            """Maintain the run history ``_kiln/runs``."""
            return run_maintenance(settings, None)

        history = maintain_history()
        for upstream in per_view:
            upstream >> history
    return dag


def maintenance_dags(views: list[str], settings: Settings, only: str | None, taken: set[str]) -> dict[str, DAG]:
    """``{"kiln_maintenance": DAG}`` for the DAG factory, reserving its id in ``taken``; empty when there is no
    valid view, only another DAG is wanted, or a view's DAG already has the id (a view named ``maintenance``: logged)."""
    from featurekiln.orchestration.timetables import ScheduleError

    if not views:
        return {}
    if MAINTENANCE_DAG_ID in taken:
        log.warning("featurekiln: a view's DAG is named %s; no maintenance DAG (rename the view)", MAINTENANCE_DAG_ID)
        return {}
    taken.add(MAINTENANCE_DAG_ID)
    if only and only != MAINTENANCE_DAG_ID:
        return {}
    try:
        return {MAINTENANCE_DAG_ID: build_maintenance_dag(views, settings)}
    except ScheduleError as error:
        log.warning("featurekiln: KILN_MAINTENANCE_SCHEDULE: %s; %s runs only when triggered", error, MAINTENANCE_DAG_ID)
        manual = build_maintenance_dag(views, _manual(settings))
        manual.description = f"BROKEN KILN_MAINTENANCE_SCHEDULE: {error}"[:200]
        return {MAINTENANCE_DAG_ID: manual}


def _manual(settings: Settings) -> Settings:
    from dataclasses import replace

    return replace(settings, maintenance_schedule="none")
