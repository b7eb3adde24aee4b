"""Does the online store serve what the latest published snapshot holds? (``kiln check-online``)

Two directions, each on a sample (or everything):

- table -> store: keys of the latest snapshot are read back online in Spark tasks
  (each opens its own client, as a push does) and every served value is compared
  with the snapshot's, exactly and with its Python type: ``ds``, ``feature_ts`` and
  every feature. A key that is not served is *missing*; a key whose values differ is
  *mismatched*. Only counts and a few example lines come back to the driver.
- store -> table: keys stored online are listed (:meth:`OnlineStore.scan_keys`), the ones
  that are served (not hidden as older than the newest push) are looked up in the
  snapshot; a served key absent from it is *extra*. These keys pass through the driver,
  so a full check of this direction holds the store's keys in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from featurekiln.errors import OnlineStoreError
from featurekiln.online.codec import day_from_number, from_wire
from featurekiln.online.config import online_store_config, open_store
from featurekiln.online.protocol import OnlineTable, StoreConfig, online_table
from featurekiln.online.push import latest_snapshot_day, require_online, wire_columns
from featurekiln.online.read import decode_rows

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

    from featurekiln.definitions.models import FeatureView
    from featurekiln.settings import Settings

EXAMPLES = 10
_READ_BATCH = 500


class OnlineMismatchError(OnlineStoreError):
    """The online store does not serve what the latest published snapshot holds."""

    def __init__(self, report: ConsistencyReport) -> None:
        self.report = report
        super().__init__(report.summary())

    @property
    def problems(self) -> list[str]:
        return [str(self), *self.report.examples]


@dataclass(frozen=True)
class ConsistencyReport:
    """What a check found.

    Attributes:
        view: the view name.
        ds: the latest snapshot of the feature table.
        online_ds: the newest completed push online (None: never pushed).
        store: the store, as text.
        compared: snapshot keys read back online.
        scanned: stored keys checked against the snapshot.
        mismatched: compared keys served with other values.
        missing: compared keys not served.
        extra: scanned keys served but absent from the snapshot.
        examples: a few differences, one line each.
    """

    view: str
    ds: date
    online_ds: date | None
    store: str
    compared: int
    scanned: int
    mismatched: int
    missing: int
    extra: int
    examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing differs."""
        return not (self.mismatched or self.missing or self.extra)

    def summary(self) -> str:
        """One line: the counts and the days compared."""
        verdict = "consistent" if self.ok else "DIFFERENT"
        return (
            f"{self.view}: online {verdict} with snapshot ds={self.ds} (online newest ds={self.online_ds or 'none'}, "
            f"{self.store}): {self.compared} snapshot keys read back: {self.mismatched} mismatched, {self.missing} "
            f"missing online; {self.scanned} stored keys checked: {self.extra} extra online"
        )


def _key_text(table: OnlineTable, key: tuple[Any, ...]) -> str:
    return " ".join(f"{c.name}={from_wire(c.kind, v)}" for c, v in zip(table.keys, key, strict=True))


def _offline(table: OnlineTable, row: tuple[Any, ...]) -> dict[str, Any]:
    width = len(table.keys)
    values = {"ds": day_from_number(row[width]), "feature_ts": from_wire("timestamp", row[width + 1])}
    for column, value in zip(table.features, row[width + 2 :], strict=True):
        values[column.name] = from_wire(column.kind, value)
    return values


def compare_rows(table: OnlineTable, rows: list[tuple[Any, ...]], served: list[dict[str, Any] | None]) -> tuple[int, int, list[str]]:
    """Compare snapshot wire rows with what is served for their keys: (mismatched, missing, example lines).

    Values are equal when they are equal *and* of the same Python type (``1`` is not ``1.0`` nor ``True``).
    """
    mismatched = missing = 0
    examples: list[str] = []
    for row, online in zip(rows, served, strict=True):
        key = _key_text(table, tuple(row[: len(table.keys)]))
        if online is None:
            missing += 1
            if len(examples) < EXAMPLES:
                examples.append(f"missing online: {table.name} {key}")
            continue
        differ = [
            f"{name}: table {value!r}, online {online[name]!r}"
            for name, value in _offline(table, row).items()
            if type(value) is not type(online[name]) or value != online[name]
        ]
        if differ:
            mismatched += 1
            if len(examples) < EXAMPLES:
                examples.append(f"mismatch: {table.name} {key}: {'; '.join(differ)}")
    return mismatched, missing, examples


