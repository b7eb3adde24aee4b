"""The one executor: runs a :class:`~featurekiln.planning.plan.RunPlan`. The CLI, the jobs and Airflow call it.

Steps, in order (:data:`STEPS`):

* ``tiles``: store the daily tiles the plan's snapshots read; only tile days not
  stored (or lacking a partial group of the definition) and the plan's refresh
  days are read from the source (:mod:`featurekiln.pipeline.tiling`).
* ``publish``: per contiguous range of the plan, assemble the snapshots from the
  stored tiles and write them into the feature table's directory without a
  commit; validate every chunk of the written rows against the view's suites
  and check its days against the view's drift monitors
  (:mod:`featurekiln.quality.monitors`); commit the range in one atomic
  ``replaceWhere`` commit only when every chunk passed (:mod:`featurekiln.pipeline.publishing`,
  :mod:`featurekiln.internals.delta_transaction`). The commit carries the ledger:
  the definition's fingerprint, the run, the gate's verdict and the suites'
  fingerprint. A chunk that fails a blocking expectation or a ``fail`` monitor
  is kept in the quarantine and nothing of its range is published. Then the run is recorded:
  an HTML report and a row in the run history, whatever its outcome
  (:mod:`featurekiln.pipeline.record`).
* ``push``: for an online view, push the latest snapshot the ledger says may be
  served when the online store holds an older one
  (:mod:`featurekiln.pipeline.serving`).

``kiln backfill``, ``kiln run`` and ``jobs/materialize.py`` run every step in
one process; each Airflow task runs one step of the same plan (the plan goes
through XCom as JSON), so a CLI run and an Airflow run produce identical
tables. One failure policy everywhere: a step that fails raises a
:class:`~featurekiln.errors.KilnError`; ``publish`` records the failure first.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from featurekiln.definitions.models import FeatureView
from featurekiln.errors import PlanError, QualityError
from featurekiln.pipeline.publishing import (
    ChunkResult,
    adopt_rebuild,
    commit_chunks,
    publish_stats,
    rebuild_target,
    restat_table,
    show,
)
from featurekiln.pipeline.record import new_run_id, recorded, utc_now
from featurekiln.pipeline.tiling import compute_snapshots, describe, ensure_tiles, tile_work
from featurekiln.planning.intervals import ONE_DAY, Interval, length
from featurekiln.planning.plan import RunPlan, plan_backfill, plan_from_ledger
from featurekiln.quality.results import ChunkValidation, RunReport
from featurekiln.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from featurekiln.internals.delta_transaction import FileStatistics
    from featurekiln.online.push import PushResult
    from featurekiln.planning.materialization import ViewPlan
    from featurekiln.quality.suites import Suite

log = logging.getLogger(__name__)

STEPS = ("tiles", "publish", "push")


@dataclass
class RunResult:
    """What the executor did with a plan.

    Attributes:
        view_plan: the ledger's state the plan came from (``kiln run``), None for a backfill.
        report: the run's report, None when the plan computed nothing or ``publish`` did not run.
        chunks: the committed chunks, in order.
        pushed: the push, None when nothing was pushed.
    """

    view: str
    plan: RunPlan
    run_id: str
    table: str
    report: RunReport | None = None
    chunks: list[ChunkResult] = field(default_factory=list)
    pushed: PushResult | None = None
    view_plan: ViewPlan | None = None

    @property
    def rows(self) -> int:
        return sum(c.rows for c in self.chunks)


def view_suites(view: FeatureView, settings: Settings) -> list[Suite]:
    """The suites a view is validated against: the built-in baseline, then its own suite if any.

    Raises:
        SpecError: the view's suite does not load or does not fit the view.
    """
    from featurekiln.quality.suites import baseline_suite, suite_for

    own = suite_for(view, settings)
    return [baseline_suite(view)] + ([own] if own is not None else [])


def suites_fingerprint(suites: Sequence[Suite]) -> str:
    """A short hash of the expectations of ``suites`` (recorded with every validated commit)."""
    body = json.dumps([[s.name, [[e.type, e.kwargs, e.severity] for e in s.expectations]] for s in suites],
                      sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def execute(
    view: FeatureView,
    plan: RunPlan,
    *,
    settings: Settings,
    spark: SparkSession,
    run_id: str | None = None,
    trigger: str = "cli",
    steps: Collection[str] = STEPS,
    on_step: Callable[[str], None] | None = None,
) -> RunResult:
    """Run the ``steps`` of ``plan`` (see the module docstring).

    Args:
        run_id: the run (an Airflow run id); a fresh one when None.
        trigger: recorded with the run: ``cli``, ``run``, ``nightly``, ``backfill`` or ``spark-submit``.
        steps: which steps to run (an Airflow task runs one).
        on_step: called with a line saying what the run does as each step begins, for a progress display.

    Raises:
        QualityError: a chunk failed a blocking expectation (quarantined; nothing of its range is published).
        SourceError, TableError, SparkFailure: the source, the table or Spark failed.
        OnlineStoreError: the push failed (the next run pushes again).
    """
    from featurekiln.layout import table_path

    unknown = set(steps) - set(STEPS)
    if unknown:
        raise PlanError(f"unknown step(s) {sorted(unknown)}; the steps are {', '.join(STEPS)}")
    result = RunResult(view=view.name, plan=plan, run_id=run_id or new_run_id(), table=table_path(settings, view.name))
    step = on_step or (lambda _line: None)
    if not plan.empty and ("tiles" in steps or "publish" in steps):
        first, last = plan.span[0], plan.span[1] - ONE_DAY
        report = RunReport(view.name, result.run_id, trigger, first, last, started_at=utc_now())
        log.info("%s: run %s: %s in %d chunk(s)", view.name, result.run_id, plan, len(plan.chunks))
        # A run is recorded by its publish step; a tiles step alone records only its failure.
        with recorded(spark, settings, report, success="publish" in steps):
            if "tiles" in steps:
                work = tile_work(view, settings, plan.needed, plan.refresh)
                step(f"{first}..{last}: {describe(work)}" if len(plan.ranges) > 1 else describe(work))
                ensure_tiles(spark, view, settings, work, run_id=result.run_id, trigger=trigger)
            if "publish" in steps:
                result.report = report
                _publish(view, plan, settings, spark, result, report, step)
    if plan.empty and "publish" in steps and plan.asked is not None:
        _record_nothing_to_do(view, plan, plan.asked, settings, spark, result, trigger)
    if "push" in steps and plan.push:
        _push(view, plan, settings, spark, result, trigger, step)
    return result


def _record_nothing_to_do(view: FeatureView, plan: RunPlan, asked: Interval, settings: Settings,
                          spark: SparkSession, result: RunResult, trigger: str) -> None:
    """Record a DAG run whose days were all published (by other runs) before its plan was made: it succeeds
    with no rows, so the history holds one record per DAG run."""
    log.info("%s: run %s: %s; recorded with no rows", view.name, result.run_id, plan)
    report = RunReport(view.name, result.run_id, trigger, asked[0], asked[1] - ONE_DAY, started_at=utc_now())
    result.report = report
    with recorded(spark, settings, report):
        pass


def _push(view: FeatureView, plan: RunPlan, settings: Settings, spark: SparkSession, result: RunResult,
          trigger: str, step: Callable[[str], None]) -> None:
    """The push step. A run that publishes nothing and pushes is recorded as a run of its own (it finishes
    the push of an earlier run), so the history shows it."""
    from featurekiln.pipeline.serving import pending_push, push_pending

    if not plan.empty:
        step("pushing the latest snapshot online")
        result.pushed = push_pending(view, settings=settings, spark=spark)
        return
    latest, online = pending_push(view, settings)
    if latest is None or (online is not None and online >= latest):
        log.info("%s: nothing to push (latest validated snapshot %s, online %s)", view.name, latest, online)
        return
    step(f"pushing snapshot {latest} online (it holds {online or 'none'})")
    report = RunReport(view.name, result.run_id, trigger, latest, latest, started_at=utc_now())
    result.report = report
    with recorded(spark, settings, report):
        result.pushed = push_pending(view, settings=settings, spark=spark)


def _publish(view: FeatureView, plan: RunPlan, settings: Settings, spark: SparkSession, result: RunResult,
             report: RunReport, step: Callable[[str], None]) -> None:
    """Snapshots, validation and commit of every range of ``plan`` (one atomic commit per range)."""
    from featurekiln.quality.gate import observed_checks

    suites = view_suites(view, settings) if plan.validate else []
    fingerprint = suites_fingerprint(suites) if plan.validate else None
    if not plan.validate:
        log.info("%s: validation is switched off (--no-validate); run %s is recorded as unvalidated", view.name,
                 result.run_id)
    for snapshots in plan.ranges:
        prefix = f"{show(snapshots)}: " if len(plan.ranges) > 1 else ""
        chunks = [c for c in plan.chunks if snapshots[0] <= c[0] and c[1] <= snapshots[1]]
        frame = compute_snapshots(spark, view, settings, snapshots)
        target, todo = rebuild_target(spark, view, settings, chunks, frame, result.table)
        step(f"{prefix}assembling and writing {sum(length(c) for c in todo)} day(s)")

        def audited(written: DataFrame, statistics: Sequence[FileStatistics] | None,
                    observed: Mapping[str, Any] | None, part: Sequence[Interval],
                    prefix: str = prefix) -> dict[Interval, ChunkValidation]:
            step(f"{prefix}validating {len(part)} chunk(s)")
            checks = _audit_all(spark, settings, view, suites, written, statistics, observed, part, report)
            step(f"{prefix}committing {sum(length(c) for c in part)} day(s)")
            return checks

        observe = observed_checks(frame, suites, [f.name for f in view.features]) if plan.validate else None
        committed = commit_chunks(spark, settings, view, target, frame, todo, audited if plan.validate else None,
                                  result.run_id, report.trigger, report, observe, fingerprint)
        result.chunks.extend(committed)
        if target == result.table:
            publish_stats(spark, settings, view, result.table, committed)
        else:  # the rebuilt days are published when the rebuild replaces the table
            adopt_rebuild(spark, settings, view, target, result.table, result.run_id, report.trigger)
            restat_table(spark, settings, view, result.table)
    if not plan.validate:
        report.status = "unvalidated"


def _audit_all(
    spark: SparkSession,
    settings: Settings,
    view: FeatureView,
    suites: Sequence[Suite],
    frame: DataFrame,
    statistics: Sequence[FileStatistics] | None,
    observed: Mapping[str, Any] | None,
    chunks: Sequence[Interval],
    report: RunReport,
) -> dict[Interval, ChunkValidation]:
    """Validate every chunk of ``frame`` (written, not committed) before any is published, and check the view's
    drift monitors on its days; failing chunks go to the quarantine.

    The gate's first pass decides every chunk in one scan of ``frame``
    (:func:`~featurekiln.quality.gate.validate_chunks`), and what Delta's
    ``statistics`` of the written files and the values ``observed`` as they were
    written decide without reading it.

    Raises:
        QualityError: a chunk failed a blocking expectation or a ``fail`` monitor: nothing of the range is
            published.
    """
    from featurekiln.quality.gate import validate_chunks
    from featurekiln.quality.report import outcome_table

    spans = [(c[0], c[1] - ONE_DAY) for c in chunks]
    validated = validate_chunks(frame, view.name, suites, spans, statistics, observed, [f.name for f in view.features],
                                view.fingerprint()) if chunks else []
    checks = dict(zip(chunks, _monitored(settings, view, validated, report), strict=True))
    for chunk, checked in checks.items():
        report.chunks.append(checked)
        log.info("%s: chunk %s: %d rows validated in %.1f s\n%s", view.name, show(chunk), checked.rows,
                 checked.seconds, outcome_table(checked.outcomes, title=f"{view.name} {show(chunk)}"))
    failures = [_reject(settings, frame.where((frame.ds >= c[0]) & (frame.ds < c[1])), c, report, checked)
                for c, checked in checks.items() if checked.failed]
    if failures:
        raise QualityError(" ".join(str(f) for f in failures), [line for f in failures for line in f.lines])
    return checks


def _monitored(settings: Settings, view: FeatureView, validated: Sequence[ChunkValidation], report: RunReport
               ) -> list[ChunkValidation]:
    """``validated`` with the outcomes of the view's drift monitors added to each chunk's
    (:mod:`featurekiln.quality.monitors`): each day against the stored statistics of the days before the run's
    (read without Spark) and the earlier days of the run."""
    if not view.monitors or not validated:
        return list(validated)
    from dataclasses import replace

    from featurekiln.quality.monitors import baseline_history, check_monitors, longest_baseline
    from featurekiln.quality.statistics import read_stats

    first = min(c.start for c in validated)
    days = longest_baseline(view)
    stored = read_stats(settings, view.name, features=sorted({m.feature for m in view.monitors}),
                        start=first - days * ONE_DAY, end=first - ONE_DAY) if days else []
    run = [s for c in [*report.chunks, *validated] for s in c.stats]
    history = baseline_history(view, stored, run)
    return [replace(c, outcomes=(*c.outcomes, *check_monitors(view, c, history))) for c in validated]


def _reject(settings: Settings, part: DataFrame, chunk: Interval, report: RunReport,
            checked: ChunkValidation) -> QualityError:
    """Keep a failing chunk in the quarantine; the error to raise."""
    from featurekiln.layout import quarantine_path, quarantine_root
    from featurekiln.offline.delta_table import write_table

    path = quarantine_path(settings, report.view, report.run_id, chunk[0], chunk[1] - ONE_DAY)
    write_table(part, path, length(chunk))
    report.quarantine = quarantine_root(settings, report.view, report.run_id)
    lines = [o.line() for o in checked.failed]
    return QualityError(
        f"{report.view}: snapshots {show(chunk)} failed {len(lines)} expectation(s); nothing of them was "
        f"published (kept in {path})",
        lines,
    )


def backfill(
    view: FeatureView,
    first: date,
    last: date,
    *,
    settings: Settings,
    spark: SparkSession,
    chunk_days: int | None = None,
    run_id: str | None = None,
    trigger: str = "cli",
    validate: bool = True,
    retile: bool = False,
    on_step: Callable[[str], None] | None = None,
) -> RunResult:
    """Compute, validate and publish snapshots ``first`` .. ``last`` (both included) of ``view`` (``kiln
    backfill``): the plan of :func:`~featurekiln.planning.plan.plan_backfill`, executed (nothing is pushed).

    Args:
        validate: run the quality gate (the baseline and the view's suite). When
            False the run is recorded as ``unvalidated`` and its snapshots cannot
            be pushed online.
        retile: re-read the source for every tile day the range reads (after a
            fix to raw data), even where tiles are stored.

    Raises:
        PlanError: the range is not valid for the view.
        SpecError: the view's expectation suite is broken.
        QualityError, SourceError, SparkFailure: as :func:`execute`.
    """
    from featurekiln.layout import tiles_path
    from featurekiln.offline.tile_store import held_tiles

    plan = plan_backfill(view, first, last, chunk_days or settings.chunk_days,
                         held_tiles=held_tiles(settings, tiles_path(settings, view.name)), retile=retile,
                         validate=validate)
    return execute(view, plan, settings=settings, spark=spark, run_id=run_id, trigger=trigger, on_step=on_step)


def plan_run(view: FeatureView, until: date, *, settings: Settings) -> ViewPlan:
    """What the ledger says a run of ``view`` up to ``until`` (included) must do (``kiln plan``); no Spark."""
    from featurekiln.offline.materialized import ledger_plan

    return ledger_plan(view, until, settings)


def run(
    view: FeatureView,
    until: date,
    *,
    settings: Settings,
    spark: SparkSession,
    trigger: str = "run",
    on_step: Callable[[str], None] | None = None,
) -> RunResult:
    """Compute what :func:`plan_run` says, through the quality gate, and push an online view's latest
    validated snapshot when the store holds an older one (``kiln run``). Nothing to do is not an error.

    Raises:
        StaleTableError: the table holds days of another definition and the view
            says ``on_change: refuse``; nothing is computed.
        QualityError, SourceError, TableError, SparkFailure, OnlineStoreError: as :func:`execute`.
    """
    ledger = plan_run(view, until, settings=settings)
    plan = plan_from_ledger(view, ledger, settings.chunk_days, reason=f"kiln run until {until}")
    step = on_step
    if on_step is not None and len(plan.ranges) == 1:  # say which days, as a run of several ranges does for each
        days = show(plan.ranges[0])

        def step(line: str) -> None:
            on_step(f"{days}: {line}")

    result = execute(view, plan, settings=settings, spark=spark, trigger=trigger, on_step=step)
    result.view_plan = ledger
    return result


def push(view: FeatureView, ds: date | None, *, settings: Settings, spark: SparkSession) -> PushResult:
    """Push snapshot ``ds`` (default: the latest) of an online view if the ledger says it may be served
    (``kiln push``); see :func:`featurekiln.pipeline.serving.push`."""
    from featurekiln.pipeline.serving import push as push_day

    return push_day(view, ds, settings=settings, spark=spark)
