"""Delta feature tables: one per view, partitioned by ``ds``, replaced a range of days at a time.

A run's days ``[start, end)`` are written with ``replaceWhere`` on ``ds``: one
atomic commit that replaces exactly those days, so a rerun gives identical
contents and a crash leaves them all old or all new.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from featurekiln.errors import TableError
from featurekiln.layout import table_path
from featurekiln.planning.intervals import ONE_DAY, Interval, length, merge
from featurekiln.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import StructType

    from featurekiln.internals.delta_transaction import FileStatistics, PendingWrite

log = logging.getLogger(__name__)

COMMIT_ATTEMPTS = 8
# A writer looks for its own commit among this many newest versions (others may have committed on top).
OWN_COMMIT_WITHIN = 20
RETRY_SECONDS = 0.5
# Delta's optimistic concurrency: another writer committed first (created the table,
# or wrote some of the same days). Python class names and Delta's error classes.
_CONFLICTS = (
    "DeltaConcurrentModificationException", "ConcurrentAppendException", "ConcurrentDeleteReadException",
    "ConcurrentDeleteDeleteException", "ConcurrentTransactionException", "ConcurrentWriteException",
    "ProtocolChangedException", "MetadataChangedException", "DELTA_CONCURRENT_", "DELTA_PROTOCOL_CHANGED",
    "DELTA_METADATA_CHANGED", "LogMovedOn",
)


def lost_commit_race(error: Exception) -> bool:
    """Whether ``error`` is Delta's report that another writer committed first.

    Two runs of one view may write the same days at once (a nightly run during a
    backfill, two overlapping backfills), or both create the table. Their output
    for a day is the same (a snapshot is a function of the definition and the
    events), so the loser simply commits again on top of the winner's version.
    """
    text = f"{type(error).__name__} {error}"
    return any(marker in text for marker in _CONFLICTS)


def table_exists(spark: SparkSession, path: str) -> bool:
    """Whether ``path`` holds a Delta table."""
    from delta.tables import DeltaTable

    return bool(DeltaTable.isDeltaTable(spark, path))


def read_table(spark: SparkSession, settings: Settings, name: str) -> DataFrame:
    """The feature table of view ``name``.

    Raises:
        TableError: the table does not exist yet.
    """
    path = table_path(settings, name)
    if not table_exists(spark, path):
        raise TableError(f"{name}: no feature table at {path}; run `kiln backfill {name} --start ... --end ...` first")
    return spark.read.format("delta").load(path)


@dataclass(frozen=True)
class CommitInfo:
    """What one chunk commit recorded."""

    version: int
    rows: int


def one_file_per_day(frame: DataFrame, partition: str, days: int) -> DataFrame:
    """``frame`` shuffled so that one task writes all the rows of each ``partition`` value: one file per day
    (or per block of days, for a table partitioned by blocks).

    At most ``days`` tasks (the partition values written; at most
    ``spark.sql.shuffle.partitions``), each writing a few whole values. Delta's optimized write gives the same
    files but runs one task per value, which costs more than the writing when values are small (bench/README.md). Each task's rows are sorted by ``partition``: Spark's
    writer sorts them so anyway, and this sort takes its place, so that what observes the rows on their way
    to the files (:mod:`featurekiln.quality.proofs_observed`) sees each value's rows together.
    """
    tasks = min(max(days, 1), int(frame.sparkSession.conf.get("spark.sql.shuffle.partitions")))
    return frame.repartition(tasks, partition).sortWithinPartitions(partition)


def schema_differs(spark: SparkSession, path: str, frame: DataFrame) -> bool:
    """Whether the table at ``path`` exists with other columns (names, types or order) than ``frame``."""
    if not table_exists(spark, path):
        return False
    return _columns(spark.read.format("delta").load(path).schema) != _columns(frame.schema)


def _columns(schema: StructType) -> list[tuple[str, str]]:
    return [(f.name, f.dataType.simpleString()) for f in schema.fields]


def _check_schema(spark: SparkSession, path: str, frame: DataFrame, name: str) -> None:
    want, have = _columns(frame.schema), _columns(spark.read.format("delta").load(path).schema)
    if want != have:
        raise TableError(
            f"{name}: the feature table at {path} has columns {', '.join(f'{n} {t}' for n, t in have)}, "
            f"but the definition now gives {', '.join(f'{n} {t}' for n, t in want)}; "
            "the definition changed: remove the table (or rename the view) and backfill again"
        )


def replace_days(
    spark: SparkSession,
    settings: Settings,
    path: str,
    frame: DataFrame,
    interval: Interval,
    metadata: dict[str, object],
    name: str,
    *,
    where: str | None = None,
    partition: str = "ds",
    parts: int | None = None,
    evolve: bool = False,
    audit: Callable[[DataFrame, Sequence[FileStatistics] | None, Mapping[str, Any] | None],
                    Mapping[str, object] | None] | None = None,
    observe: Mapping[str, Column] | None = None,
) -> CommitInfo:
    """Replace the days ``interval`` of the table at ``path`` by ``frame`` in one commit.

    Args:
        frame: rows whose day all lie in ``interval`` (may be empty: the days are
            then cleared).
        metadata: recorded as the commit's ``userMetadata`` (JSON).
        where: the rows replaced, as Delta's ``replaceWhere`` predicate (default:
            ``partition``, a date column, in ``interval``); the rows of ``frame`` must all match it.
        partition: the column the table is partitioned by (``ds`` for feature tables).
        parts: how many values of ``partition`` ``frame`` holds at most (default: the days of ``interval``).
        evolve: new columns of ``frame`` are added to the table and columns it
            lacks are null in the days written (tile tables); otherwise the
            schemas must be equal.
        audit: called with the written rows before they are committed (read from
            the files written, which no version of the table refers to yet),
            Delta's statistics of those files (None when it took none) and the
            values of the ``observe`` aggregates over the rows as they were
            written (None when there were none, or Spark did not hand them over);
            when it raises, the files are deleted, nothing is committed, and its
            error propagates (:mod:`featurekiln.internals.delta_transaction`); what it
            returns is added to ``metadata`` (the gate's verdict). Not with ``evolve``.
        observe: aggregates (by name) that the write computes over its rows as they
            go to the files (:meth:`DataFrame.observe`), for ``audit``.

    A commit that loses a race with another writer of the same table (see
    :func:`lost_commit_race`) is retried, up to 8 attempts with growing pauses.

    Raises:
        TableError: the table exists with another schema, or other writers kept
            winning every attempt.
    """
    from featurekiln.offline.delta_log import DeltaLog

    if audit is not None and evolve:
        raise ValueError("replace_days: an audited write cannot add columns (evolve)")
    text = json.dumps(metadata, sort_keys=True)
    where = where or f"{partition} >= '{interval[0].isoformat()}' AND {partition} < '{interval[1].isoformat()}'"
    rows = one_file_per_day(frame, partition, parts or length(interval))
    writer = rows.write.format("delta").option("userMetadata", text)
    if evolve:
        writer = writer.option("mergeSchema", "true")
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        try:
            if not evolve and table_exists(spark, path):
                _check_schema(spark, path, frame, name)
            if audit is not None:
                text = _audited_write(spark, path, rows, where, partition, text, audit, observe)
                break
            # Also when the table does not exist yet: a plain append could land on a table another run
            # created in between and duplicate its days, where an overwrite of these days conflicts.
            writer.mode("overwrite").option("replaceWhere", where).partitionBy(partition).save(path)
            break
        except Exception as error:  # noqa: BLE001 - only a lost commit race is retried
            if not lost_commit_race(error):
                raise
            _lost(name, path, (interval[0], interval[1] - timedelta(days=1)), attempt, error)
            # A race is lost at the commit, so any audit has passed (its verdict is in ``text``); the next
            # attempt writes the same rows (a function of the definition and the events) and commits them
            # without a second audit.
            audit = None
            writer = writer.option("userMetadata", text)
    recorded = json.loads(text)  # as the log gives it back
    ledger = DeltaLog.of(path, settings)
    ours = ledger.newest_with(recorded, OWN_COMMIT_WITHIN)
    if ours is None:  # Delta commits nothing for no rows over days that hold none; the ledger needs a commit
        _record_empty_write(spark, path, text)
        ledger = DeltaLog.of(path, settings)
        ours = ledger.newest_with(recorded, OWN_COMMIT_WITHIN)
        if ours is None:
            raise TableError(f"{name}: the commit of days {interval[0]}..{interval[1] - timedelta(days=1)} is not "
                             f"among the newest {OWN_COMMIT_WITHIN} versions of {path}; other writers committed "
                             "too much at once")
    ledger.summarize()
    return CommitInfo(version=ours.version, rows=ours.rows)


class LogMovedOn(Exception):  # noqa: N818 - a lost commit race, named like Delta's
    """The table's log, read as files, is past the version a transaction started from: another writer
    committed first."""


def replace_rows(
    spark: SparkSession,
    settings: Settings,
    path: str,
    frame: DataFrame,
    *,
    partition: str,
    value: str,
    column: str,
    days: tuple[date, date],
    metadata: dict[str, object],
    name: str,
) -> None:
    """Replace the rows of the table at ``path`` whose ``partition`` is ``value`` and whose date ``column`` lies
    in ``days`` (both included) by ``frame`` in one commit; the table (partitioned by ``partition``) is
    created when absent. For small tables (``_kiln/stats``).

    The files replaced are those of ``value`` whose Delta statistics say they may hold days of the range,
    read from the table's log as files (:class:`featurekiln.offline.delta_log.DeltaLog`); their rows of
    other days are written again beside ``frame``'s, in one file
    (:func:`featurekiln.internals.delta_transaction.write_replacing`). That costs a write of a few rows,
    where a ``replaceWhere`` on a data column also scans the table's state and rewrites what it finds
    (``bench/README.md``). A commit that loses a race is written again, up to 8 attempts.

    Raises:
        TableError: other writers kept winning every attempt.
    """
    from pyspark.sql import functions as F

    from featurekiln.internals.delta_transaction import write_replacing
    from featurekiln.offline.delta_log import DeltaLog

    first, last = days
    where = f"{partition} = '{value}' AND {column} >= '{first.isoformat()}' AND {column} <= '{last.isoformat()}'"
    text = json.dumps(metadata, sort_keys=True)
    if not table_exists(spark, path):
        replace_days(spark, settings, path, frame, (first, last + ONE_DAY), metadata, name, where=where,
                     partition=partition, parts=1)
        return

    def choose(version: int) -> list[dict[str, Any]]:
        state = DeltaLog.of(path, settings).state()
        if state.version != version:
            raise LogMovedOn(f"{path}: version {state.version} is past {version}")
        return [add for add in state.files.values()
                if (add.get("partitionValues") or {}).get(partition) == value and _may_hold(add, column, days)]

    keep = (F.col(column) < F.lit(first)) | (F.col(column) > F.lit(last))
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        try:
            _commit(write_replacing(spark, path, frame, choose=choose, keep=keep, partition=partition, where=where),
                    text)
            return
        except Exception as error:  # noqa: BLE001 - only a lost commit race is retried
            if not lost_commit_race(error):
                raise
            _lost(name, path, days, attempt, error)


def _may_hold(add: Mapping[str, Any], column: str, days: tuple[date, date]) -> bool:
    """Whether the file of ``add`` may hold rows whose date ``column`` lies in ``days`` (its statistics say so,
    or it has none)."""
    stats = json.loads(add.get("stats") or "{}")
    least, greatest = stats.get("minValues", {}).get(column), stats.get("maxValues", {}).get(column)
    if least is None or greatest is None:
        return True
    return least <= days[1].isoformat() and greatest >= days[0].isoformat()


def _lost(name: str, path: str, days: tuple[date, date], attempt: int, error: Exception) -> None:
    """After a lost commit race: raise when it was the last attempt, else log and pause before the next."""
    if attempt == COMMIT_ATTEMPTS:
        raise TableError(
            f"{name}: days {days[0]}..{days[1]}: other runs of this view kept committing first "
            f"({COMMIT_ATTEMPTS} attempts); nothing of these days was written, run again"
        ) from error
    log.info("%s: another run committed days of %s first; writing again (attempt %d)", name, path, attempt + 1)
    time.sleep(RETRY_SECONDS * attempt * (1 + random.random()))  # noqa: S311 - jitter, not security


def _audited_write(
    spark: SparkSession, path: str, rows: DataFrame, where: str, partition: str, text: str,
    audit: Callable[[DataFrame, Sequence[FileStatistics] | None, Mapping[str, Any] | None],
                    Mapping[str, object] | None],
    observe: Mapping[str, Column] | None,
) -> str:
    """Write ``rows``, call ``audit`` on the written rows, and commit only when it returned; the commit's
    metadata (``text`` with what ``audit`` returned)."""
    from featurekiln.internals.delta_transaction import write_uncommitted

    pending = write_uncommitted(spark, path, rows, where=where, partition=partition, metadata=text, observe=observe)
    try:
        verdict = audit(pending.rows, pending.statistics, pending.observed)
    except BaseException:
        pending.discard()
        raise
    if verdict:
        text = json.dumps({**json.loads(text), **verdict}, sort_keys=True)
    _commit(pending, text)
    return text


def _commit(pending: PendingWrite, text: str) -> None:
    """Commit ``pending`` with ``text`` as its metadata; when it loses a commit race, delete its files (nothing
    refers to them) and raise."""
    try:
        pending.commit(text)
    except Exception as error:
        if lost_commit_race(error):
            pending.discard()
        raise


_USER_METADATA = "spark.databricks.delta.commitInfo.userMetadata"


def _record_empty_write(spark: SparkSession, path: str, text: str) -> None:
    """Commit ``text`` as the metadata of a table-property change: the record of a write that had no rows."""
    spark.conf.set(_USER_METADATA, text)
    try:
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            try:
                spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('featurekiln.empty_write' = '{uuid.uuid4().hex}')")
                break
            except Exception as error:  # noqa: BLE001 - only a lost commit race is retried
                if not lost_commit_race(error) or attempt == COMMIT_ATTEMPTS:
                    raise
                time.sleep(RETRY_SECONDS * attempt * (1 + random.random()))  # noqa: S311 - jitter
    finally:
        spark.conf.unset(_USER_METADATA)


UNKNOWN_FINGERPRINT = "unknown"


def day_fingerprints(settings: Settings, path: str) -> dict[date, str]:
    """Every snapshot day the table at ``path`` holds, with the fingerprint of the definition that wrote it.

    The featurekiln commits still in the table's Delta history say which days
    each chunk wrote and with which definition
    (:func:`featurekiln.offline.materialized.materialized_days`); a chunk covers
    its days even when a day has no rows (no active key). A day with rows that
    no surviving commit names has the fingerprint ``"unknown"``. An absent table
    holds no days. The table's log is read as files (:mod:`featurekiln.offline.delta_log`), no Spark.
    """
    from featurekiln.offline.delta_log import DeltaLog
    from featurekiln.offline.materialized import materialized_days

    log = DeltaLog.of(path, settings)
    if not log.exists():
        return {}
    held = dict.fromkeys(map(date.fromisoformat, log.partition_values("ds")), UNKNOWN_FINGERPRINT)
    held.update(materialized_days(log, path).days)
    return held


def held_days(settings: Settings, path: str) -> list[Interval]:
    """The days the table at ``path`` holds (see :func:`day_fingerprints`), as merged intervals."""
    return merge((day, day + ONE_DAY) for day in day_fingerprints(settings, path))


def replace_table(
    spark: SparkSession, path: str, frame: DataFrame, ranges: list[Interval], metadata: dict[str, object]
) -> None:
    """Replace the whole table at ``path`` (rows and schema) by ``frame`` in one commit.

    The commit's metadata says so (``replaces_table``) and lists the day ``ranges``
    it holds, so the ledger forgets every day before it.
    """
    body = {**metadata, "replaces_table": True, "ranges": [[a.isoformat(), (b - ONE_DAY).isoformat()] for a, b in ranges]}
    rows = one_file_per_day(frame, "ds", sum(map(length, ranges)))
    (rows.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
     .option("userMetadata", json.dumps(body, sort_keys=True)).partitionBy("ds").save(path))


def chunk_metadata(
    view_name: str, fingerprint: str, interval: Interval, run_id: str, trigger: str, *, verdict: str | None = None,
    suites: str | None = None,
) -> dict[str, object]:
    """The commit metadata of a chunk: definition fingerprint, inclusive day range, the run, and (once known)
    the gate's ``verdict`` (``success``, ``warned`` or ``unvalidated``) with the fingerprint of the ``suites``
    it validated against."""
    body: dict[str, object] = {
        "view": view_name,
        "fingerprint": fingerprint,
        "start": interval[0].isoformat(),
        "end": (interval[1] - timedelta(days=1)).isoformat(),
        "run_id": run_id,
        "trigger": trigger,
    }
    if verdict is not None:
        body["verdict"] = verdict
    if suites is not None:
        body["suites"] = suites
    return body



def write_table(frame: DataFrame, path: str, days: int) -> None:
    """Write ``frame`` (rows of ``days`` days) as the Delta table at ``path``, replacing what was there (the
    quarantine of a failing chunk)."""
    rows = one_file_per_day(frame, "ds", days)
    rows.write.format("delta").mode("overwrite").option("overwriteSchema", "true").partitionBy("ds").save(path)


def remove_directory(spark: SparkSession, path: str) -> None:
    """Delete the directory ``path`` (any Hadoop file system); a missing path is fine."""
    from featurekiln.internals.hadoop import delete

    delete(spark, path)