def _checker(config: StoreConfig, table: OnlineTable):  # noqa: ANN202 - a mapInArrow function
    def check(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        store = open_store(config)
        compared = mismatched = missing = 0
        examples: list[str] = []
        width = len(table.keys)
        try:
            for batch in batches:
                rows = list(zip(*(column.to_pylist() for column in batch.columns), strict=True))
                for start in range(0, len(rows), _READ_BATCH):
                    part = rows[start : start + _READ_BATCH]
                    keys = [tuple(r[:width]) for r in part]
                    served = decode_rows(table, keys, store.read_rows(table.name, keys))
                    counts = compare_rows(table, part, served)
                    compared += len(part)
                    mismatched += counts[0]
                    missing += counts[1]
                    examples += counts[2][: EXAMPLES - len(examples)]
        finally:
            store.close()
        yield pa.RecordBatch.from_pydict(
            {
                "compared": pa.array([compared], pa.int64()),
                "mismatched": pa.array([mismatched], pa.int64()),
                "missing": pa.array([missing], pa.int64()),
                "examples": pa.array(["\n".join(examples)], pa.string()),
            }
        )

    return check


def _extra_keys(spark: SparkSession, snapshot: DataFrame, table: OnlineTable, config: StoreConfig, sample: int | None) -> tuple[int, list[tuple[Any, ...]]]:
    """(stored keys checked, served keys absent from the snapshot)."""
    store = open_store(config)
    try:
        stored = store.scan_keys(table.name, sample)
        served = [k for k, row in zip(stored, decode_rows(table, stored, store.read_rows(table.name, stored)), strict=True) if row]
    finally:
        store.close()
    if not served:
        return len(stored), []
    spark_types = {"int": "bigint", "float": "double", "string": "string", "bool": "boolean", "date": "int", "timestamp": "bigint"}
    names = [c.name for c in table.keys]
    schema = ", ".join(f"`{c.name}` {spark_types[c.kind]}" for c in table.keys)
    online_keys = spark.createDataFrame(served, schema)
    table_keys = snapshot.select(*wire_columns(table)[: len(names)])
    extra = online_keys.join(table_keys, on=names, how="left_anti").collect()
    return len(stored), [tuple(r) for r in extra]


def check_online(spark: SparkSession, view: FeatureView, settings: Settings, sample: int | None = 1000, seed: int = 0) -> ConsistencyReport:
    """Compare the online store with the latest snapshot of ``view``'s feature table.

    Args:
        sample: how many keys to check in each direction (random snapshot keys; stored keys
            in the backend's order, random for SQLite); None checks every key.
        seed: the seed of the snapshot sample.

    Raises:
        OnlineStoreError: the view is not online, the table is empty or the store unreachable.
        TableError: the feature table does not exist.
    """
    from pyspark.sql import functions as F

    from featurekiln.offline.delta_table import read_table

    require_online(view)
    config = online_store_config(settings)
    frame = read_table(spark, settings, view.name)
    day = latest_snapshot_day(spark, settings, view)
    table = online_table(view, frame.schema)
    snapshot = frame.where(F.col("ds") == F.lit(day))
    store = open_store(config)
    try:
        meta = store.read_rows(view.name, [])
    finally:
        store.close()
    if meta.schema is None:
        raise OnlineStoreError(f"{view.name}: not in the online store {config.describe()}; run `kiln push {view.name}`")
    if OnlineTable.from_json(meta.schema) != table:
        raise OnlineStoreError(f"{view.name}: the online table has another shape than the feature table; push it again")
    picked = snapshot if sample is None else snapshot.orderBy(F.rand(seed)).limit(sample)
    counts = picked.select(*wire_columns(table)).mapInArrow(
        _checker(config, table), "compared long, mismatched long, missing long, examples string"
    ).collect()
    scanned, extra = _extra_keys(spark, snapshot, table, config, sample)
    examples = [line for c in counts for line in c.examples.splitlines()][:EXAMPLES]
    examples += [f"extra online: {view.name} {_key_text(table, key)}" for key in extra[: EXAMPLES]]
    return ConsistencyReport(
        view=view.name,
        ds=day,
        online_ds=None if meta.newest is None else day_from_number(meta.newest),
        store=config.describe(),
        compared=sum(c.compared for c in counts),
        scanned=scanned,
        mismatched=sum(c.mismatched for c in counts),
        missing=sum(c.missing for c in counts),
        extra=len(extra),
        examples=examples,
    )
