"""The retention: how long replaced files, old table versions and finished runs' leftovers are kept.

One setting, in days: ``KILN_RETAIN_DAYS``, else ``retain_days:`` in the
project's ``kiln.yaml``, else 30 (:func:`retain_days`). What it guarantees,
with ``kiln maintain`` (:mod:`featurekiln.offline.maintenance`) as the only thing
that deletes:

- a version of a feature table that was replaced less than the retention ago
  can be read again (``kiln training-set --as-of-version``); an older one is
  refused with :class:`RetentionError`, which names the retention, before Spark
  looks for files that may be gone (:func:`check_version_kept`);
- a run shorter than the retention never loses a file it reads: maintenance
  deletes only files that were replaced longer ago than the retention;
- the Delta logs are not cut by it: they keep their own ten-year retention,
  so the ledger (:mod:`featurekiln.offline.materialized`) and ``kiln plan``
  read the same after any amount of maintenance.

Pure: no Spark; the log is read as files (:mod:`featurekiln.offline.delta_log`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from featurekiln.errors import Problem, SpecError, TableError
from featurekiln.offline.delta_log import DeltaLog
from featurekiln.settings import DEFAULT_RETAIN_DAYS, Settings

PROJECT_FILE = "kiln.yaml"
FIELD = "retain_days"


class RetentionError(TableError):
    """A table version was replaced longer ago than the retention: its files may have been deleted."""


def _project_file(settings: Settings) -> Path | None:
    candidates = [settings.defs_dir.resolve().parent / PROJECT_FILE, Path.cwd() / PROJECT_FILE]
    return next((path for path in candidates if path.is_file()), None)


def retain_days(settings: Settings) -> int:
    """The retention in days: ``settings.retain_days`` (env ``KILN_RETAIN_DAYS``) > ``kiln.yaml`` > 30.

    ``kiln.yaml`` is the one next to the definitions directory, else in the
    working directory (as for the online store, :mod:`featurekiln.online.config`).

    Raises:
        SpecError: ``kiln.yaml`` is not valid YAML, or its ``retain_days`` is not a whole number >= 0
            (the problem names the file and the line).
    """
    if settings.retain_days is not None:
        return settings.retain_days
    path = _project_file(settings)
    if path is None:
        return DEFAULT_RETAIN_DAYS
    from featurekiln.definitions.loader import display_name, read_document

    file = display_name(path)
    document, problems = read_document(path.read_text(encoding="utf-8"), file)
    if problems:
        raise SpecError(problems)
    data = document.data if document is not None else None
    value = data.get(FIELD) if isinstance(data, dict) else None
    if value is None:
        return DEFAULT_RETAIN_DAYS
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        line = document.line_of((FIELD,)) if document is not None else None
        raise SpecError([Problem(file, line, FIELD, "must be a whole number of days, 0 or more")])
    return value


def replaced_at(log: DeltaLog, version: int) -> datetime | None:
    """When ``version`` of the table of ``log`` stopped being the latest (the next commit's time); None while
    it is the latest.

    Every file that version holds and a later commit removed was removed at or
    after that time, so none of them is older than it for VACUUM.
    """
    later = [c for c in log.commits() if c.version > version]
    if not later:
        return None
    return datetime.fromtimestamp(later[0].timestamp / 1000, tz=UTC)


def check_version_kept(log: DeltaLog, name: str, version: int, days: int, now: datetime | None = None) -> None:
    """Refuse ``version`` of table ``name`` when it was replaced longer than ``days`` ago.

    Raises:
        RetentionError: it was; the message names the retention and how to keep versions longer.
    """
    replaced = replaced_at(log, version)
    if replaced is None:
        return
    now = now or datetime.now(UTC)
    if replaced < now - timedelta(days=days):
        raise RetentionError(
            f"{name}: version {version} of the feature table was replaced on {replaced:%Y-%m-%d %H:%M} UTC, longer ago "
            f"than the retention of {days} day(s) (KILN_RETAIN_DAYS or retain_days in kiln.yaml): `kiln maintain` "
            "may have deleted its files, so it cannot be reproduced; use a newer version, or a longer retention "
            "for the future"
        )
