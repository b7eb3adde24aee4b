"""A Delta write that is committed only once its rows pass a check: Delta's own transaction, through the JVM.

Delta's public writer commits as it writes, so a gate could see a run's rows
before their commit only by caching them (compute into Spark's cache, validate
the cache, write from it). Delta's transaction splits the two steps:
``WriteIntoDelta.write`` writes the files of a ``replaceWhere`` overwrite and
returns the actions its commit needs (the new files, the removal of the rows
replaced, the schema of a new table), and ``OptimisticTransaction.commit``
commits them. In between, the written files are plain Parquet that the gate
reads like any data set, and the statistics Delta took of each file as it wrote
it (rows, and per column nulls and least and greatest values) come with them, and
so do the values of any aggregates the write observed over its rows
(``DataFrame.observe``: the gate's proofs, :mod:`featurekiln.quality.proofs_observed`).
Files that are never committed belong to no version of the table: readers never
see them, and they are deleted. :func:`write_replacing` uses the same
transaction for a small table's replacement (``_kiln/stats``), with the files to
replace chosen from the log instead of by Delta's scan of the table's state.

These are Delta's internal classes (delta-spark 4.4, pinned), reached through
py4j; ``tests/offline/test_delta_transaction.py`` checks them on that version.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, Observation, SparkSession

log = logging.getLogger(__name__)

_DELTA = "org.apache.spark.sql.delta"
OBSERVED_SECONDS = 10


@dataclass(frozen=True)
class FileStatistics:
    """Delta's statistics of one written file, exact for the rows it holds.

    ``nulls`` has the columns whose nulls Delta counted (by default the first 32;
    not the partition column), ``least`` and ``greatest`` their least and greatest
    non-null values as Delta's JSON gives them (numbers for numeric columns; absent
    for a column without non-null values).
    """

    partition: str | None
    rows: int
    nulls: Mapping[str, int]
    least: Mapping[str, Any]
    greatest: Mapping[str, Any]


@dataclass
class PendingWrite:
    """Files written into a Delta table's directory and not committed yet."""

    spark: SparkSession
    files: list[str]
    rows: DataFrame
    statistics: list[FileStatistics] | None  # one per file; None when a file has none (statistics switched off)
    observed: dict[str, Any] | None  # the observed aggregates' values; None without, or when Spark gave none
    _transaction: Any
    _actions: Any
    _operation: Callable[[str], Any]  # the Delta operation recorded with the commit, for its userMetadata

    def commit(self, metadata: str) -> int:
        """Commit the write with ``metadata`` as its ``userMetadata`` (Delta's optimistic concurrency applies);
        the new version."""
        return int(self._transaction.commit(self._actions, self._operation(metadata)))

    def discard(self) -> None:
        """Delete the written files (nothing refers to them)."""
        from featurekiln.internals.hadoop import delete

        for name in self.files:
            delete(self.spark, name, recursive=False)
        log.debug("discarded %d uncommitted file(s)", len(self.files))


def write_uncommitted(
    spark: SparkSession, path: str, frame: DataFrame, *, where: str, partition: str, metadata: str,
    observe: Mapping[str, Column] | None = None,
) -> PendingWrite:
    """Write ``frame`` as an overwrite of the rows ``where`` of the Delta table at ``path`` (created if
    absent, partitioned by ``partition``), without committing it.

    Args:
        metadata: the ``userMetadata`` of the files' write (the commit's own is given to :meth:`PendingWrite.commit`).
        observe: aggregates (by name) computed over the rows as they are written
            (:meth:`DataFrame.observe`); their values come back as the write's ``observed``.

    Returns:
        The pending write; its ``rows`` read the written files (the columns of ``frame``, in its order).
    """
    jvm = spark.sparkContext._jvm  # noqa: SLF001 - Delta's transaction classes through py4j
    jspark = spark._jsparkSession  # noqa: SLF001 - the JVM session the Delta classes take
    utils = jvm.org.apache.spark.api.python.PythonUtils
    delta = jvm.org.apache.spark.sql.delta
    none = jvm.scala.Option.empty()

    def scala_map(items: dict[str, str]) -> Any:  # noqa: ANN401 - a Scala Map
        java = jvm.java.util.HashMap()
        for key, value in items.items():
            java.put(key, value)
        return utils.toScalaMap(java)

    observation = None
    if observe:
        from pyspark.sql import Observation

        observation = Observation()
        frame = frame.observe(observation, *(column.alias(name) for name, column in observe.items()))
    command = delta.commands.WriteIntoDelta
    deltas = delta.DeltaLog.forTable(jspark, path)
    options = delta.DeltaOptions(scala_map({"replaceWhere": where, "userMetadata": metadata}),
                                 jspark.sessionState().conf())
    mode = jvm.org.apache.spark.sql.SaveMode.Overwrite
    write = command(deltas, mode, options, _scala_seq(spark, [partition]), scala_map({}), frame._jdf, none, none,  # noqa: SLF001
                    getattr(command, "$lessinit$greater$default$9")())
    transaction = deltas.startTransaction()
    actions = write.write(transaction, jspark, none, False)
    def operation(text: str) -> Any:
        return _overwrite(spark, partition, where, text)

    java = jvm.scala.jdk.javaapi.CollectionConverters
    adds = [a for a in java.asJava(actions) if a.getClass().getSimpleName() == "AddFile"]
    files = [_file_path(path, a.path()) for a in adds]
    if files:  # the partition column comes last from a Parquet read: the frame's order again
        rows = spark.read.schema(frame.schema).option("basePath", path).parquet(*files).select(*frame.columns)
    else:
        rows = spark.createDataFrame([], frame.schema)
    statistics = [_statistics(a.stats(), java.asJava(a.partitionValues()).get(partition)) for a in adds]
    complete = None if None in statistics else statistics
    return PendingWrite(spark, files, rows, complete, _observed(observation), transaction, actions, operation)


