"""Table maintenance (``kiln maintain``, the ``kiln_maintenance`` DAG): compact, vacuum, clean, checkpoint.

Per view, for its feature table (``features/<view>``) and its tile table
(``_tiles/<view>``), and once for the run history (``_kiln/runs``) and the feature statistics
(``_kiln/stats``):

1. compact: where a partition (a snapshot day, a tile block; the whole history
   table) holds more than one file, Delta's ``OPTIMIZE`` rewrites it as one file.
   Partitions the next nightly run writes into are left alone (its ``lookback``
   days, and the tile block that is still filling): that run would rewrite the
   compacted file whole, and the retention would keep both. It commits with
   ``dataChange=false``: readers see the same rows, and a writer that loses a
   race against it retries as against any writer
   (:func:`featurekiln.offline.delta_table.lost_commit_race`); maintenance retries too;
2. hold the retention: the table's ``delta.deletedFileRetentionDuration`` is set
   to the retention, so Delta keeps the record of every file replaced within it
   (by default it forgets them after 7 days and VACUUM would take files written
   long ago but replaced yesterday), and Delta's own ``retentionDurationCheck``,
   left on, agrees with the VACUUM below; ``delta.logRetentionDuration`` is set
   to ten years where a table has none (the ledger is the log);
3. ``VACUUM`` with the retention: only files replaced (or never committed)
   longer ago than the retention are deleted, so a run shorter than the
   retention never loses a file it reads or is about to commit;
4. make sure the table's latest version has a checkpoint (readers and the
   ledger then replay few commits);
5. delete the stale leftovers of finished runs (:mod:`featurekiln.offline.leftovers`).

Every step is idempotent and commits atomically, so a process killed at any
point leaves the tables readable and a rerun finishes the work. ``dry_run``
measures the same and changes nothing. The retention is
:func:`featurekiln.offline.retention.retain_days`.
"""

from __future__ import annotations

import logging
import random
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from featurekiln.errors import TableError
from featurekiln.internals import delta_checkpoint
from featurekiln.layout import BLOCK_DAYS, history_path, stats_path, table_path, tiles_path
from featurekiln.offline.delta_table import COMMIT_ATTEMPTS, RETRY_SECONDS, lost_commit_race, table_exists
from featurekiln.offline.leftovers import remove_leftovers, stale_leftovers
from featurekiln.offline.storage import LOG_FOLDER, Storage
from featurekiln.planning.intervals import EPOCH
from featurekiln.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Callable

    from pyspark.sql import SparkSession

    from featurekiln.definitions.models import FeatureView

log = logging.getLogger(__name__)

LOG_RETENTION = "interval 3650 days"
_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint(?:\.\d{10}\.\d{10})?\.parquet$")
_COMMIT = re.compile(r"^(\d{20})\.json$")


@dataclass
class TableMaintenance:
    """What maintenance found and did on one table (or on one view's leftovers).

    Attributes:
        view: the view (``-`` for the run history).
        table: ``features``, ``tiles``, ``runs`` or ``leftovers``.
        files, bytes: data files on storage before (a Delta table's ``_delta_log`` is not counted).
        live_files, live_bytes: the files of the table's latest version before (None for leftovers).
        compacted: files rewritten by compaction (or that would be, in a dry run).
        reclaimed_files, reclaimed_bytes: deleted from storage (or that would be).
        files_after, bytes_after: on storage after (before, in a dry run).
        checkpoint: the version of the table's newest checkpoint after (None: none, or no table).
        notes: what was skipped and why.
    """

    view: str
    table: str
    path: str
    files: int = 0
    bytes: int = 0
    live_files: int | None = None
    live_bytes: int | None = None
    compacted: int = 0
    reclaimed_files: int = 0
    reclaimed_bytes: int = 0
    files_after: int = 0
    bytes_after: int = 0
    checkpoint: int | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """As JSON-able data (``kiln maintain --json``)."""
        return asdict(self)


def _retrying(what: str, action: Any) -> Any:
    """Run ``action`` again when it loses a commit race, up to :data:`COMMIT_ATTEMPTS` times."""
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        try:
            return action()
        except Exception as error:  # noqa: BLE001 - only a lost commit race is retried
            if not lost_commit_race(error) or attempt == COMMIT_ATTEMPTS:
                raise
            log.info("%s: another writer committed first; again (attempt %d)", what, attempt + 1)
            time.sleep(RETRY_SECONDS * attempt * (1 + random.random()))  # noqa: S311 - jitter, not security
    return None


