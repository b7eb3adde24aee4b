"""The DAG factory: one Airflow DAG per feature definition.

``build_dags(globals())`` in the one file under ``dags/`` is all a deployment
needs. Parsing reads the YAML files and builds DAG objects; it imports no Spark
and does no other I/O. A definition that does not load becomes a DAG of the
same name whose single task fails with the problems (file, line, field) and
whose doc lists them, so one broken file hides nothing else.

Task layout of a view's DAG::

    plan -> tiles -> publish -> push_online [-> verify_online]

``plan`` makes the run's plan from the view's ledger (a nightly run computes
what ``kiln run --until <its day>`` would, and logs that plan) and hands it on
as JSON. Every other task runs one step of that plan through the one executor
(:func:`featurekiln.runner.execute`), as ``kiln run`` runs all of them:
``tiles`` stores the daily tiles the plan reads (reading from the source only
the tile days not stored yet and the late-data days); ``publish`` assembles the
snapshots, validates them and commits them, one atomic commit per range, only
when every chunk passes (a failure fails the task, so nothing is published) and
updates the table's Asset; ``push_online`` pushes the latest validated snapshot
when the online store holds an older one (so it also finishes the push of an
earlier run that died or failed); ``verify_online`` (with
``KILN_VERIFY_ONLINE=true``, online views only) fails the run when the store does
not serve the latest snapshot. In cluster mode (``KILN_SPARK_CONN_ID``)
``tiles`` and ``publish`` are ``spark-submit jobs/materialize.py --plan ...
--step ...`` with the same plan.
"""

from __future__ import annotations

import logging
import re
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featurekiln.errors import Problem, SpecError
from featurekiln.orchestration import steps
from featurekiln.orchestration.assets import feature_asset
from featurekiln.orchestration.docs import broken_doc, view_doc
from featurekiln.orchestration.timetables import ScheduleError, timetable_for
from featurekiln.settings import Settings
from featurekiln.definitions.loader import load_definitions
from featurekiln.definitions.models import FeatureView

if TYPE_CHECKING:
    from airflow.sdk import DAG

log = logging.getLogger(__name__)

DAG_PREFIX = "kiln_"
_NAME_LINE = re.compile(r"^name:\s*['\"]?([a-z][a-z0-9_]{0,62})['\"]?\s*(#.*)?$", re.MULTILINE)
_NOT_ID = re.compile(r"[^a-z0-9_]+")
BROKEN_START = datetime(2025, 1, 1, tzinfo=timezone.utc)


def dag_id_of(view_name: str) -> str:
    """The DAG id of a view: ``kiln_<name>``."""
    return f"{DAG_PREFIX}{view_name}"


@dataclass
class BuildResult:
    """The DAGs built, by id, and the problems of the definitions that did not load."""

    dags: dict[str, DAG] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    broken: dict[str, str] = field(default_factory=dict)


def build_dags(
    target: MutableMapping[str, Any] | None = None,
    *,
    settings: Settings | None = None,
    only: str | None = None,
) -> BuildResult:
    """Build one DAG per definition in ``settings.defs_dir`` (default: from ``KILN_*``).

    Args:
        target: where to register the DAGs, usually the DAG file's ``globals()``.
        settings: the settings; ``Settings.from_env()`` when None.
        only: build only this DAG id. Defaults to the DAG Airflow is running a task
            of (its parsing context), so that a task does not build every DAG.

    Returns:
        The DAGs by id, every problem, and the DAG id chosen for each broken file.

    Raises:
        SpecError: ``settings.strict`` is set and a definition has a problem.
    """
    settings = settings or Settings.from_env()
    if only is None:
        only = _parsing_dag_id()
    loaded = load_definitions(settings.defs_dir)
    if loaded.problems and settings.strict:
        raise SpecError(loaded.problems)
    result = BuildResult(problems=list(loaded.problems))
    problems_by_file = {file: list(items) for file, items in loaded.problems_by_file.items()}
    taken: set[str] = set()
    for name, view in loaded.views.items():
        dag_id = dag_id_of(name)
        file = loaded.files[name]
        try:
            dag = build_view_dag(view, file, settings) if not only or only == dag_id else None
        except ScheduleError as error:
            problem = Problem(file, _line_of(file, "schedule"), "schedule", str(error))
            problems_by_file.setdefault(file, []).append(problem)
            result.problems.append(problem)
            continue
        taken.add(dag_id)
        if dag is not None:
            result.dags[dag_id] = dag
    from featurekiln.orchestration.maintenance_dag import maintenance_dags

    result.dags.update(maintenance_dags(list(loaded.views), settings, only, taken))
    for file, problems in problems_by_file.items():
        dag_id = _broken_dag_id(file, taken)
        taken.add(dag_id)
        result.broken[file] = dag_id
        log.warning("featurekiln: %s does not load; DAG %s reports: %s", file, dag_id, "; ".join(map(str, problems)))
        if only and only != dag_id:
            continue
        result.dags[dag_id] = build_broken_dag(dag_id, file, problems)
    if target is not None:
        target.update(result.dags)
    return result


