"""Delta tables read without Spark: the rows of a table's latest version, from its log and its parquet files.

Read-only commands (``kiln status``, ``show``, ``report``) look at a few small
tables; a JVM would cost them seconds before the first byte is read. This
module reads the latest version of a table as Delta's reader does:

- the live files, the schema and the protocol come from the log, replayed from
  its newest checkpoint (:meth:`featurekiln.offline.delta_log.DeltaLog.state`);
- each live file is read with pyarrow, local or in the object store
  (:mod:`featurekiln.warehouse_files`), and its partition values become columns;
- the columns are cast to the table's schema (``metaData.schemaString``) and
  returned in its order; a column that an older file lacks reads as nulls.

Row counts come from each file's statistics (``numRecords``), or from its
parquet footer when a file has none, as Spark's Delta answers ``count(*)``.
:func:`python_rows` gives the values as PySpark's ``collect()`` does: ints,
floats, str, ``date``, ``Decimal``, lists, dicts, and a ``timestamp`` (an
instant) as a naive ``datetime`` in the process's local time zone; a struct
as a dict (``Row.asDict(recursive=True)``).

Only the protocol features featurekiln's tables use are read:
``timestampNtz``, ``vacuumProtocolCheck``, and ``columnMapping`` and
``deletionVectors`` while unused (mode ``none``, no file with a deletion
vector). Any other table is a :class:`~featurekiln.errors.TableError` that says
to read it with Spark, never a wrong answer.
"""

from __future__ import annotations

import calendar
import io
import json
import re
import struct
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from featurekiln.errors import TableError
from featurekiln.offline.delta_log import DeltaLog, LogState
from featurekiln.settings import Settings
from featurekiln.warehouse_files import Files

if TYPE_CHECKING:
    import pyarrow as pa

# Reader features whose tables read the same as without them, as long as what they enable is unused.
_READABLE_FEATURES = frozenset({"timestampNtz", "vacuumProtocolCheck", "columnMapping", "deletionVectors"})
_DECIMAL = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")
# Parallel reads of a table's files: an object store answers each GET in tens of milliseconds.
_READ_THREADS = 8


def _arrow_type(kind: object) -> pa.DataType | None:
    """The arrow type of a Delta primitive type; None for a nested type (kept as the file has it)."""
    import pyarrow as pa

    primitive = {
        "string": pa.string(), "long": pa.int64(), "integer": pa.int32(), "short": pa.int16(), "byte": pa.int8(),
        "double": pa.float64(), "float": pa.float32(), "boolean": pa.bool_(), "binary": pa.binary(),
        "date": pa.date32(), "timestamp": pa.timestamp("us", tz="UTC"), "timestamp_ntz": pa.timestamp("us"),
    }
    if not isinstance(kind, str):
        return None
    match = _DECIMAL.match(kind)
    if match:
        return pa.decimal128(int(match.group(1)), int(match.group(2)))
    if kind not in primitive:
        raise TableError(f"Delta type {kind!r} is not one featurekiln reads without Spark")
    return primitive[kind]


def _partition_value(text: str | None, kind: object) -> object:
    """A partition value as the log serialises it (a string; null or empty for null) in its column's type."""
    if text is None or text == "":
        return None
    if kind == "date":
        return date.fromisoformat(text)
    if kind in ("long", "integer", "short", "byte"):
        return int(text)
    if kind in ("double", "float"):
        return float(text)
    if kind == "boolean":
        return text.lower() == "true"
    if kind == "timestamp":
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    if kind == "timestamp_ntz":
        return datetime.fromisoformat(text)
    if isinstance(kind, str) and _DECIMAL.match(kind):
        return Decimal(text)
    if kind == "string":
        return text
    raise TableError(f"partition values of Delta type {kind!r} are not read without Spark")


