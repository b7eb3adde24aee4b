"""The pipeline's publish step: commit validated chunks to the feature table (the ledger in each commit),
or, when the definition changes the table's columns, into a rebuild that replaces the table once complete."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from featurekiln.definitions.models import FeatureView
from featurekiln.planning.intervals import ONE_DAY, Interval
from featurekiln.quality.results import ChunkValidation, RunReport
from featurekiln.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from featurekiln.internals.delta_transaction import FileStatistics

log = logging.getLogger(__name__)

# How a commit's verdict ranks: a rebuild that gathers days of several runs records the weakest.
VERDICTS = ("success", "warned", "unvalidated")

# Validates the written, uncommitted rows of some chunks (see :func:`commit_chunks`).
Audit = Callable[["DataFrame", "Sequence[FileStatistics] | None", "Mapping[str, Any] | None", Sequence[Interval]],
                 dict[Interval, ChunkValidation]]


def show(chunk: Interval) -> str:
    """``first..last`` (inclusive) of a chunk."""
    return f"{chunk[0]}..{chunk[1] - ONE_DAY}"


@dataclass(frozen=True)
class ChunkResult:
    """One committed chunk: its snapshot days ``[start, end)``, rows, the commit's version, its validation."""

    chunk: Interval
    rows: int
    version: int
    validation: ChunkValidation | None = None


def rebuild_target(
    spark: SparkSession, view: FeatureView, settings: Settings, chunks: Sequence[Interval], frame: DataFrame, table: str
) -> tuple[str, tuple[Interval, ...]]:
    """Where the ``chunks`` of a range are committed (:func:`commit_target`), and which of them.

    A rebuild into ``_rebuild/<view>/<fingerprint>`` skips the chunks an
    interrupted rebuild already committed there.
    """
    from featurekiln.offline.delta_table import day_fingerprints
    from featurekiln.planning.intervals import days

    target = commit_target(spark, view, settings, table, frame)
    if target == table:
        return table, tuple(chunks)
    done = day_fingerprints(settings, target)
    todo = tuple(c for c in chunks if any(done.get(d) != view.fingerprint() for d in days(c)))
    log.info("%s: the definition changes the table's columns: rebuilding %d chunk(s) into %s (%d already there)",
             view.name, len(todo), target, len(chunks) - len(todo))
    return target, todo


def commit_target(spark: SparkSession, view: FeatureView, settings: Settings, table: str, frame: DataFrame) -> str:
    """The feature table, or ``_rebuild/<view>/<fingerprint>`` when ``frame`` has other columns than the table.

    A definition that adds, removes or retypes a feature cannot be committed a
    chunk at a time into the old table; its days are collected aside and replace
    the table once it holds every day the table holds (:func:`adopt_rebuild`).
    """
    from featurekiln.layout import rebuild_path
    from featurekiln.offline.delta_table import schema_differs

    return rebuild_path(settings, view.name, view.fingerprint()) if schema_differs(spark, table, frame) else table


def adopt_rebuild(
    spark: SparkSession, settings: Settings, view: FeatureView, side: str, table: str, run_id: str, trigger: str
) -> None:
    """Replace the feature table by the rebuild in one commit, once the rebuild holds every day the table holds.

    The commit records the weakest verdict of the rebuild's commits (an unvalidated day is not served).
    """
    from featurekiln.offline.delta_table import chunk_metadata, day_fingerprints, remove_directory, replace_table
    from featurekiln.offline.materialized import day_records
    from featurekiln.planning.intervals import merge

    current = view.fingerprint()
    records = day_records(settings, view.name, side)
    rebuilt = {d for d, f in day_fingerprints(settings, side).items() if f == current}
    left = sorted(set(day_fingerprints(settings, table)) - rebuilt)
    if left:
        log.warning("%s: the rebuild with the new columns holds %d day(s); it replaces the table once the %d other "
                    "day(s) the table holds are rebuilt too (first: %s)", view.name, len(rebuilt), len(left), left[0])
        return
    ranges = merge((d, d + ONE_DAY) for d in rebuilt)
    verdicts = {records[d].verdict or "unvalidated" for d in rebuilt if d in records} or {"unvalidated"}
    suites = {records[d].suites for d in rebuilt if d in records} - {None}
    metadata = chunk_metadata(view.name, current, (ranges[0][0], ranges[-1][1]), run_id, trigger,
                              verdict=max(verdicts, key=VERDICTS.index),
                              suites=next(iter(suites)) if len(suites) == 1 else None)
    replace_table(spark, table, spark.read.format("delta").load(side), ranges, metadata)
    remove_directory(spark, side)
    log.info("%s: the rebuild replaced the feature table (%d day(s), new columns)", view.name, len(rebuilt))


def _published(report: RunReport, chunk: Interval, rows: int) -> None:
    report.published.append((chunk[0].isoformat(), (chunk[1] - ONE_DAY).isoformat()))
    report.rows += rows


