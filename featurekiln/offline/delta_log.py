"""A Delta table's log read as plain files, without Spark: the ledger of its commits and the days it holds.

A Delta table's state is its ``_delta_log`` folder: one ``<version>.json`` file
per commit (a ``commitInfo`` action with featurekiln's ``userMetadata``, and the
``add``/``remove`` actions of the files it wrote and dropped), plus parquet
checkpoints that sum up every commit up to theirs. Delta writes a commit file
atomically and never changes it, so reading these files gives exactly what
``DeltaTable.history()`` and the snapshot's file list give, at the cost of a
folder listing and a few small reads instead of a JVM and two Spark jobs.
``kiln plan``, Airflow's ``plan`` task and every run's planning read the ledger
this way (:mod:`featurekiln.offline.materialized`,
:mod:`featurekiln.offline.tile_store`).

The files are read with :mod:`featurekiln.warehouse_files` (the local disk, or
boto3 for an object store). Only the classic checkpoint layout is read (a single
or multi-part ``<version>.checkpoint[.<part>.<parts>].parquet``), which is what
featurekiln's tables use; a table whose log can be read neither from its first
commit nor from such a checkpoint is an error that names it.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from featurekiln.errors import TableError
from featurekiln.settings import Settings
from featurekiln.warehouse_files import Files, files_for

LOG = "_delta_log"
_COMMIT = re.compile(r"^(\d{20})\.json$")
_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint(?:\.(\d{10})\.(\d{10}))?\.parquet$")


@dataclass(frozen=True)
class Commit:
    """One commit of a Delta table.

    Attributes:
        version: its Delta version.
        metadata: its ``userMetadata`` as a dict (empty when it has none, or it is
            not featurekiln's JSON object).
        rows: the rows it wrote (``numOutputRows``; 0 for a commit that wrote no data).
        timestamp: when it was committed, in milliseconds since the epoch (its ``commitInfo``'s; 0 if none).
    """

    version: int
    metadata: dict[str, Any] = field(default_factory=dict)
    rows: int = 0
    timestamp: int = 0


def _metadata(text: object) -> dict[str, Any]:
    try:
        body = json.loads(text) if isinstance(text, str) else {}
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class DeltaLog:
    """The ``_delta_log`` of the table at ``path``, listed once and read on demand."""

    def __init__(self, path: str, files: Files) -> None:
        self.path, self.files = path.rstrip("/"), files
        self.folder = f"{self.path}/{LOG}"
        self._read: dict[int, list[dict[str, Any]]] = {}

    @classmethod
    def of(cls, path: str, settings: Settings) -> DeltaLog:
        """The log of the table at ``path``, a local path or an object-store URI."""
        return cls(path, files_for(path, settings))

    @cached_property
    def _names(self) -> list[str]:
        return sorted(e.name for e in self.files.listing(self.folder))

    @cached_property
    def _versions(self) -> list[int]:
        return [int(m.group(1)) for m in map(_COMMIT.match, self._names) if m]

    def exists(self) -> bool:
        """Whether ``path`` holds a Delta table (its log has a commit)."""
        return bool(self._versions)

    def _actions(self, version: int) -> list[dict[str, Any]]:
        if version not in self._read:  # a commit file never changes once written
            text = self.files.read(f"{self.folder}/{version:020d}.json").decode()
            self._read[version] = [json.loads(line) for line in text.splitlines() if line.strip()]
        return self._read[version]

    def _commit(self, version: int) -> Commit:
        info = next((a["commitInfo"] for a in self._actions(version) if "commitInfo" in a), {})
        rows = (info.get("operationMetrics") or {}).get("numOutputRows", 0)
        return Commit(version, _metadata(info.get("userMetadata")), int(rows), int(info.get("timestamp") or 0))

    def commits(self) -> list[Commit]:
        """Every commit still in the log, in version order (as ``DeltaTable.history()`` lists them)."""
        return [self._commit(version) for version in self._versions]

    def newest_with(self, metadata: dict[str, object], within: int) -> Commit | None:
        """The newest of the last ``within`` commits whose ``userMetadata`` is ``metadata``: a writer's own
        commit, found after other writers may have committed on top of it."""
        return next((c for c in map(self._commit, reversed(self._versions[-within:])) if c.metadata == metadata), None)

    def rows_added(self, version: int, column: str) -> dict[str, int] | None:
        """The rows of the files commit ``version`` added, by their value of partition ``column``.

        From each file's statistics (``numRecords``, which Delta collects by
        default); None when a file has none.
        """
        rows: dict[str, int] = {}
        for action in (a["add"] for a in self._actions(version) if "add" in a):
            records = _metadata(action.get("stats")).get("numRecords")
            if not isinstance(records, int):
                return None
            value = (action.get("partitionValues") or {}).get(column)
            rows[value] = rows.get(value, 0) + records
        return rows

    def partition_values(self, column: str) -> set[str]:
        """The values of partition ``column`` among the files of the table's latest version (no data is read).

        Raises:
            TableError: the log starts after version 0 and has no checkpoint to start from.
        """
        live: dict[str, str | None] = {}
        first = 0
        if not self._versions or self._versions[0] != 0:
            first = self._checkpoint(live, column)
        for version in (v for v in self._versions if v >= first):
            for action in self._actions(version):
                if "add" in action:
                    live[action["add"]["path"]] = (action["add"].get("partitionValues") or {}).get(column)
                elif "remove" in action:
                    live.pop(action["remove"]["path"], None)
        return {value for value in live.values() if value is not None}

    def _checkpoint(self, live: dict[str, str | None], column: str) -> int:
        """Fill ``live`` from the newest complete classic checkpoint; the first version after it."""
        import pyarrow.parquet as pq

        parts: dict[int, list[str]] = {}
        for name in self._names:
            match = _CHECKPOINT.match(name)
            if match:
                parts.setdefault(int(match.group(1)), []).append(name)
        complete = [v for v, names in parts.items() if len(names) == int(_CHECKPOINT.match(names[0]).group(3) or 1)]
        if not complete:
            raise TableError(
                f"{self.path}: its Delta log starts at version {self._versions[0] if self._versions else '?'} "
                "and has no checkpoint featurekiln can read; read the table with Spark"
            )
        version = max(complete)
        for name in parts[version]:
            adds = pq.read_table(io.BytesIO(self.files.read(f"{self.folder}/{name}")), columns=["add"]).column("add")
            for add in adds.to_pylist():
                if add:
                    values = add.get("partitionValues") or {}
                    live[add["path"]] = (dict(values) if isinstance(values, list) else values).get(column)
        return version + 1
