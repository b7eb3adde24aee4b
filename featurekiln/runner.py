"""The one runner: computes, validates and publishes snapshots. The CLI, the jobs and Airflow call it.

One pipeline: plan -> tiles -> snapshots -> validate -> publish (with the
ledger in each commit) -> push. The tiles a run needs are stored first
(:func:`featurekiln.pipeline.tiling.ensure_tiles`); the snapshots are
assembled from them, every chunk is validated against the view's
expectations (the built-in baseline plus its suite), and only when every
chunk passes are the run's days committed to the feature table in one atomic
``replaceWhere`` commit
(:mod:`featurekiln.pipeline.publishing`). One failure policy for every entry
point: a chunk that fails a blocking expectation is kept in the quarantine, no
chunk of the run is published, and the run stops with
:class:`~featurekiln.errors.QualityError`.

In one process (``kiln backfill``, ``kiln run``, ``jobs/materialize.py``)
:func:`backfill` does the steps at once: it writes the snapshots into the
feature table's directory, validates the written rows and commits them only
when they pass (:mod:`featurekiln.offline.delta_transaction`). Airflow splits them
over its tasks: :func:`stage` (``materialize``), :func:`audit` (``validate``)
and :func:`publish` (``publish``), with the chunks staged as Delta tables in
between. Both paths compute with the same functions and commit with the same
``replace_days``, so they produce identical tables. Every run ends with an HTML
report and a row in the run history, whatever its outcome
(:mod:`featurekiln.pipeline.record`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from featurekiln.definitions.models import FeatureView
from featurekiln.errors import QualityError, StaleTableError
from featurekiln.pipeline.publishing import ChunkResult, adopt_rebuild, commit_chunks, commit_target, rebuild_target
from featurekiln.pipeline.record import new_run_id, recorded, utc_now
from featurekiln.pipeline.tiling import compute_snapshots, describe, ensure_tiles, tile_work
from featurekiln.planning.intervals import ONE_DAY, Interval, length
from featurekiln.planning.plan import BackfillPlan, Chunk, plan_backfill
from featurekiln.quality.results import ChunkValidation, RunReport
from featurekiln.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from featurekiln.offline.delta_transaction import FileStatistics
    from featurekiln.online.push import PushResult
    from featurekiln.planning.materialization import ViewPlan
    from featurekiln.quality.suites import Suite

log = logging.getLogger(__name__)


@dataclass
class BackfillResult:
    """What a backfill did: the committed chunks and the run's report."""

    view: str
    plan: BackfillPlan
    run_id: str
    table: str
    report: RunReport
    chunks: list[ChunkResult] = field(default_factory=list)

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


def _check(part: DataFrame, view: FeatureView, suites: Sequence[Suite], chunk: Chunk, report: RunReport) -> ChunkValidation:
    from featurekiln.quality.gate import validate_chunk

    return _checked(view, chunk, report, validate_chunk(part, view.name, suites, chunk.start, chunk.last))


def _checked(view: FeatureView, chunk: Chunk, report: RunReport, checked: ChunkValidation) -> ChunkValidation:
    """Record and log the validation of ``chunk``."""
    from featurekiln.quality.report import outcome_table

    report.chunks.append(checked)
    log.info("%s: chunk %s: %d rows validated in %.1f s\n%s", view.name, chunk, checked.rows, checked.seconds,
             outcome_table(checked.outcomes, title=f"{view.name} {chunk}"))
    return checked


