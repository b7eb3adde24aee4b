"""Push a published snapshot from the Spark executors into the online store.

Each Spark task opens its own store client (only the pydantic config and the
:class:`OnlineTable` are shipped), turns its Arrow batches into wire rows and
writes them in batches; newer wins per key, so tasks may run in any order, be
retried, or overlap with another push. When every task has finished the
driver records the pushed ``ds`` as the view's newest and sweeps the rows
older than the newest ``ds`` (keys absent from the snapshot). A push that
dies midway leaves each key old or new; running it again completes it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from featurekiln.errors import OnlineStoreError
from featurekiln.online.codec import day_from_number, day_number
from featurekiln.online.config import online_store_config, open_store
from featurekiln.online.protocol import OnlineTable, StoreConfig, WireRow, online_table

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import Column as SparkColumn
    from pyspark.sql import DataFrame, SparkSession

    from featurekiln.settings import Settings
    from featurekiln.definitions.models import FeatureView

SECONDS_PER_DAY = 86_400
_TASK_ERROR = re.compile(r"(featurekiln\.[\w.]*Error: .*)")


@dataclass(frozen=True)
class PushResult:
    """What a push did.

    Attributes:
        view: the view name.
        ds: the pushed snapshot day.
        store: the store, as text.
        rows: rows in the snapshot.
        written: rows that replaced an older (or differing same-day) row or were new.
        skipped: rows not written: the store held a newer row, or the same one.
        deleted: rows removed by the sweep (keys absent from the newest snapshot).
        newest: the newest pushed day after this push (later than ``ds`` if a newer push came first).
        seconds: wall time of the push.
    """

    view: str
    ds: date
    store: str
    rows: int
    written: int
    skipped: int
    deleted: int
    newest: date
    seconds: float


def expire_seconds(table: OnlineTable) -> int:
    """Storage expiry of a pushed row: the view's ttl, counted from the push (Redis EXPIRE, DynamoDB TTL)."""
    return table.ttl_days * SECONDS_PER_DAY


def write_batches(config: StoreConfig, table: OnlineTable, batches: Iterator[Sequence[WireRow]]) -> tuple[int, int]:
    """Write batches of wire rows through one store client; return (written, skipped).

    The client is opened at the first non-empty batch and closed at the end.
    """
    store = None
    written = skipped = 0
    try:
        for rows in batches:
            if not rows:
                continue
            if store is None:
                store = open_store(config)
            done = store.write_rows(table, rows, expire_seconds(table))
            written += done
            skipped += len(rows) - done
    finally:
        if store is not None:
            store.close()
    return written, skipped


def partition_writer(config: StoreConfig, table: OnlineTable) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The ``mapInArrow`` function of a push: write each Arrow batch, yield one row of counts."""

    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        rows = (list(zip(*(column.to_pylist() for column in batch.columns), strict=True)) for batch in batches)
        written, skipped = write_batches(config, table, rows)
        yield pa.RecordBatch.from_pydict(
            {"written": pa.array([written], pa.int64()), "skipped": pa.array([skipped], pa.int64())}
        )

    return write


def wire_columns(table: OnlineTable) -> list[SparkColumn]:
    """Spark expressions that turn a feature table's columns into wire values (days, micros, doubles)."""
    from pyspark.sql import functions as F

    out = []
    for column in table.columns:
        value = F.col(column.name)
        if column.kind == "date":
            value = F.unix_date(value)
        elif column.kind == "timestamp":
            value = F.unix_micros(value)
        elif column.kind == "float":
            value = value.cast("double")
        elif column.kind == "int":
            value = value.cast("long")
        out.append(value.alias(column.name))
    return out


def finish_push(config: StoreConfig, table: OnlineTable, ds: date) -> tuple[int, int]:
    """Record ``ds`` as pushed and sweep rows older than the newest pushed day; return (newest, deleted)."""
    store = open_store(config)
    try:
        newest = store.advance_newest(table, day_number(ds))
        return newest, store.delete_older(table, newest)
    finally:
        store.close()


def _prepare(config: StoreConfig, table: OnlineTable) -> None:
    store = open_store(config)
    try:
        store.ensure_table(table)
    finally:
        store.close()


def _result(config: StoreConfig, table: OnlineTable, ds: date, counts: tuple[int, int], started: float) -> PushResult:
    newest, deleted = finish_push(config, table, ds)
    return PushResult(
        view=table.name,
        ds=ds,
        store=config.describe(),
        rows=counts[0] + counts[1],
        written=counts[0],
        skipped=counts[1],
        deleted=deleted,
        newest=day_from_number(newest),
        seconds=time.perf_counter() - started,
    )


