"""The ledger: which days a table holds, and which definition built each, from its own Delta commits.

Every featurekiln commit records what it wrote in the commit's ``userMetadata``:
a feature table chunk ``{view, fingerprint, start, end (inclusive), run_id,
trigger, verdict, suites}`` (``verdict``: the quality gate's ``success``,
``warned`` or ``unvalidated``; ``suites``: the fingerprint of the suites it
validated against), a tile commit ``{view, groups, start, end, read, run_id, trigger}``
(:mod:`featurekiln.offline.tile_store`). Replaying those commits in version order
gives, per day, what the commit that last replaced it wrote. Commits without
such metadata (OPTIMIZE, a manual write) are ignored.

The ledger is the table's Delta log itself, so it cannot disagree with the data:
a day and its record are one atomic commit, and a process killed at any point
leaves both or neither. featurekiln's Spark sessions keep the log for ten years
(``delta.logRetentionDuration``, see :mod:`featurekiln.compute.session`); days
committed before the retained log are reported as ``unknown``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING

from featurekiln.errors import TableError
from featurekiln.offline.delta_log import DeltaLog

if TYPE_CHECKING:
    from featurekiln.definitions.models import FeatureView
    from featurekiln.planning.materialization import ViewPlan
    from featurekiln.settings import Settings


@dataclass(frozen=True)
class Materialized:
    """The days of a table as of one Delta version.

    Attributes:
        version: the Delta version described.
        days: per materialized ``ds``, the fingerprint of the definition that built it.
        fingerprint: the fingerprint of the newest chunk commit up to ``version`` (None if none).
    """

    version: int
    days: dict[date, str] = field(default_factory=dict)
    fingerprint: str | None = None
    records: dict[date, DayRecord] = field(default_factory=dict)


@dataclass(frozen=True)
class DayRecord:
    """What the commit that last wrote a day says about it.

    Attributes:
        version: the commit's Delta version.
        fingerprint: the definition that computed the day.
        run_id: the run that committed it.
        verdict: the quality gate's verdict (``success``, ``warned``, ``unvalidated``); None for a
            commit that does not record one (the run history then decides).
        suites: the fingerprint of the suites the day was validated against (None when not validated).
    """

    version: int
    fingerprint: str
    run_id: str | None
    verdict: str | None
    suites: str | None


def _chunk(body: dict[str, object]) -> tuple[date, date, str] | None:
    try:
        return date.fromisoformat(str(body["start"])), date.fromisoformat(str(body["end"])), str(body["fingerprint"])
    except (ValueError, KeyError, TypeError):
        return None


def each_day(first: date, last: date) -> list[date]:
    """``first`` .. ``last``, both included."""
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def materialized_days(log: DeltaLog, name: str, version: int | None = None) -> Materialized:
    """The snapshot days of the Delta table of ``log`` as of ``version`` (default: the latest).

    Raises:
        TableError: the log's table does not exist, or ``version`` does not exist.
    """
    if not log.exists():
        raise TableError(
            f"{name}: no feature table at {log.path}; run `kiln backfill {name} --start ... --end ...` first"
        )
    commits = log.commits()
    latest = commits[-1].version
    wanted = latest if version is None else version
    if not 0 <= wanted <= latest:
        raise TableError(f"{name}: the feature table has no version {version} (versions 0..{latest})")
    days: dict[date, str] = {}
    records: dict[date, DayRecord] = {}
    fingerprint = None
    for commit in commits:
        body, chunk = commit.metadata, _chunk(commit.metadata)
        if commit.version > wanted or chunk is None:
            continue
        first, last, fingerprint = chunk
        if body.get("replaces_table"):  # a rebuild that replaced the whole table: its ranges are all there is
            days, records = {}, {}
            spans = [(date.fromisoformat(a), date.fromisoformat(b)) for a, b in body.get("ranges", [])]  # type: ignore[union-attr]
        else:
            spans = [(first, last)]
        record = DayRecord(commit.version, fingerprint, _text(body.get("run_id")), _text(body.get("verdict")),
                           _text(body.get("suites")))
        for a, b in spans:
            days.update(dict.fromkeys(each_day(a, b), fingerprint))
            records.update(dict.fromkeys(each_day(a, b), record))
    return Materialized(version=wanted, days=days, fingerprint=fingerprint, records=records)


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def ledger_plan(view: FeatureView, until: date, settings: Settings) -> ViewPlan:
    """What the ledger says a run of ``view`` up to ``until`` (included) must do (``kiln plan``), from the
    Delta logs of its feature and tile tables (read as files, no Spark)."""
    from featurekiln.layout import table_path, tiles_path
    from featurekiln.offline.delta_table import day_fingerprints
    from featurekiln.offline.tile_store import held_tiles
    from featurekiln.planning.materialization import plan_view

    held = day_fingerprints(settings, table_path(settings, view.name))
    return plan_view(view, held, until, held_tiles(settings, tiles_path(settings, view.name)))


def day_records(settings: Settings, name: str, path: str) -> dict[date, DayRecord]:
    """Per day of the feature table at ``path``, what the commit that last wrote it says (empty when absent)."""
    log = DeltaLog.of(path, settings)
    if not log.exists():
        return {}
    return materialized_days(log, name).records