@dataclass(frozen=True)
class DeltaSnapshot:
    """The latest version of the Delta table at ``path``: its schema and its live files, read on demand.

    Attributes:
        path: the table's location (a local path or an object-store URI).
        version: the table's latest version.
        columns: the schema's column names, in the schema's order (Spark's ``frame.columns``).
        types: each column's Delta type (a string, or a dict for a nested type).
        partition_columns: the columns the table is partitioned by.
        files: the live ``add`` actions.
        store: the files below ``path`` (:mod:`featurekiln.warehouse_files`).
    """

    path: str
    version: int
    columns: list[str]
    types: dict[str, object]
    partition_columns: list[str]
    files: list[dict[str, Any]]
    store: Files

    def partitions(self, add: Mapping[str, Any]) -> dict[str, object]:
        """The typed partition values of one live file."""
        values = add.get("partitionValues") or {}
        return {c: _partition_value(values.get(c), self.types[c]) for c in self.partition_columns}

    def _records(self, add: Mapping[str, Any]) -> int:
        stats = json.loads(add["stats"]) if isinstance(add.get("stats"), str) else {}
        if isinstance(stats.get("numRecords"), int):
            return stats["numRecords"]
        import pyarrow.parquet as pq

        return pq.ParquetFile(io.BytesIO(self.store.read(self._file_path(add)))).metadata.num_rows

    def count(self, where: Mapping[str, object] | None = None) -> int:
        """The rows (``count(*)``) of the files whose partition values equal ``where`` (every file without it),
        as :meth:`read` chooses them."""
        return sum(self._records(add) for add in self._chosen(where))

    def max_partition(self, column: str) -> object:
        """The largest value of partition ``column`` among the table's rows; None when the table has no row."""
        values = [self.partitions(add)[column] for add in self.files if self._records(add) > 0]
        return max((v for v in values if v is not None), default=None)

    def _file_path(self, add: Mapping[str, Any]) -> str:
        relative = unquote(add["path"])
        return relative if "://" in relative or relative.startswith("/") else f"{self.path}/{relative}"

    def read(self, where: Mapping[str, object] | None = None) -> pa.Table:
        """The rows of the files whose partition values equal ``where`` (every row without it), in the schema.

        Args:
            where: partition column -> value (typed as the column, e.g. a ``date`` for ``ds``).

        Raises:
            TableError: ``where`` names a column that is not a partition column.
        """
        import pyarrow as pa

        with ThreadPoolExecutor(_READ_THREADS) as pool:
            parts = list(pool.map(self._read_file, self._chosen(where)))
        if not parts:
            return pa.Table.from_arrays([pa.nulls(0, type=self._empty_type(c)) for c in self.columns], names=self.columns)
        return pa.concat_tables(parts, promote_options="permissive")

    def _chosen(self, where: Mapping[str, object] | None) -> list[dict[str, Any]]:
        """The live files whose partition values equal ``where`` (typed as the columns); all without it."""
        unknown = set(where or {}) - set(self.partition_columns)
        if unknown:
            raise TableError(f"{self.path}: {sorted(unknown)} are not partition columns of the table")
        return [a for a in self.files if all(self.partitions(a)[c] == v for c, v in (where or {}).items())]

    def _empty_type(self, column: str) -> pa.DataType:
        import pyarrow as pa

        return _arrow_type(self.types[column]) or pa.null()

    def _read_file(self, add: Mapping[str, Any]) -> pa.Table:
        import pyarrow as pa
        import pyarrow.parquet as pq

        # ParquetFile rather than read_table: read_table loads pyarrow.dataset, and with it pandas.
        data = pq.ParquetFile(io.BytesIO(self.store.read(self._file_path(add)))).read()
        partitions = self.partitions(add)
        arrays = []
        for column in self.columns:
            target = _arrow_type(self.types[column])
            if column in partitions:
                text = (add.get("partitionValues") or {}).get(column)
                arrays.append(_repeated(text, data.num_rows, target) if partitions[column] is not None
                              else pa.nulls(data.num_rows, type=target))
            elif column not in data.column_names:
                arrays.append(pa.nulls(data.num_rows, type=target or pa.null()))
            else:
                arrays.append(_cast(data.column(column), target))
        return pa.Table.from_arrays(arrays, names=self.columns)


def _repeated(text: str, rows: int, target: pa.DataType) -> pa.Array:
    """A partition value (as the log serialises it) repeated ``rows`` times, in the column's type.

    Built from buffers and cast by Arrow: ``pa.array`` and ``pa.scalar`` of Python
    values import pandas, which would cost a read-only command more than its reading.
    """
    import pyarrow as pa

    data = text.removesuffix("Z").encode()
    one = pa.Array.from_buffers(pa.string(), 1, [None, pa.py_buffer(struct.pack("<ii", 0, len(data))), pa.py_buffer(data)])
    if pa.types.is_timestamp(target) and target.tz is not None:
        one = one.cast(pa.timestamp("us"))  # the log writes an instant in UTC
    first = pa.Array.from_buffers(pa.int32(), rows, [None, pa.py_buffer(bytes(4 * rows))])
    return one.cast(target).take(first)


