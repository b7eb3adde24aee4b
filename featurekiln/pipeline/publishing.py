"""The pipeline's publish step: commit validated chunks to the feature table (the ledger in each commit),
or, when the definition changes the table's columns, into a rebuild that replaces the table once complete."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from featurekiln.definitions.models import FeatureView
from featurekiln.planning.intervals import ONE_DAY
from featurekiln.planning.plan import BackfillPlan, Chunk
from featurekiln.quality.results import ChunkValidation, RunReport
from featurekiln.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from featurekiln.offline.delta_transaction import FileStatistics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChunkResult:
    """One committed chunk."""

    chunk: Chunk
    rows: int
    version: int
    validation: ChunkValidation | None = None


def rebuild_target(
    spark: SparkSession, view: FeatureView, settings: Settings, plan: BackfillPlan, frame: DataFrame, table: str
) -> tuple[str, tuple[Chunk, ...]]:
    """Where the chunks of a backfill are committed (:func:`commit_target`), and which chunks.

    A rebuild into ``_rebuild/<view>/<fingerprint>`` skips the chunks an
    interrupted rebuild already committed there.
    """
    from featurekiln.offline.delta_table import day_fingerprints
    from featurekiln.planning.intervals import days

    target = commit_target(spark, view, settings, table, frame)
    if target == table:
        return table, plan.chunks
    done = day_fingerprints(settings, target)
    chunks = tuple(c for c in plan.chunks if any(done.get(d) != view.fingerprint() for d in days(c.interval)))
    log.info("%s: the definition changes the table's columns: rebuilding %d chunk(s) into %s (%d already there)",
             view.name, len(chunks), target, len(plan.chunks) - len(chunks))
    return target, chunks


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
    """Replace the feature table by the rebuild in one commit, once the rebuild holds every day the table holds."""
    from featurekiln.offline.delta_table import chunk_metadata, day_fingerprints, replace_table
    from featurekiln.offline.staging import remove
    from featurekiln.planning.intervals import merge

    current = view.fingerprint()
    rebuilt = {d for d, f in day_fingerprints(settings, side).items() if f == current}
    left = sorted(set(day_fingerprints(settings, table)) - rebuilt)
    if left:
        log.warning("%s: the rebuild with the new columns holds %d day(s); it replaces the table once the %d other "
                    "day(s) the table holds are rebuilt too (first: %s)", view.name, len(rebuilt), len(left), left[0])
        return
    ranges = merge((d, d + ONE_DAY) for d in rebuilt)
    metadata = chunk_metadata(view.name, current, (ranges[0][0], ranges[-1][1]), run_id, trigger)
    replace_table(spark, table, spark.read.format("delta").load(side), ranges, metadata)
    remove(spark, side)
    log.info("%s: the rebuild replaced the feature table (%d day(s), new columns)", view.name, len(rebuilt))


def _published(report: RunReport, chunk: Chunk, rows: int) -> None:
    report.published.append((chunk.start.isoformat(), chunk.last.isoformat()))
    report.rows += rows


def commit_chunks(
    spark: SparkSession,
    settings: Settings,
    view: FeatureView,
    target: str,
    frame: DataFrame,
    chunks: Sequence[Chunk],
    audit: Callable[[DataFrame, Sequence[FileStatistics] | None, Mapping[str, Any] | None, Sequence[Chunk]],
                    dict[Chunk, ChunkValidation]] | None,
    run_id: str,
    trigger: str,
    report: RunReport,
    observe: Mapping[str, Column] | None = None,
) -> list[ChunkResult]:
    """Publish the ``chunks`` of ``frame`` to ``target``: one atomic commit per contiguous range of them.

    A run's chunks are contiguous, so a run is one commit: it publishes all its
    days or none, whatever the number of chunks (a Delta commit costs about a
    second whatever it writes; a year in 30-day chunks paid that thirteen times).
    Each chunk's rows come from the statistics of the files the commit added.

    Args:
        audit: validates the written rows of the given chunks (and Delta's
            statistics of their files, None when it took none, and the values of
            ``observe``) before they are committed and returns their validations, or raises
            (:class:`~featurekiln.errors.QualityError`) to commit nothing; None when
            the chunks were validated before (Airflow's ``validate`` task) or are not.
        observe: aggregates computed over the rows as they are written, for ``audit``.
    """
    from featurekiln.offline.delta_log import DeltaLog
    from featurekiln.offline.delta_table import chunk_metadata, replace_days
    from featurekiln.planning.intervals import merge

    done: list[ChunkResult] = []
    for interval in merge(c.interval for c in chunks):
        part = frame.where((frame.ds >= interval[0]) & (frame.ds < interval[1]))
        metadata = chunk_metadata(view.name, view.fingerprint(), interval, run_id, trigger)
        inside = [c for c in chunks if interval[0] <= c.start and c.end <= interval[1]]
        checks: dict[Chunk, ChunkValidation] = {}
        check = (lambda written, statistics, observed, inside=inside, checks=checks:
                 checks.update(audit(written, statistics, observed, inside))) if audit else None
        commit = replace_days(spark, settings, target, part, interval, metadata, view.name, audit=check,
                              observe=observe if audit else None)
        log.info("%s: snapshots %s..%s committed as version %d (%d rows)", view.name, interval[0],
                 interval[1] - ONE_DAY, commit.version, commit.rows)
        added = DeltaLog.of(target, settings).rows_added(commit.version, "ds")
        if added is None:  # files without statistics: count the days written
            added = {row["ds"].isoformat(): row["count"] for row in part.groupBy("ds").count().collect()}
        for chunk in inside:
            rows = sum(n for day, n in added.items() if chunk.start <= date.fromisoformat(day) < chunk.end)
            _published(report, chunk, rows)
            done.append(ChunkResult(chunk, rows, commit.version, checks.get(chunk)))
    return done