def commit_chunks(
    spark: SparkSession,
    settings: Settings,
    view: FeatureView,
    target: str,
    frame: DataFrame,
    chunks: Sequence[Interval],
    audit: Audit | None,
    run_id: str,
    trigger: str,
    report: RunReport,
    observe: Mapping[str, Column] | None = None,
    suites: str | None = None,
) -> list[ChunkResult]:
    """Publish the ``chunks`` of ``frame`` to ``target``: one atomic commit per contiguous range of them.

    A run's chunks are contiguous, so a range is one commit: it publishes all its
    days or none, whatever the number of chunks. Each chunk's rows come from the
    statistics of the files the commit added. The commit records the gate's
    verdict (``success``, ``warned``, or ``unvalidated`` without ``audit``) and
    the ``suites`` fingerprint, so that the table's log alone says whether a day
    may be served.

    Args:
        audit: validates the written rows of the given chunks (and Delta's
            statistics of their files, None when it took none, and the values of
            ``observe``) before they are committed and returns their validations, or raises
            (:class:`~featurekiln.errors.QualityError`) to commit nothing; None when
            the run is not validated (``--no-validate``).
        observe: aggregates computed over the rows as they are written, for ``audit``.
        suites: the fingerprint of the suites ``audit`` validates against.
    """
    from featurekiln.offline.delta_log import DeltaLog
    from featurekiln.offline.delta_table import chunk_metadata, replace_days
    from featurekiln.planning.intervals import merge

    done: list[ChunkResult] = []
    for interval in merge(chunks):
        part = frame.where((frame.ds >= interval[0]) & (frame.ds < interval[1]))
        verdict = None if audit else "unvalidated"
        metadata = chunk_metadata(view.name, view.fingerprint(), interval, run_id, trigger, verdict=verdict)
        inside = [c for c in chunks if interval[0] <= c[0] and c[1] <= interval[1]]
        checks: dict[Interval, ChunkValidation] = {}

        def check(written: DataFrame, statistics: Sequence[FileStatistics] | None, observed: Mapping[str, Any] | None,
                  inside: list[Interval] = inside, checks: dict[Interval, ChunkValidation] = checks) -> dict[str, object]:
            checks.update(audit(written, statistics, observed, inside))  # type: ignore[misc]
            warned = any(c.warnings for c in checks.values())
            return {"verdict": "warned" if warned else "success", **({"suites": suites} if suites else {})}

        commit = replace_days(spark, settings, target, part, interval, metadata, view.name,
                              audit=check if audit else None, observe=observe if audit else None)
        log.info("%s: snapshots %s committed as version %d (%d rows)", view.name, show(interval), commit.version,
                 commit.rows)
        added = DeltaLog.of(target, settings).rows_added(commit.version, "ds")
        if added is None:  # files without statistics: count the days written
            added = {row["ds"].isoformat(): row["count"] for row in part.groupBy("ds").count().collect()}
        for chunk in inside:
            rows = sum(n for day, n in added.items() if chunk[0] <= date.fromisoformat(day) < chunk[1])
            _published(report, chunk, rows)
            done.append(ChunkResult(chunk, rows, commit.version, checks.get(chunk)))
    return done


def publish_stats(
    spark: SparkSession, settings: Settings, view: FeatureView, table: str, committed: Sequence[ChunkResult]
) -> None:
    """Store the feature statistics of the ``committed`` chunks of the feature ``table`` (``_kiln/stats``): each
    contiguous range in one commit that replaces the view's statistics of its days.

    The statistics come from the gate's pass (each chunk's validation); the days of a run without
    validation are computed by a query over the table's committed rows.
    """
    from featurekiln.planning.intervals import merge
    from featurekiln.quality.statistics import query_statistics, write_stats

    features = [f.name for f in view.features]
    for interval in merge(c.chunk for c in committed):
        inside = [c for c in committed if interval[0] <= c.chunk[0] and c.chunk[1] <= interval[1]]
        stats = [s for c in inside if c.validation is not None for s in c.validation.stats]
        have = {s.ds for s in stats}
        missing = [d for c in inside for d in _days(c.chunk) if d not in have]
        if missing:
            rows = spark.read.format("delta").load(table)
            stats += query_statistics(rows, view.name, view.fingerprint(), features, missing)
        write_stats(spark, settings, view.name, stats, interval[0], interval[1] - ONE_DAY)


def restat_table(spark: SparkSession, settings: Settings, view: FeatureView, table: str) -> None:
    """After a rebuild replaced the feature ``table``: store the statistics of the days whose stored statistics
    are of another definition (or absent), by a query over the table's rows (one commit per range)."""
    from featurekiln.offline.delta_table import day_fingerprints
    from featurekiln.planning.intervals import merge
    from featurekiln.quality.statistics import query_statistics, read_stats, write_stats

    current = view.fingerprint()
    held = {d for d, f in day_fingerprints(settings, table).items() if f == current}
    stored = {s.ds for s in read_stats(settings, view.name) if s.fingerprint == current}
    stale = sorted(held - stored)
    if not stale:
        return
    rows = spark.read.format("delta").load(table)
    stats = query_statistics(rows, view.name, current, [f.name for f in view.features], stale)
    for first, end in merge((d, d + ONE_DAY) for d in stale):
        write_stats(spark, settings, view.name, stats, first, end - ONE_DAY)


def _days(chunk: Interval) -> list[date]:
    from featurekiln.planning.intervals import days

    return list(days(chunk))