def _cast(values: pa.ChunkedArray, target: pa.DataType | None) -> pa.ChunkedArray:
    """A file's column in the schema's type; Spark's INT96 timestamps (naive, UTC) become UTC instants."""
    import pyarrow as pa

    if target is None or values.type == target:
        return values
    if pa.types.is_timestamp(values.type) and pa.types.is_timestamp(target) and values.type.unit != "us":
        values = values.cast(pa.timestamp("us", tz=values.type.tz))
    return values.cast(target)


def _check_protocol(path: str, state: LogState) -> None:
    protocol, configuration = state.protocol, state.metadata.get("configuration") or {}
    features = set(protocol.get("readerFeatures") or [])
    if int(protocol.get("minReaderVersion", 1)) > 3 or features - _READABLE_FEATURES:
        unread = sorted(features - _READABLE_FEATURES) or [f"reader version {protocol.get('minReaderVersion')}"]
        raise TableError(f"{path}: the table uses {', '.join(unread)}, which featurekiln reads only with Spark")
    if configuration.get("delta.columnMapping.mode", "none") != "none":
        raise TableError(f"{path}: the table maps its column names, which featurekiln reads only with Spark")
    if any(add.get("deletionVector") for add in state.files.values()):
        raise TableError(f"{path}: the table has deletion vectors, which featurekiln reads only with Spark")


def open_table(path: str, settings: Settings) -> DeltaSnapshot | None:
    """The latest version of the Delta table at ``path``; None when there is no table there.

    Raises:
        TableError: the table's log cannot be read without Spark, or it uses a
            protocol feature that this reader does not read.
        ObjectStoreError: the object store cannot be reached.
    """
    log = DeltaLog.of(path, settings)
    if not log.exists():
        return None
    state = log.state()
    _check_protocol(log.path, state)
    schema = json.loads(state.metadata.get("schemaString") or '{"fields": []}')
    types = {f["name"]: f["type"] for f in schema["fields"]}
    return DeltaSnapshot(log.path, state.version, list(types), types, list(state.metadata.get("partitionColumns") or []),
                         list(state.files.values()), log.files)


def sort_rows(table: pa.Table, keys: Sequence[str], descending: bool = False, limit: int | None = None) -> pa.Table:
    """``table`` ordered by ``keys`` as Spark's ``orderBy`` orders them (nulls first ascending, last descending)."""
    import pyarrow.compute as pc

    order, nulls = ("descending", "at_end") if descending else ("ascending", "at_start")
    indices = pc.sort_indices(table, options=pc.SortOptions([(k, order, nulls) for k in keys]))
    return table.take(indices if limit is None else indices[:limit])


def _local_naive(utc: datetime) -> datetime:
    """An instant (a naive UTC or an aware datetime) as pyspark's ``TimestampType.fromInternal`` gives it: in the
    process's local time, without a zone."""
    seconds = calendar.timegm(utc.utctimetuple())  # whole seconds, exact (a float would round)
    return datetime.fromtimestamp(seconds).replace(microsecond=utc.microsecond)


def _spark_value(value: object) -> object:
    """One value as PySpark's ``collect()`` gives it."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return _local_naive(value)
    if isinstance(value, list):
        return [_spark_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _spark_value(v) for k, v in value.items()}
    return value


def python_rows(table: pa.Table) -> list[dict[str, Any]]:
    """The rows of ``table`` as dicts of plain Python values, as PySpark's ``Row.asDict(recursive=True)`` gives them."""
    import pyarrow as pa

    maps = {f.name for f in table.schema if pa.types.is_map(f.type)}
    # Instants are taken without their zone (the same UTC values): pyarrow converts a zoned one through pandas.
    instants = {f.name for f in table.schema if pa.types.is_timestamp(f.type) and f.type.tz is not None}
    for column in instants:
        index = table.schema.get_field_index(column)
        table = table.set_column(index, column, table.column(column).cast(pa.timestamp(table.schema.field(column).type.unit)))
    rows = table.to_pylist()
    for row in rows:
        for column, value in row.items():
            if value is None:
                continue
            if column in instants:
                row[column] = _local_naive(value)
            else:
                row[column] = dict(value) if column in maps else _spark_value(value)
    return rows
