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

A commit file never changes once written, so what the ledger needs of commits
``0..V`` (each commit's ``userMetadata``, rows and timestamp) is a fact that can
be kept: featurekiln's writer (:func:`featurekiln.offline.delta_table.replace_days`)
writes a summary of them to ``_delta_log/_kiln/commits.json`` after its commit
once :data:`SUMMARY_EVERY` commits have landed after the last summary, and a
reader takes the commits up to ``V`` from it and reads only the commit files
after it. Readers (``kiln plan``, ``--dry-run``) never write it.
The summary names the digest of commit ``V``'s file and is used only when that
file still has it (a table deleted and written again at the same path gets a
new log: its summary is then ignored and written afresh). Writing it is best
effort (when it fails, readers read the commit files after the older summary);
concurrent writers write the same bytes for the same ``V``. So a night's
planning reads a bounded number of commit files however long the table's
history (``bench/year.py --ledger-only``).

The files are read with :mod:`featurekiln.warehouse_files` (the local disk, or
boto3 for an object store). Only the classic checkpoint layout is read (a single
or multi-part ``<version>.checkpoint[.<part>.<parts>].parquet``), which is what
featurekiln's tables use; a table whose log can be read neither from its first
commit nor from such a checkpoint is an error that names it.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from featurekiln.errors import TableError
from featurekiln.s3 import ObjectStoreError
from featurekiln.settings import Settings
from featurekiln.warehouse_files import Files, files_for

log = logging.getLogger(__name__)

LOG = "_delta_log"
SUMMARY = "_kiln/commits.json"  # below the log folder: Delta's own log cleanup and VACUUM leave it alone
SUMMARY_EVERY = 16  # commits past the summary before a writer writes a newer one
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
        """Every commit still in the log, in version order (as ``DeltaTable.history()`` lists them); those up to
        the summary's version come from the summary (see the module), the others from their files."""
        return self._commits(self._summary())

    def _commits(self, known: dict[int, Commit]) -> list[Commit]:
        return [known.get(version) or self._commit(version) for version in self._versions]

    def summarize(self) -> None:
        """Write a newer summary when :data:`SUMMARY_EVERY` commits or more have landed after the current one.

        Called by featurekiln's writers after their commit; readers never write. Best effort: a failed write is
        logged (readers then read the commit files after the older summary, as before).
        """
        known = self._summary()
        if sum(1 for version in self._versions if version not in known) < SUMMARY_EVERY:
            return
        commits = self._commits(known)
        last = commits[-1].version
        body = {"version": last, "digest": self._digest(last),
                "commits": [[c.version, c.metadata, c.rows, c.timestamp] for c in commits]}
        try:
            self.files.write(f"{self.folder}/{SUMMARY}", json.dumps(body, separators=(",", ":")).encode(),
                             "application/json")
        except (OSError, ObjectStoreError) as error:
            log.info("%s: cannot write the ledger's summary: %s", self.path, error)

    def _digest(self, version: int) -> str:
        return hashlib.sha256(self.files.read(f"{self.folder}/{version:020d}.json")).hexdigest()

    def _summary(self) -> dict[int, Commit]:
        """The commits the summary holds, by version; empty when there is none or it does not match the log."""
        if not self._versions:
            return {}
        try:
            body = json.loads(self.files.read(f"{self.folder}/{SUMMARY}"))
            version = int(body["version"])
            if version not in self._versions or self._digest(version) != body["digest"]:
                log.info("%s: the ledger's summary does not match the log at version %d; reading every commit",
                         self.path, version)
                return {}
            commits = [Commit(int(v), m, int(r), int(t)) for v, m, r, t in body["commits"]]
        except FileNotFoundError:
            return {}
        except (ValueError, KeyError, TypeError) as error:
            log.info("%s: the ledger's summary is unreadable (%s); reading every commit", self.path, error)
            return {}
        held = set(self._versions)
        return {c.version: c for c in commits if c.version in held}

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
        values = ((add.get("partitionValues") or {}).get(column) for add in self.state().files.values())
        return {value for value in values if value is not None}

    def state(self) -> LogState:
        """The table's latest version: its live files, schema and protocol, replayed from the newest complete
        checkpoint (or from the first commit when there is none) through the last commit.

        Raises:
            TableError: the log holds no commit, or starts after version 0 and has no checkpoint to start from.
        """
        if not self._versions:
            raise TableError(f"{self.path}: not a Delta table (no commit in {self.folder})")
        state = LogState(self._versions[-1])
        first = self._checkpoint(state) if self._checkpoints() or self._versions[0] != 0 else 0
        for version in (v for v in self._versions if v >= first):
            for action in self._actions(version):
                state.apply(action)
        return state

    def _checkpoints(self) -> dict[int, list[str]]:
        """The complete classic checkpoints, by version: the names of their parts."""
        parts: dict[int, list[str]] = {}
        for name in self._names:
            match = _CHECKPOINT.match(name)
            if match:
                parts.setdefault(int(match.group(1)), []).append(name)
        return {v: names for v, names in parts.items() if len(names) == int(_CHECKPOINT.match(names[0]).group(3) or 1)}

    def _checkpoint(self, state: LogState) -> int:
        """Fill ``state`` from the newest complete classic checkpoint; the first version after it."""
        import pyarrow.parquet as pq

        complete = self._checkpoints()
        if not complete:
            raise TableError(
                f"{self.path}: its Delta log starts at version {self._versions[0] if self._versions else '?'} "
                "and has no checkpoint featurekiln can read; read the table with Spark"
            )
        version = max(complete)
        for name in complete[version]:
            checkpoint = pq.ParquetFile(io.BytesIO(self.files.read(f"{self.folder}/{name}")))
            kinds = [kind for kind in ("protocol", "metaData", "add") if kind in checkpoint.schema_arrow.names]
            for row in checkpoint.read(columns=kinds).to_pylist():
                for kind in kinds:
                    if row[kind]:
                        state.apply({kind: _plain_maps(row[kind])})
        return version + 1


# Map-typed fields of the actions a reader uses; pyarrow gives a parquet map as a list of pairs.
_MAPS = ("partitionValues", "configuration", "tags")


def _plain_maps(action: dict[str, Any]) -> dict[str, Any]:
    return {k: dict(v) if k in _MAPS and isinstance(v, list) else v for k, v in action.items()}


def _file_key(action: dict[str, Any]) -> tuple[str, str | None]:
    """An ``add``'s or ``remove``'s logical file: its path and its deletion vector's unique id, if any."""
    vector = action.get("deletionVector")
    if not vector:
        return action["path"], None
    return action["path"], f"{vector.get('storageType')}{vector.get('pathOrInlineDv')}@{vector.get('offset')}"


@dataclass
class LogState:
    """A Delta table's state at ``version``, as a replay of its log leaves it.

    Attributes:
        version: the newest version.
        files: the live ``add`` actions by their logical file: the (relative, URL-encoded) path and the id
            of its deletion vector, if any (a commit that deletes rows through a vector adds the file with
            its new vector before it removes the file with its old one).
        metadata: the newest ``metaData`` action (schema, partition columns, configuration).
        protocol: the newest ``protocol`` action.
    """

    version: int
    files: dict[tuple[str, str | None], dict[str, Any]] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    protocol: dict[str, Any] = field(default_factory=dict)

    def apply(self, action: dict[str, Any]) -> None:
        """Apply one action of a commit (or of a checkpoint) on top of the state."""
        if "add" in action:
            self.files[_file_key(action["add"])] = action["add"]
        elif "remove" in action:
            self.files.pop(_file_key(action["remove"]), None)
        elif "metaData" in action:
            self.metadata = action["metaData"]
        elif "protocol" in action:
            self.protocol = action["protocol"]