def _reject(spark: SparkSession, settings: Settings, part: DataFrame, chunk: Chunk, report: RunReport,
            checked: ChunkValidation) -> QualityError:
    """Keep a failing chunk in the quarantine; the error to raise."""
    from featurekiln.layout import quarantine_path, quarantine_root
    from featurekiln.offline.staging import write_chunk

    path = quarantine_path(settings, report.view, report.run_id, chunk.start, chunk.last)
    write_chunk(part, path, length(chunk.interval))
    report.quarantine = quarantine_root(settings, report.view, report.run_id)
    lines = [o.line() for o in checked.failed]
    return QualityError(
        f"{report.view}: snapshots {chunk} failed {len(lines)} expectation(s); nothing of them was published "
        f"(kept in {path})",
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
    refresh: Sequence[Interval] = (),
    on_step: Callable[[str], None] | None = None,
) -> BackfillResult:
    """Compute, validate and publish snapshots ``first`` .. ``last`` (both included) of ``view``.

    First the tiles: the tile days the range reads that are not stored (or lack
    a partial group of the definition) are computed from the source and stored
    (:func:`featurekiln.pipeline.tiling.ensure_tiles`); the snapshots are then assembled from the stored
    tiles and written into the feature table's directory without a commit. Every
    chunk (``chunk_days`` days) of the written rows is validated, and only when all
    pass are the run's days committed in one atomic ``replaceWhere`` commit
    (:func:`commit_chunks`, :mod:`featurekiln.offline.delta_transaction`); otherwise the
    written files are deleted. A run publishes all its chunks or none, as Airflow's
    ``validate`` and ``publish`` tasks do. Rerunning gives identical contents.

    Args:
        validate: run the quality gate (the baseline and the view's suite). When
            False the run is recorded as ``unvalidated`` and its snapshots cannot
            be pushed online.
        retile: re-read the source for every tile day the range reads (after a
            fix to raw data), even where tiles are stored.
        refresh: tile days to re-read from the source although stored (the late-data
            range of :func:`run`).
        on_step: called with a line saying what the run does as each of its steps
            begins (tiles; assembly and write; validation; commit), for a progress display.

    Raises:
        PlanError: the range is not valid for the view.
        SpecError: the view's expectation suite is broken.
        QualityError: a chunk failed a blocking expectation (every failing chunk is
            quarantined; nothing is published).
        SourceError: the source cannot be read as the definition says.
        SparkFailure: Spark failed otherwise.
    """
    from featurekiln.layout import table_path
    from featurekiln.quality.gate import observed_checks

    plan = plan_backfill(view, first, last, chunk_days or settings.chunk_days)
    suites = view_suites(view, settings) if validate else []
    run_id = run_id or new_run_id()
    report = RunReport(view.name, run_id, trigger, first, last, started_at=utc_now())
    result = BackfillResult(view=view.name, plan=plan, run_id=run_id, table=table_path(settings, view.name), report=report)
    log.info("%s: backfill %s..%s in %d chunk(s), run %s", view.name, first, last, len(plan.chunks), run_id)
    if not validate:
        log.info("%s: validation is switched off (--no-validate); run %s is recorded as unvalidated", view.name, run_id)
    step = on_step or (lambda _line: None)
    with recorded(spark, settings, report):
        work = tile_work(view, settings, [plan.events], [plan.events] if retile else refresh)
        step(describe(work))
        ensure_tiles(spark, view, settings, work, run_id=run_id, trigger=trigger)
        frame = compute_snapshots(spark, view, settings, plan)
        target, chunks = rebuild_target(spark, view, settings, plan, frame, result.table)
        step(f"assembling and writing {sum(length(c.interval) for c in chunks)} day(s)")

        def audited(written: DataFrame, statistics: Sequence[FileStatistics] | None, observed: Mapping[str, Any] | None,
                    part: Sequence[Chunk]) -> dict[Chunk, ChunkValidation]:
            step(f"validating {len(part)} chunk(s)")
            checks = _audit_all(spark, settings, view, suites, written, statistics, observed, part, report)
            step(f"committing {sum(length(c.interval) for c in part)} day(s)")
            return checks

        observe = observed_checks(frame, suites) if validate else None
        result.chunks.extend(commit_chunks(spark, settings, view, target, frame, chunks, audited if validate else None,
                                           run_id, trigger, report, observe))
        if target != result.table:
            adopt_rebuild(spark, settings, view, target, result.table, run_id, trigger)
        if not validate:
            report.status = "unvalidated"
    return result


def _audit_all(
    spark: SparkSession,
    settings: Settings,
    view: FeatureView,
    suites: Sequence[Suite],
    frame: DataFrame,
    statistics: Sequence[FileStatistics] | None,
    observed: Mapping[str, Any] | None,
    chunks: Sequence[Chunk],
    report: RunReport,
) -> dict[Chunk, ChunkValidation]:
    """Validate every chunk of ``frame`` (written, not committed) before any is published; failing chunks go to
    the quarantine.

    The gate's first pass decides every chunk in one scan of ``frame``
    (:func:`~featurekiln.quality.gate.validate_chunks`), and what Delta's
    ``statistics`` of the written files and the values ``observed`` as they were
    written decide without reading it.

    Raises:
        QualityError: a chunk failed a blocking expectation: nothing of the run is published.
    """
    from featurekiln.quality.gate import validate_chunks

    spans = [(c.start, c.last) for c in chunks]
    validated = validate_chunks(frame, view.name, suites, spans, statistics, observed) if chunks else []
    checks = {chunk: _checked(view, chunk, report, checked) for chunk, checked in zip(chunks, validated, strict=True)}
    failures = [_reject(spark, settings, frame.where((frame.ds >= c.start) & (frame.ds < c.end)), c, report, checked)
                for c, checked in checks.items() if checked.failed]
    if failures:
        raise _failed_run(failures)
    return checks