def _crowded_partitions(spark: SparkSession, path: str) -> tuple[str | None, dict[str, int]]:
    """The partition column of the table at ``path`` and, per partition value holding more than one live file,
    how many it holds (an unpartitioned table is one partition, value ``""``)."""
    from delta.tables import DeltaTable

    columns = list(DeltaTable.forPath(spark, path).detail().first()["partitionColumns"])
    if len(columns) > 1:
        raise TableError(f"{path}: partitioned by {columns}; featurekiln's tables have at most one partition column")
    column = columns[0] if columns else None
    counts: dict[str, int] = {}
    root = path.rstrip("/")
    for file in spark.read.format("delta").load(path).inputFiles():
        folder = file.rsplit("/", 1)[0]
        value = unquote(folder.rsplit("/", 1)[-1].split("=", 1)[1]) if column and folder != root else ""
        counts[value] = counts.get(value, 0) + 1
    return column, {value: n for value, n in counts.items() if n > 1}


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _compact(spark: SparkSession, path: str, column: str | None, crowded: dict[str, int]) -> int:
    """OPTIMIZE the ``crowded`` partitions of the table at ``path``; the files it removed."""
    from delta.tables import DeltaTable

    def run() -> int:
        builder = DeltaTable.forPath(spark, path).optimize()
        if column:
            builder = builder.where(f"`{column}` IN ({', '.join(map(_quote, sorted(crowded)))})")
        metrics = builder.executeCompaction().first()["metrics"]
        return int(metrics["numFilesRemoved"])

    return int(_retrying(f"compacting {path}", run))


