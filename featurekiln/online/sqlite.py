"""SQLite online store: the embedded default, one file (under the warehouse unless configured).

Layout: one table per view named after it, the key columns as a composite
PRIMARY KEY of a ``WITHOUT ROWID`` table (the rows live in the key's B-tree, so a
lookup is one probe), then ``ds`` (day number), ``feature_ts`` (microseconds) and
one typed column per feature. ``_kiln_meta`` holds each view's schema and newest
completed push. WAL journal, ``synchronous=NORMAL``, a busy timeout so that
several Spark tasks can write one file; one transaction per batch.

Newer wins through ``INSERT ... ON CONFLICT (keys) DO UPDATE ... WHERE`` the
stored ``ds`` is older (or equal with other values).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from pydantic import Field

from featurekiln.online.errors import StoreUnavailableError
from featurekiln.online.protocol import OnlineTable, ReadResult, StoreConfig, WireKey, WireRow

_TYPES = {"int": "INTEGER", "float": "REAL", "string": "TEXT", "bool": "INTEGER", "date": "INTEGER", "timestamp": "INTEGER"}
_META = "CREATE TABLE IF NOT EXISTS _kiln_meta (view TEXT PRIMARY KEY, schema TEXT NOT NULL, newest_ds INTEGER) WITHOUT ROWID"
_READ_CHUNK = 500


class SqliteConfig(StoreConfig):
    """``sqlite:///path/to/online.db`` (three slashes and a relative path, four for an absolute one)."""

    type: Literal["sqlite"] = "sqlite"
    path: str = Field(min_length=1, description="the database file; its directory is created")
    batch_size: int = Field(default=10_000, ge=1, description="rows per write transaction")
    busy_timeout_ms: int = Field(default=60_000, ge=0, description="how long a writer waits for the lock")

    def describe(self) -> str:
        return f"sqlite:///{self.path}"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class SqliteStore:
    """The SQLite backend; one connection per thread."""

    def __init__(self, config: SqliteConfig) -> None:
        self.config = config
        self._local = threading.local()
        self._sql: dict[tuple[OnlineTable, str], str] = {}

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        path = Path(self.config.path)
        deadline = time.monotonic() + self.config.busy_timeout_ms / 1000
        while True:
            conn = None
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(
                    path, timeout=self.config.busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
                )
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(f"PRAGMA busy_timeout={self.config.busy_timeout_ms}")
                conn.execute(_META)
                break
            except sqlite3.OperationalError as error:
                if conn is not None:
                    conn.close()
                # Switching a new file to WAL while another connection opens it reports "locked"
                # without waiting on the busy timeout: try again until the timeout.
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise StoreUnavailableError(
                        f"cannot open the SQLite online store {path} ({self.config.origin}): {error}"
                    ) from error
                time.sleep(0.01)
            except (OSError, sqlite3.Error) as error:
                raise StoreUnavailableError(
                    f"cannot open the SQLite online store {path} ({self.config.origin}): {error}"
                ) from error
        self._local.conn = conn
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _statement(self, table: OnlineTable, what: str) -> str:
        cached = self._sql.get((table, what))
        if cached is not None:
            return cached
        name = _quote(table.name)
        keys = [_quote(c.name) for c in table.keys]
        values = [_quote(c.name) for c in (table.columns[len(table.keys) :])]
        if what == "create":
            columns = [f"{_quote(c.name)} {_TYPES[c.kind]} NOT NULL" for c in table.keys]
            columns += ["ds INTEGER NOT NULL", "feature_ts INTEGER NOT NULL"]
            columns += [f"{_quote(c.name)} {_TYPES[c.kind]}" for c in table.features]
            sql = f"CREATE TABLE IF NOT EXISTS {name} ({', '.join(columns)}, PRIMARY KEY ({', '.join(keys)})) WITHOUT ROWID"
        else:
            changed = " OR ".join(f"{name}.{v} IS NOT excluded.{v}" for v in values[1:])
            sql = (
                f"INSERT INTO {name} ({', '.join(keys + values)}) VALUES ({', '.join('?' * (len(keys) + len(values)))}) "
                f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {', '.join(f'{v} = excluded.{v}' for v in values)} "
                f"WHERE {name}.ds < excluded.ds OR ({name}.ds = excluded.ds AND ({changed}))"
            )
        self._sql[(table, what)] = sql
        return sql

    def ensure_table(self, table: OnlineTable) -> None:
        schema = table.to_json()
        with self._transaction() as conn:
            row = conn.execute("SELECT schema FROM _kiln_meta WHERE view = ?", (table.name,)).fetchone()
            if row is not None and row[0] != schema:
                conn.execute(f"DROP TABLE IF EXISTS {_quote(table.name)}")
                conn.execute("DELETE FROM _kiln_meta WHERE view = ?", (table.name,))
                row = None
            conn.execute(self._statement(table, "create"))
            if row is None:
                conn.execute("INSERT INTO _kiln_meta (view, schema, newest_ds) VALUES (?, ?, NULL)", (table.name, schema))

    def write_rows(self, table: OnlineTable, rows: Sequence[WireRow], expire_seconds: int = 0) -> int:
        sql = self._statement(table, "upsert")
        written = 0
        size = self.config.batch_size
        for start in range(0, len(rows), size):
            with self._transaction() as conn:
                before = conn.total_changes
                conn.executemany(sql, rows[start : start + size])
                written += conn.total_changes - before
        return written

    def read_rows(self, name: str, keys: Sequence[WireKey]) -> ReadResult:
        conn = self._connect()
        meta = conn.execute("SELECT schema, newest_ds FROM _kiln_meta WHERE view = ?", (name,)).fetchone()
        if meta is None:
            return ReadResult(None, None, [None] * len(keys))
        table = OnlineTable.from_json(meta[0])
        width = len(table.keys)
        found: dict[WireKey, WireRow] = {}
        for start in range(0, len(keys), _READ_CHUNK):
            chunk = keys[start : start + _READ_CHUNK]
            for row in conn.execute(self._select(table, len(chunk)), [v for key in chunk for v in key]):
                found[row[:width]] = row[width:]
        return ReadResult(meta[0], meta[1], [found.get(tuple(key)) for key in keys])

    def _select(self, table: OnlineTable, count: int) -> str:
        cached = self._sql.get((table, f"select{count}"))
        if cached is not None:
            return cached
        keys = [_quote(c.name) for c in table.keys]
        columns = ", ".join(_quote(c.name) for c in table.columns)
        if len(keys) == 1:
            where = f"{keys[0]} = ?" if count == 1 else f"{keys[0]} IN ({', '.join('?' * count)})"
        else:
            tuple_ = "(" + ", ".join("?" * len(keys)) + ")"
            where = f"({', '.join(keys)}) IN (VALUES {', '.join([tuple_] * count)})"
        sql = f"SELECT {columns} FROM {_quote(table.name)} WHERE {where}"
        if len(self._sql) < 4096:
            self._sql[(table, f"select{count}")] = sql
        return sql

    def advance_newest(self, table: OnlineTable, ds: int) -> int:
        with self._transaction() as conn:
            conn.execute(
                "UPDATE _kiln_meta SET newest_ds = max(coalesce(newest_ds, ?), ?) WHERE view = ?", (ds, ds, table.name)
            )
            row = conn.execute("SELECT newest_ds FROM _kiln_meta WHERE view = ?", (table.name,)).fetchone()
        return int(row[0]) if row is not None else ds

    def delete_older(self, table: OnlineTable, ds: int) -> int:
        with self._transaction() as conn:
            before = conn.total_changes
            conn.execute(f"DELETE FROM {_quote(table.name)} WHERE ds < ?", (ds,))
            return conn.total_changes - before

    def delete_keys(self, name: str, keys: Sequence[WireKey]) -> None:
        conn = self._connect()
        meta = conn.execute("SELECT schema FROM _kiln_meta WHERE view = ?", (name,)).fetchone()
        if meta is None or not keys:
            return
        table = OnlineTable.from_json(meta[0])
        where = " AND ".join(f"{_quote(c.name)} = ?" for c in table.keys)
        with self._transaction() as conn:
            conn.executemany(f"DELETE FROM {_quote(name)} WHERE {where}", keys)

    def scan_keys(self, name: str, limit: int | None = None) -> list[WireKey]:
        conn = self._connect()
        meta = conn.execute("SELECT schema FROM _kiln_meta WHERE view = ?", (name,)).fetchone()
        if meta is None:
            return []
        keys = ", ".join(_quote(c.name) for c in OnlineTable.from_json(meta[0]).keys)
        sql = f"SELECT {keys} FROM {_quote(name)}" + ("" if limit is None else " ORDER BY random() LIMIT ?")
        return [tuple(row) for row in conn.execute(sql, () if limit is None else (limit,))]

    def drop(self, name: str) -> None:
        with self._transaction() as conn:
            conn.execute(f"DROP TABLE IF EXISTS {_quote(name)}")
            conn.execute("DELETE FROM _kiln_meta WHERE view = ?", (name,))

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