def _failed_run(failures: Sequence[QualityError]) -> QualityError:
    """One error for every chunk of a run that failed the gate."""
    return QualityError(" ".join(str(f) for f in failures), [line for f in failures for line in f.lines])


def stage(
    view: FeatureView, chunk: Chunk, *, settings: Settings, spark: SparkSession, run_id: str, trigger: str = "backfill"
) -> int:
    """Compute the snapshots of ``chunk`` into the run's staging table (Airflow's ``materialize``).

    The chunk reads the stored tiles (the ``tiles`` task stored them); a tile day
    that is still missing is tiled here first. Rerunning replaces what an
    earlier attempt staged. Nothing is published.

    Returns:
        The number of rows staged.

    Raises:
        PlanError, SourceError, SparkFailure: as :func:`backfill`; the failure is
            recorded in the run history with a report, as every run's is.
    """
    from featurekiln.layout import staging_path
    from featurekiln.offline.staging import write_chunk

    plan = plan_backfill(view, chunk.start, chunk.last, length(chunk.interval))
    path = staging_path(settings, view.name, run_id, chunk.start, chunk.last)
    report = RunReport(view.name, run_id, trigger, chunk.start, chunk.last, started_at=utc_now())
    with recorded(spark, settings, report, success=False):  # a failure is recorded and reported like any run's
        ensure_tiles(spark, view, settings, tile_work(view, settings, [plan.events]), run_id=run_id, trigger=trigger)
        write_chunk(compute_snapshots(spark, view, settings, plan), path, length(chunk.interval))
        rows = spark.read.format("delta").load(path).count()
    log.info("%s: staged %s (%d rows) at %s", view.name, chunk, rows, path)
    return rows


def audit(
    view: FeatureView,
    chunks: Sequence[Chunk],
    *,
    settings: Settings,
    spark: SparkSession,
    run_id: str,
    trigger: str,
    started_at: datetime,
) -> list[ChunkValidation]:
    """Validate the staged chunks of a run (Airflow's ``validate``).

    Returns:
        One validation per chunk, when none failed a blocking expectation.

    Raises:
        QualityError: a chunk failed; every failing chunk is moved to the quarantine,
            the staging tables are removed, and the run is recorded as failed.
    """
    from pyspark import StorageLevel

    from featurekiln.layout import staging_path
    from featurekiln.offline.staging import read_chunk, remove

    suites = view_suites(view, settings)
    report = RunReport(view.name, run_id, trigger, min(c.start for c in chunks), max(c.last for c in chunks), started_at)
    failures: list[QualityError] = []
    with recorded(spark, settings, report, success=False):
        for chunk in chunks:
            path = staging_path(settings, view.name, run_id, chunk.start, chunk.last)
            part = read_chunk(spark, path).persist(StorageLevel.MEMORY_AND_DISK_DESER)
            try:
                checked = _check(part, view, suites, chunk, report)
                if checked.failed:
                    failures.append(_reject(spark, settings, part, chunk, report, checked))
            finally:
                part.unpersist()
        if failures:
            for chunk in chunks:
                remove(spark, staging_path(settings, view.name, run_id, chunk.start, chunk.last))
            raise _failed_run(failures)
    return report.chunks


