"""The warehouse layout: where every table and file of featurekiln lives (pure: names only).

Below the warehouse root (a local path or a URI such as ``s3a://bucket/prefix``)::

    features/<view>                          the feature table (Delta, by ds)
    _tiles/<view>                            its daily tiles (Delta, by 32-day _block)
    _rebuild/<view>/<fingerprint>            a rebuild with a new schema, until it replaces the table
    _quarantine/<view>/<run>/<first>_<last>  a chunk that failed it (Delta)
    _kiln/runs                               the run history (Delta)
    _kiln/stats                              per-day feature statistics (Delta, by view)
    _kiln/started/<view>.<run>.json          a run that started and has no history row yet
    _reports/<view>/<run>.html, .json        the run reports

``kiln maintain`` deletes the staging, quarantine and rebuild folders and the
reports of finished runs once they are older than the retention (:func:`leftover_roots`).

``<run>`` is the run id made safe for paths (:func:`safe_run_id`).
"""

from __future__ import annotations

import hashlib
import re
from datetime import date

from featurekiln.settings import Settings

REPORTS_DIR = "_reports"
# The tile tables' day column (days since 1970-01-01, UTC), and their partition column: blocks of
# BLOCK_DAYS days (``_day`` floor-divided), so a year of tiles is a dozen files, not 365.
TILE_DAY = "_day"
TILE_BLOCK = "_block"
BLOCK_DAYS = 32
MAX_RUN_ID_CHARS = 120
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_run_id(run_id: str) -> str:
    """A file name for ``run_id``: unchanged when it is already safe, else readable and unique.

    Characters other than letters, digits, ``.``, ``_`` and ``-`` become ``_``
    (and a leading ``.`` too); when anything changed, or the id is longer than
    120 characters, 8 hex digits of its SHA-1 are appended so that two run ids
    never share a file. ``manual__2025-01-01T00:00:00+00:00`` becomes
    ``manual__2025-01-01T00_00_00_00_00-<hash>``.
    """
    safe = _UNSAFE.sub("_", run_id)
    safe = "_" + safe[1:] if safe.startswith(".") else safe
    if safe == run_id and 0 < len(run_id) <= MAX_RUN_ID_CHARS:
        return run_id
    digest = hashlib.sha1(run_id.encode("utf-8")).hexdigest()[:8]
    return f"{safe[:MAX_RUN_ID_CHARS]}-{digest}"


def table_path(settings: Settings, name: str) -> str:
    """Location of the feature table of view ``name``."""
    return settings.warehouse_path("features", name)


def tiles_path(settings: Settings, name: str) -> str:
    """Location of the stored daily tiles of view ``name``."""
    return settings.warehouse_path("_tiles", name)


def rebuild_path(settings: Settings, name: str, fingerprint: str) -> str:
    """Where a rebuild of view ``name`` with another schema collects its days before it replaces the table."""
    return settings.warehouse_path("_rebuild", name, fingerprint)


def _chunk_name(first: date, last: date) -> str:
    return f"{first.isoformat()}_{last.isoformat()}"


def quarantine_root(settings: Settings, view: str, run_id: str) -> str:
    """The quarantine of a run: one Delta table per failing chunk below it."""
    return settings.warehouse_path("_quarantine", view, safe_run_id(run_id))


def quarantine_path(settings: Settings, view: str, run_id: str, first: date, last: date) -> str:
    """Where the failing chunk ``first`` .. ``last`` of a run is kept for inspection."""
    return "/".join([quarantine_root(settings, view, run_id), _chunk_name(first, last)])


def history_path(settings: Settings) -> str:
    """The Delta table of the run history."""
    return settings.warehouse_path("_kiln", "runs")


def stats_path(settings: Settings) -> str:
    """The Delta table of the per-day feature statistics (one row per view, day and feature)."""
    return settings.warehouse_path("_kiln", "stats")


def started_folder(settings: Settings) -> str:
    """Where the start records of runs without a history row yet are (one small JSON file each)."""
    return settings.warehouse_path("_kiln", "started")


def started_path(settings: Settings, view: str, run_id: str) -> str:
    """The start record of run ``run_id`` of ``view``."""
    return f"{started_folder(settings)}/{view}.{safe_run_id(run_id)}.json"


def leftover_roots(settings: Settings, view: str) -> dict[str, str]:
    """The folders below which runs of view ``view`` leave data behind, by kind: one folder per run
    (``staging``, ``quarantine``), per definition fingerprint (``rebuild``), and the run reports (``reports``)."""
    return {
        "staging": settings.warehouse_path("_staging", view),
        "quarantine": settings.warehouse_path("_quarantine", view),
        "rebuild": settings.warehouse_path("_rebuild", view),
        "reports": settings.warehouse_path(REPORTS_DIR, view),
    }