def push_rows(config: StoreConfig, table: OnlineTable, ds: date, rows: Sequence[WireRow], batch_size: int = 10_000) -> PushResult:
    """Push snapshot ``ds`` given as wire rows from this process (no Spark): the same steps as :func:`push_snapshot`."""
    started = time.perf_counter()
    _prepare(config, table)
    batches = (rows[i : i + batch_size] for i in range(0, len(rows), batch_size))
    return _result(config, table, ds, write_batches(config, table, batches), started)


def push_snapshot(
    frame: DataFrame, table: OnlineTable, config: StoreConfig, ds: date, partitions: int | None = None
) -> PushResult:
    """Push the rows of snapshot ``ds`` (``frame``: one feature-table row per key) into the store.

    Args:
        frame: the snapshot's rows with the key, ``ds``, ``feature_ts`` and feature columns.
        partitions: repartition to this many Spark tasks first (None: keep the frame's partitioning).

    Raises:
        OnlineStoreError: the store is unreachable or a task failed (running the push again completes it).
    """
    started = time.perf_counter()
    _prepare(config, table)
    wire = frame.select(*wire_columns(table))
    if partitions:
        wire = wire.repartition(partitions)
    try:
        # One row of counts per task (not the snapshot) comes back to the driver.
        counts = wire.mapInArrow(partition_writer(config, table), "written long, skipped long").collect()
    except Exception as error:  # pyspark wraps the task's error; keep its last featurekiln line
        if isinstance(error, OnlineStoreError):
            raise
        found = _TASK_ERROR.findall(str(error))
        reason = found[-1] if found else str(error).strip().splitlines()[0]
        raise OnlineStoreError(
            f"{table.name}: push of ds={ds} to {config.describe()} failed in a Spark task: {reason}; "
            "keys already written hold the new snapshot and running the push again completes it"
        ) from error
    return _result(config, table, ds, (sum(c.written for c in counts), sum(c.skipped for c in counts)), started)


def latest_snapshot_day(spark: SparkSession, settings: Settings, view: FeatureView) -> date:
    """The latest ``ds`` of the view's feature table.

    Raises:
        TableError: the table does not exist.
        OnlineStoreError: the table is empty.
    """
    from featurekiln.offline.delta_table import read_table

    day = read_table(spark, settings, view.name).agg({"ds": "max"}).first()[0]
    if day is None:
        raise OnlineStoreError(f"{view.name}: the feature table is empty; nothing to push")
    return day


def require_online(view: FeatureView) -> None:
    """Raise unless the view's definition sets ``online: true``.

    Raises:
        OnlineStoreError: the view is not an online view.
    """
    if not view.online:
        raise OnlineStoreError(f"{view.name}: the definition does not set `online: true`, so it is not pushed online")


def push_view(spark: SparkSession, view: FeatureView, settings: Settings, ds: date | None = None) -> PushResult:
    """Push snapshot ``ds`` (default: the latest) of an online view's feature table to the configured store.

    The caller checks that the snapshot is validated and published.

    Raises:
        OnlineStoreError: the view is not ``online: true``, the table has no snapshot ``ds``, the store
            setting is invalid or the store is unreachable.
        TableError: the feature table does not exist.
    """
    from pyspark.sql import functions as F

    from featurekiln.offline.delta_table import read_table

    require_online(view)
    config = online_store_config(settings)
    frame = read_table(spark, settings, view.name)
    day = ds if ds is not None else latest_snapshot_day(spark, settings, view)
    snapshot = frame.where(F.col("ds") == F.lit(day))
    if ds is not None and not snapshot.limit(1).count():
        latest = frame.agg({"ds": "max"}).first()[0]
        raise OnlineStoreError(
            f"{view.name}: the feature table has no snapshot ds={ds} (latest: {latest or 'none, the table is empty'})"
        )
    return push_snapshot(snapshot, online_table(view, frame.schema), config, day)


def pushed_day(view: FeatureView, settings: Settings) -> date | None:
    """The newest snapshot day whose push to the configured store completed (None before the first push).

    Raises:
        OnlineStoreError: the store setting is invalid or the store is unreachable.
    """
    store = open_store(online_store_config(settings))
    try:
        newest = store.read_rows(view.name, []).newest
    finally:
        store.close()
    return None if newest is None else day_from_number(newest)