def _hold_retention(spark: SparkSession, path: str, days: int, dry_run: bool, notes: list[str]) -> None:
    """Set the table properties that make Delta keep what the retention promises (see the module)."""
    from delta.tables import DeltaTable

    properties = dict(DeltaTable.forPath(spark, path).detail().first()["properties"] or {})
    wanted = {"delta.deletedFileRetentionDuration": f"interval {days} days"}
    if "delta.logRetentionDuration" not in properties:
        wanted["delta.logRetentionDuration"] = LOG_RETENTION
    changes = {k: v for k, v in wanted.items() if properties.get(k) != v}
    if not changes:
        return
    notes.append(("would set " if dry_run else "set ") + ", ".join(f"{k}={v!r}" for k, v in sorted(changes.items())))
    if dry_run:
        return
    text = ", ".join(f"{_quote(k)} = {_quote(v)}" for k, v in sorted(changes.items()))
    _retrying(f"setting the retention of {path}", lambda: spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ({text})"))


def _vacuum_candidates(spark: SparkSession, storage: Storage, path: str, days: int) -> tuple[int, int]:
    """Files and bytes a VACUUM with the retention would delete now (Delta's ``DRY RUN``)."""
    # The table's own deletedFileRetentionDuration may still be longer than the retention (a dry run sets
    # nothing): Delta's check would refuse the count, which deletes nothing.
    key = "spark.databricks.delta.retentionDurationCheck.enabled"
    before = spark.conf.get(key, "true")
    spark.conf.set(key, "false")
    try:
        paths = [row[0] for row in spark.sql(f"VACUUM delta.`{path}` RETAIN {days * 24} HOURS DRY RUN").collect()]
    finally:
        spark.conf.set(key, before)
    return len(paths), storage.sizes(paths)


def _log_versions(storage: Storage, path: str) -> tuple[int | None, int | None]:
    """The latest version of the table at ``path`` and its newest checkpoint's version (None: none)."""
    names = storage.names(f"{path.rstrip('/')}/{LOG_FOLDER}")
    commits = [int(m.group(1)) for m in map(_COMMIT.match, names) if m]
    checkpoints = [int(m.group(1)) for m in map(_CHECKPOINT.match, names) if m]
    return (max(commits) if commits else None), (max(checkpoints) if checkpoints else None)


def open_partitions(settings: Settings, view: FeatureView) -> dict[str, Callable[[str], bool]]:
    """Per table of ``view``, which partition values its next nightly run writes into (from the ledger).

    The next night writes the snapshot days from ``newest + 1 - lookback`` and the
    tiles of the same days; the tile block holding the newest tile day is still
    filling even without lookback.
    """
    from featurekiln.offline.delta_table import day_fingerprints
    from featurekiln.offline.tile_store import held_tiles

    lookback = view.lookback_days
    found: dict[str, Callable[[str], bool]] = {}
    held = day_fingerprints(settings, table_path(settings, view.table_name))
    if held:
        first_open = (max(held) + timedelta(days=1 - lookback)).isoformat()
        found["features"] = lambda value: value >= first_open
    tiles = held_tiles(settings, tiles_path(settings, view.name))
    if tiles:
        newest = (max(tiles) - EPOCH).days
        open_block = (newest + 1 - max(lookback, 1)) // BLOCK_DAYS
        found["tiles"] = lambda value: value.lstrip("-").isdigit() and int(value) >= open_block
    return found


def maintain_table(
    spark: SparkSession, path: str, view: str, table: str, days: int, *, dry_run: bool = False,
    still_open: Callable[[str], bool] | None = None,
) -> TableMaintenance | None:
    """Compact, hold the retention, vacuum and checkpoint the Delta table at ``path`` (None: there is none).

    ``still_open`` names the partition values not to compact (:func:`open_partitions`).
    """
    from delta.tables import DeltaTable

    if not table_exists(spark, path):
        return None
    storage = Storage(spark)
    before = storage.usage(path, data_only=True)
    detail = DeltaTable.forPath(spark, path).detail().first()
    done = TableMaintenance(view, table, path, before.files, before.bytes, int(detail["numFiles"]),
                            int(detail["sizeInBytes"]))
    column, crowded = _crowded_partitions(spark, path)
    if still_open is not None and column is not None:
        skipped = sorted(value for value in crowded if still_open(value))
        if skipped:
            done.notes.append(f"left {len(skipped)} partition(s) the next night writes into uncompacted "
                              f"({column} {skipped[0]}..{skipped[-1]})")
        crowded = {value: n for value, n in crowded.items() if value not in skipped}
    if dry_run:
        done.compacted = sum(crowded.values())
    elif crowded:
        done.compacted = _compact(spark, path, column, crowded)
    _hold_retention(spark, path, days, dry_run, done.notes)
    if dry_run:
        done.reclaimed_files, done.reclaimed_bytes = _vacuum_candidates(spark, storage, path, days)
        done.files_after, done.bytes_after = before.files, before.bytes
    else:
        DeltaTable.forPath(spark, path).vacuum(float(days * 24))
        after = storage.usage(path, data_only=True)
        done.files_after, done.bytes_after = after.files, after.bytes
        # Compaction adds a file for those it replaces: what left storage is the difference plus those added.
        done.reclaimed_files = max(0, before.files - after.files)
        done.reclaimed_bytes = max(0, before.bytes - after.bytes)
    latest, checkpoint = _log_versions(storage, path)
    if latest is not None and checkpoint != latest:
        if dry_run:
            done.notes.append(f"would checkpoint version {latest}")
        else:
            delta_checkpoint.checkpoint(spark, path)
            checkpoint = _log_versions(storage, path)[1]
    done.checkpoint = checkpoint
    return done


def maintain_leftovers(
    spark: SparkSession, settings: Settings, view: FeatureView, days: int, *, dry_run: bool = False,
    now: datetime | None = None,
) -> TableMaintenance:
    """Delete (or, ``dry_run``, count) the stale leftovers of ``view``'s runs (:mod:`featurekiln.offline.leftovers`)."""
    storage = Storage(spark)
    cutoff = ((now or datetime.now(UTC)) - timedelta(days=days)).timestamp()
    stale = stale_leftovers(storage, settings, view.name, view.fingerprint(), cutoff)
    done = TableMaintenance(view.name, "leftovers", settings.warehouse_path("_*", view.name))
    done.reclaimed_files = sum(item.files for item in stale)
    done.reclaimed_bytes = sum(item.bytes for item in stale)
    kinds = sorted({item.kind for item in stale})
    if kinds:
        done.notes.append(("would delete " if dry_run else "deleted ") + ", ".join(
            f"{sum(1 for i in stale if i.kind == kind)} {kind}" for kind in kinds))
    if not dry_run:
        remove_leftovers(storage, stale)
    return done


def maintain_view(
    spark: SparkSession, settings: Settings, view: FeatureView, days: int, *, dry_run: bool = False
) -> list[TableMaintenance]:
    """Maintain the feature table, the tile table and the run leftovers of ``view`` (see the module)."""
    still_open = open_partitions(settings, view)
    done = [maintain_table(spark, table_path(settings, view.table_name), view.name, "features", days,
                           dry_run=dry_run, still_open=still_open.get("features")),
            maintain_table(spark, tiles_path(settings, view.name), view.name, "tiles", days, dry_run=dry_run,
                           still_open=still_open.get("tiles")),
            maintain_leftovers(spark, settings, view, days, dry_run=dry_run)]
    return [item for item in done if item is not None]


def maintain(
    spark: SparkSession, settings: Settings, views: list[FeatureView], *, dry_run: bool = False
) -> list[TableMaintenance]:
    """Maintain every view of ``views``, the run history and the feature statistics, with the retention of
    ``settings``."""
    from featurekiln.offline.retention import retain_days

    days = retain_days(settings)
    done = [item for view in views for item in maintain_view(spark, settings, view, days, dry_run=dry_run)]
    shared = [maintain_table(spark, history_path(settings), "-", "runs", days, dry_run=dry_run),
              maintain_table(spark, stats_path(settings), "-", "stats", days, dry_run=dry_run)]
    return done + [item for item in shared if item is not None]