def publish(
    view: FeatureView,
    chunks: Sequence[Chunk],
    validations: Sequence[ChunkValidation],
    *,
    settings: Settings,
    spark: SparkSession,
    run_id: str,
    trigger: str,
    started_at: datetime,
) -> RunReport:
    """Commit the audited chunks of a run to the feature table in one atomic commit (Airflow's ``publish``).

    The staging tables are removed once the commit is done, so a retry after a
    crash commits what is still staged again (the same rows); the run is
    recorded as ``success`` (or ``warned``) with its report. Chunks with other
    columns than the table (a schema change) are collected aside and replace the
    table as in :func:`backfill`.
    """
    from functools import reduce

    from featurekiln.layout import staging_path, table_path
    from featurekiln.offline.delta_table import table_exists
    from featurekiln.offline.staging import read_chunk, remove

    first, last = min(c.start for c in chunks), max(c.last for c in chunks)
    report = RunReport(view.name, run_id, trigger, first, last, started_at, chunks=list(validations))
    table = table_path(settings, view.name)
    with recorded(spark, settings, report):
        staged = {chunk: staging_path(settings, view.name, run_id, chunk.start, chunk.last) for chunk in chunks}
        for chunk in [c for c, path in staged.items() if not table_exists(spark, path)]:
            log.warning("%s: chunk %s has no staging table: published by an earlier attempt", view.name, chunk)
            del staged[chunk]
        if staged:
            frame = reduce(lambda a, b: a.unionByName(b), (read_chunk(spark, path) for path in staged.values()))
            target = commit_target(spark, view, settings, table, frame)
            commit_chunks(spark, settings, view, target, frame, list(staged), None, run_id, trigger, report)
            for path in staged.values():
                remove(spark, path)
            if target != table:
                adopt_rebuild(spark, settings, view, target, table, run_id, trigger)
    return report


@dataclass
class RunResult:
    """What ``kiln run`` did for one view: its plan, the backfills of each computed range, the push."""

    plan: ViewPlan
    backfills: list[BackfillResult] = field(default_factory=list)
    pushed: PushResult | None = None


def plan_run(view: FeatureView, until: date, *, settings: Settings) -> ViewPlan:
    """The plan of a run of ``view`` up to ``until`` (included), from what its tables' Delta logs hold
    (``kiln plan``); no Spark."""
    from featurekiln.layout import table_path, tiles_path
    from featurekiln.offline.delta_table import day_fingerprints
    from featurekiln.offline.tile_store import held_tiles
    from featurekiln.planning.materialization import plan_view

    held = day_fingerprints(settings, table_path(settings, view.name))
    return plan_view(view, held, until, held_tiles(settings, tiles_path(settings, view.name)))


def run(
    view: FeatureView,
    until: date,
    *,
    settings: Settings,
    spark: SparkSession,
    trigger: str = "run",
    on_step: Callable[[str], None] | None = None,
) -> RunResult:
    """Compute exactly what :func:`plan_run` says, through the quality gate; push an online view's latest day.

    Each range of ``will_compute`` is one :func:`backfill` (chunked, each chunk
    validated and committed atomically). Nothing to do is not an error.
    ``on_step`` is called as each step of each backfill begins, its line prefixed
    with the backfill's days.

    Raises:
        StaleTableError: the table holds days of another definition and the view
            says ``on_change: refuse``; nothing is computed.
        QualityError, SourceError, TableError, SparkFailure: as :func:`backfill`.
    """
    plan = plan_run(view, until, settings=settings)
    if plan.refused:
        raise StaleTableError(plan.refused)
    result = RunResult(plan)
    step = on_step or (lambda _line: None)
    for start, end in plan.will_compute:
        days = f"{start}..{end - ONE_DAY}"
        result.backfills.append(
            backfill(view, start, end - ONE_DAY, settings=settings, spark=spark, trigger=trigger, refresh=plan.refresh,
                     on_step=lambda line, days=days: step(f"{days}: {line}"))
        )
    if view.online and result.backfills and result.backfills[-1].rows:
        step("pushing the latest snapshot online")
        result.pushed = push(view, None, settings=settings, spark=spark)
    return result


def push(view: FeatureView, ds: date | None, *, settings: Settings, spark: SparkSession) -> PushResult:
    """Push snapshot ``ds`` (default: the latest) of an online view, if a validated run published it
    with the current definition (``kiln push``).

    Raises:
        OnlineStoreError: the view is not online, or the store refused.
        UnvalidatedError: no validated run published the day.
        StaleTableError: the day was computed with another version of the definition.
    """
    from featurekiln.layout import table_path
    from featurekiln.offline.delta_table import day_fingerprints
    from featurekiln.online.push import latest_snapshot_day, push_view, require_online
    from featurekiln.quality.history import require_validated

    require_online(view)
    day = ds or latest_snapshot_day(spark, settings, view)
    written_by = day_fingerprints(settings, table_path(settings, view.name)).get(day)
    if written_by is not None and written_by != view.fingerprint():
        raise StaleTableError(
            f"{view.name}: snapshot {day} was computed with another version of the definition; rebuild it with "
            f"`kiln backfill {view.name} --start {day} --end {day}` (or the whole table) before serving it"
        )
    require_validated(spark, settings, view.name, day)
    return push_view(spark, view, settings, day)