def _parsing_dag_id() -> str | None:
    from airflow.sdk import get_parsing_context

    dag_id = get_parsing_context().dag_id
    return dag_id if dag_id and dag_id.startswith(DAG_PREFIX) else None


def _line_of(file: str, key: str) -> int | None:
    """The line of a top-level ``key:`` in ``file`` (None when it cannot be found)."""
    try:
        lines = Path(file).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    return next((i for i, line in enumerate(lines, 1) if line.startswith(f"{key}:")), None)


def _broken_dag_id(file: str, taken: set[str]) -> str:
    """``kiln_<name>`` from the file's ``name:`` line, else from the file name; never a taken id."""
    path = Path(file)
    name = None
    if path.is_file():
        try:
            match = _NAME_LINE.search(path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            match = None
        name = match.group(1) if match else None
        candidates = [n for n in (name, _NOT_ID.sub("_", path.stem.lower()).strip("_")) if n]
    else:
        candidates = ["definitions"]
    for candidate in candidates:
        if dag_id_of(candidate) not in taken:
            return dag_id_of(candidate)
    base = dag_id_of(f"{candidates[-1]}_broken")
    dag_id, n = base, 2
    while dag_id in taken:
        dag_id, n = f"{base}{n}", n + 1
    return dag_id


def _start_of(view: FeatureView) -> datetime:
    return datetime(view.start.year, view.start.month, view.start.day, tzinfo=timezone.utc)


# Param schemas name draft-07 explicitly: Airflow checks every schema when it builds
# a DAG, and checking against draft-07 costs a third of the default 2020-12 check.
_DRAFT7 = "http://json-schema.org/draft-07/schema#"


def _schema(title: str, **rules: Any) -> dict[str, Any]:
    return {"$schema": _DRAFT7, "title": title, **rules}


def _params(view: FeatureView, settings: Settings) -> dict[str, Any]:
    from airflow.sdk import Param

    return {
        "start": Param(
            None,
            description=(
                f"First snapshot day (ds) to compute, not before {view.start}. "
                "Leave empty for the scheduled days of this run."
            ),
            schema=_schema("Backfill: first day", type=["null", "string"], format="date"),
        ),
        "end": Param(
            None,
            description="Last snapshot day to compute, included; at most yesterday (UTC). Empty means start.",
            schema=_schema("Backfill: last day (included)", type=["null", "string"], format="date"),
        ),
        "chunk_days": Param(
            settings.chunk_days,
            description="Days validated together (one section of the quality report); publish commits every "
            "contiguous range at once.",
            schema=_schema("Days per chunk", type="integer", minimum=1),
        ),
        "force": Param(
            False,
            description="Recompute days of the range that are already materialized with the current definition "
            "(by default they are skipped).",
            schema=_schema("Backfill: recompute materialized days", type="boolean"),
        ),
        "retile": Param(
            False,
            description="Re-read the events of the range from the source even where daily tiles are stored "
            "(after a fix to raw data); use with force to recompute materialized days.",
            schema=_schema("Backfill: re-read the source", type="boolean"),
        ),
    }


def _run_facts() -> dict[str, Any]:
    """The run id and the trigger the run is recorded with."""
    from airflow.sdk import get_current_context

    context = get_current_context()
    return {"run_id": context["run_id"], "trigger": steps.trigger_of(getattr(context["dag_run"], "run_type", None))}


def build_view_dag(view: FeatureView, file: str, settings: Settings) -> DAG:
    """The DAG ``kiln_<name>`` of one valid view (see the module docstring for its tasks).

    Raises:
        ScheduleError: the view's schedule is not a schedule Airflow understands.
    """
    from airflow.sdk import DAG, get_current_context, task

    asset = feature_asset(view.name, settings)
    lookback = view.lookback_days
    with DAG(
        dag_id=dag_id_of(view.name),
        description=(view.description or f"Feature view {view.name}")[:200],
        schedule=timetable_for(view.schedule),
        start_date=_start_of(view),
        catchup=settings.catchup,
        max_active_runs=settings.max_active_runs,
        tags=sorted({"featurekiln", *view.tags}),
        default_args={"owner": view.owner, "retries": settings.retries, "retry_delay": timedelta(minutes=1)},
        doc_md=view_doc(view, file, asset.uri, lookback),
        params=_params(view, settings),
    ) as dag:

        @task(task_id="plan", retries=0)
        def plan() -> dict[str, Any]:
            """Decide what this run computes from the view's ledger: the run's plan, as JSON."""
            context = get_current_context()
            dag_run = context["dag_run"]
            return steps.plan_dag_run(
                view,
                dict(context["params"]),
                settings,
                interval_start=context.get("data_interval_start"),
                interval_end=context.get("data_interval_end"),
                reference=context.get("logical_date") or dag_run.run_after,
                now=datetime.now(timezone.utc),
                run_type=getattr(dag_run, "run_type", None),
            ).to_json()

        planned = plan()
        if settings.spark_conn_id:
            from featurekiln.orchestration.spark_submit import step_operator

            stored = step_operator(view.name, "tiles", settings)
            published = step_operator(view.name, "publish", settings, outlets=[asset])
            planned >> stored
        else:

            @task(task_id="tiles")
            def tiles(run_plan: dict[str, Any]) -> dict[str, Any]:
                """Store the daily tiles the plan reads; only tile days not stored yet and late-data days read
                the source."""
                return steps.run_step(view, run_plan, settings, step="tiles", **_run_facts())

            @task(task_id="publish", outlets=[asset])
            def publish(run_plan: dict[str, Any]) -> dict[str, Any]:
                """Assemble the snapshots, validate them and commit them in one atomic commit per range (the
                quality gate fails the task and publishes nothing); an event on the table's Asset."""
                from airflow.sdk.exceptions import AirflowFailException

                from featurekiln.errors import QualityError

                try:
                    done = steps.run_step(view, run_plan, settings, step="publish", **_run_facts())
                except QualityError as error:  # the same rows fail again: no retry
                    raise AirflowFailException(str(error)) from error
                if done.get("start"):
                    extra = {"view": view.name, "start": done["start"], "end": done["end"]}
                    get_current_context()["outlet_events"][asset].extra = extra
                return done

            stored = tiles(planned)
            published = publish(planned)
        stored >> published

        @task(task_id="push_online")
        def push_online(run_plan: dict[str, Any]) -> dict[str, Any]:
            """Push the latest validated snapshot online when the store holds an older one (online views)."""
            return steps.run_step(view, run_plan, settings, step="push", **_run_facts())

        pushed = push_online(planned)
        published >> pushed
        if settings.verify_online and view.online:

            @task(task_id="verify_online", retries=0)
            def verify_online() -> dict[str, Any]:
                """Fail the run when the online store does not serve the latest snapshot."""
                return steps.verify_pushed(view, settings)

            pushed >> verify_online()
    return dag


def build_broken_dag(dag_id: str, file: str, problems: list[Problem]) -> DAG:
    """A DAG whose one task fails with the problems of ``file``; its doc lists them."""
    from airflow.sdk import DAG, task

    first = str(problems[0]) if problems else f"{file} does not load"
    with DAG(
        dag_id=dag_id,
        description=f"BROKEN definition: {first}"[:200],
        schedule="@daily",
        start_date=BROKEN_START,
        catchup=False,
        tags=["featurekiln", "broken"],
        default_args={"owner": "featurekiln", "retries": 0},
        doc_md=broken_doc(file, problems),
    ) as dag:

        @task(task_id="definition_error")
        def definition_error() -> None:
            """Fail with every problem of the definition, one per line."""
            raise SpecError(problems)

        definition_error()
    return dag