def write_replacing(
    spark: SparkSession, path: str, frame: DataFrame, *, choose: Callable[[int], Sequence[Mapping[str, Any]]],
    keep: Column, partition: str, where: str,
) -> PendingWrite:
    """Write ``frame`` into the existing Delta table at ``path`` (partitioned by ``partition``) as the
    replacement of files chosen from the table's log, instead of by Delta's scan of its state; not committed.

    A ``replaceWhere`` overwrite finds the files to remove with a Spark job over
    the table's state; for a table of a few small files that job is most of the
    commit's cost. Here Delta's transaction reads nothing but its version:
    ``choose(version)`` returns the ``add`` actions (as the log writes them) of
    the files to replace, read from the log at that version (it raises when the
    log it reads has moved on). Those files' rows that match ``keep`` are written
    again beside ``frame``'s, in one file; the commit removes the files. The
    transaction counts as having read the whole table, so any concurrent commit
    makes its commit fail with Delta's conflict error.

    Args:
        where: the rows replaced, recorded with the commit (Delta's ``Write`` operation's predicate).

    Returns:
        The pending write (its ``rows`` are what was written, unread; no statistics or observed values).
    """
    jvm = spark.sparkContext._jvm  # noqa: SLF001 - Delta's transaction classes through py4j
    delta = jvm.org.apache.spark.sql.delta
    transaction = delta.DeltaLog.forTable(spark._jsparkSession, path).startTransaction()  # noqa: SLF001
    transaction.readWholeTable()
    chosen = list(choose(int(transaction.readVersion())))
    rows = frame
    if chosen:
        old = spark.read.schema(frame.schema).option("basePath", path).parquet(
            *(_file_path(path, a["path"]) for a in chosen))
        rows = frame.unionByName(old.select(*frame.columns).where(keep))
    java = jvm.scala.jdk.javaapi.CollectionConverters
    adds = list(java.asJava(transaction.writeFiles(rows.coalesce(1)._jdf)))  # noqa: SLF001
    now = int(time.time() * 1000)
    removes = [delta.actions.Action.fromJson(json.dumps({"remove": {
        "path": a["path"], "deletionTimestamp": now, "dataChange": True, "extendedFileMetadata": True,
        "partitionValues": a.get("partitionValues") or {}, "size": a["size"],
        **({"deletionVector": a["deletionVector"]} if a.get("deletionVector") else {}),
    }})) for a in chosen]

    def operation(text: str) -> Any:  # noqa: ANN401 - Delta's operation
        return _overwrite(spark, partition, where, text)

    return PendingWrite(spark, [_file_path(path, a.path()) for a in adds], rows, None, None, transaction,
                        _scala_seq(spark, [*adds, *removes]), operation)


def _scala_seq(spark: SparkSession, items: Sequence[Any]) -> Any:  # noqa: ANN401 - a Scala Seq
    jvm = spark.sparkContext._jvm  # noqa: SLF001
    java = jvm.java.util.ArrayList()
    for item in items:
        java.add(item)
    return jvm.org.apache.spark.api.python.PythonUtils.toSeq(java)


def _overwrite(spark: SparkSession, partition: str, where: str, metadata: str) -> Any:  # noqa: ANN401
    """Delta's ``Write`` operation of an overwrite of the rows ``where``, recorded with ``metadata``."""
    jvm = spark.sparkContext._jvm  # noqa: SLF001
    delta = jvm.org.apache.spark.sql.delta
    defaults = getattr(getattr(delta, "DeltaOperations$Write$"), "MODULE$")
    return getattr(delta, "DeltaOperations$Write")(
        jvm.org.apache.spark.sql.SaveMode.Overwrite, jvm.scala.Some(_scala_seq(spark, [partition])),
        jvm.scala.Some(where), jvm.scala.Some(metadata), *(getattr(defaults, f"apply$default${n}")() for n in range(5, 10)))


def _file_path(path: str, name: str) -> str:
    """A data file's path from its name in the log: relative to the table (URI-encoded), as Delta writes it,
    or absolute when Delta says so."""
    return unquote(name) if "://" in name or name.startswith("/") else f"{path.rstrip('/')}/{unquote(name)}"


def _observed(observation: Observation | None) -> dict[str, Any] | None:
    """The values of ``observation`` once Spark hands them over (its listener does, just after the write's
    job ends); None when it does not within :data:`OBSERVED_SECONDS`."""
    if observation is None:
        return None
    future = observation._jo.future()  # noqa: SLF001 - waited for without blocking for ever
    deadline = time.monotonic() + OBSERVED_SECONDS
    while not future.isCompleted():
        if time.monotonic() > deadline:
            log.warning("the write's observed values did not arrive in %d s; the gate reads its files",
                        OBSERVED_SECONDS)
            return None
        time.sleep(0.01)
    return observation.get


def _statistics(text: str | None, partition: str | None) -> FileStatistics | None:
    """A file's statistics from the ``stats`` JSON of its AddFile action (None without, or with loose bounds)."""
    if not text:
        return None
    stats = json.loads(text)
    if "numRecords" not in stats or stats.get("tightBounds") is False:
        return None
    return FileStatistics(partition, int(stats["numRecords"]), {k: int(v) for k, v in stats.get("nullCount", {}).items()
                                                                  if isinstance(v, int)},
                          stats.get("minValues", {}), stats.get("maxValues", {}))
