"""The OnlineStore seam: what every backend (sqlite, redis, dynamodb) implements.

Rows cross the seam in *wire form*, the same for every backend and for the
Spark push: ints, floats, strings, bools and None; a ``date`` is its day number
since 1970-01-01 and a timestamp its microseconds since the epoch (UTC). A row
to write is ``(*key, ds, feature_ts, *features)``; a row read back is
``(ds, feature_ts, *features)``. :mod:`featurekiln.online.codec` converts.

Newer wins: a write replaces a stored row only when the stored ``ds`` is older,
or equal with other values (a corrected re-run of the same day), atomically per
key. Each view also has a meta record: its :class:`OnlineTable` (as JSON) and
the newest ``ds`` whose push completed; reads hide rows older than that ``ds``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, PrivateAttr

from featurekiln.errors import OnlineStoreError

if TYPE_CHECKING:
    from pyspark.sql.types import StructType

    from featurekiln.definitions.models import FeatureView

Kind = Literal["int", "float", "string", "bool", "date", "timestamp"]
WireRow = Sequence[Any]
WireKey = tuple[Any, ...]

_SPARK_KINDS: dict[str, Kind] = {
    "tinyint": "int",
    "smallint": "int",
    "int": "int",
    "bigint": "int",
    "float": "float",
    "double": "float",
    "string": "string",
    "boolean": "bool",
    "date": "date",
    "timestamp": "timestamp",
    "timestamp_ntz": "timestamp",
}


@dataclass(frozen=True)
class Column:
    """One column online: its name and its simple kind."""

    name: str
    kind: Kind


@dataclass(frozen=True)
class OnlineTable:
    """What the online store keeps of one view: key columns, feature columns, ttl.

    Every online row also has ``ds`` (date) and ``feature_ts`` (timestamp).
    """

    name: str
    keys: tuple[Column, ...]
    features: tuple[Column, ...]
    ttl_days: int

    def to_json(self) -> str:
        """The table as compact JSON (stored in the meta record; equal tables give equal text)."""
        body = {
            "name": self.name,
            "keys": [[c.name, c.kind] for c in self.keys],
            "features": [[c.name, c.kind] for c in self.features],
            "ttl_days": self.ttl_days,
        }
        return json.dumps(body, separators=(",", ":"))

    @staticmethod
    def from_json(text: str | bytes) -> OnlineTable:
        """Parse :meth:`to_json` output (cached: reads parse the same text over and over)."""
        return _parse_table(text if isinstance(text, str) else text.decode())

    @property
    def columns(self) -> tuple[Column, ...]:
        """Every column of a wire row to write: keys, ``ds``, ``feature_ts``, features."""
        return (*self.keys, Column("ds", "date"), Column("feature_ts", "timestamp"), *self.features)


@lru_cache(maxsize=256)
def _parse_table(text: str) -> OnlineTable:
    body = json.loads(text)
    return OnlineTable(
        name=body["name"],
        keys=tuple(Column(n, k) for n, k in body["keys"]),
        features=tuple(Column(n, k) for n, k in body["features"]),
        ttl_days=int(body["ttl_days"]),
    )


def kind_of(spark_type: str, column: str, view: str) -> Kind:
    """The online kind of a Spark column type (``DataType.simpleString()``).

    Raises:
        OnlineStoreError: the type has no online kind (arrays, maps, structs).
    """
    if spark_type in _SPARK_KINDS:
        return _SPARK_KINDS[spark_type]
    if spark_type.startswith("decimal"):
        return "float"
    if spark_type.startswith(("varchar", "char")):
        return "string"
    raise OnlineStoreError(f"{view}: column {column} has type {spark_type}, which the online store cannot hold")


def online_table(view: FeatureView, schema: StructType) -> OnlineTable:
    """The online description of ``view`` from its feature table's Spark schema.

    Raises:
        OnlineStoreError: a key or feature column is missing from the schema or has no online kind.
    """
    types = {f.name: f.dataType.simpleString() for f in schema.fields}

    def column(name: str) -> Column:
        if name not in types:
            raise OnlineStoreError(f"{view.name}: the feature table has no column {name}; backfill it again")
        return Column(name, kind_of(types[name], name, view.name))

    return OnlineTable(
        name=view.name,
        keys=tuple(column(k) for k in view.keys),
        features=tuple(column(f.name) for f in view.features),
        ttl_days=view.ttl_days,
    )


@dataclass(frozen=True)
class ReadResult:
    """What a backend read returns, in one round trip.

    Attributes:
        schema: the view's :class:`OnlineTable` JSON, or None when the view is not online.
        newest: day number of the newest completed push, or None before the first one.
        rows: per requested key in order, ``(ds, feature_ts, *features)`` or None.
    """

    schema: str | None
    newest: int | None
    rows: list[WireRow | None]


class StoreConfig(BaseModel):
    """Base of the backends' configs: frozen, unknown fields forbidden, remembers its origin."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    _origin: str = PrivateAttr(default="the default online store")

    @property
    def origin(self) -> str:
        """Where the setting came from, e.g. ``KILN_ONLINE_STORE`` or ``kiln.yaml:4``."""
        return self._origin

    def with_origin(self, origin: str) -> StoreConfig:
        """A copy that names ``origin`` in its error messages."""
        copy = self.model_copy()
        copy._origin = origin  # noqa: SLF001 - a copy of this class's own private attribute
        return copy

    def describe(self) -> str:
        """The store as a short text for messages (no secrets)."""
        raise NotImplementedError


class OnlineStore(Protocol):
    """One online store backend. Methods are safe to call from several threads and processes."""

    def ensure_table(self, table: OnlineTable) -> None:
        """Create the view's table and meta record; a table of another shape is dropped and recreated."""

    def write_rows(self, table: OnlineTable, rows: Sequence[WireRow], expire_seconds: int = 0) -> int:
        """Write ``(*key, ds, feature_ts, *features)`` rows, newer wins per key; return how many were written.

        ``expire_seconds`` > 0 sets the backend's storage expiry (Redis EXPIRE, DynamoDB TTL).
        """

    def read_rows(self, name: str, keys: Sequence[WireKey]) -> ReadResult:
        """Read the rows of ``keys`` and the view's meta record in one round trip where the backend allows."""

    def advance_newest(self, table: OnlineTable, ds: int) -> int:
        """Record that the push of day number ``ds`` completed; return the newest day (never goes back)."""

    def delete_older(self, table: OnlineTable, ds: int) -> int:
        """Delete every row whose ``ds`` is older than day number ``ds``; return how many."""

    def delete_keys(self, name: str, keys: Sequence[WireKey]) -> None:
        """Delete the rows of ``keys`` whatever their ``ds`` (absent keys are ignored)."""

    def scan_keys(self, name: str, limit: int | None = None) -> list[WireKey]:
        """Up to ``limit`` stored keys of the view (None: all), whatever their ``ds``, in the backend's order."""

    def drop(self, name: str) -> None:
        """Remove the view's table and meta record (no error when absent)."""

    def close(self) -> None:
        """Release connections."""
