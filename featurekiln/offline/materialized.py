"""The ledger: which days a table holds, and which definition built each, from its own Delta commits.

Every featurekiln commit records what it wrote in the commit's ``userMetadata``:
a feature table chunk ``{view, fingerprint, start, end (inclusive), run_id,
trigger}``, a tile commit ``{view, groups, start, end, read, run_id, trigger}``
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

from featurekiln.errors import TableError
from featurekiln.offline.delta_log import DeltaLog


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
    fingerprint = None
    for commit in commits:
        body, chunk = commit.metadata, _chunk(commit.metadata)
        if commit.version > wanted or chunk is None:
            continue
        first, last, fingerprint = chunk
        if body.get("replaces_table"):  # a rebuild that replaced the whole table: its ranges are all there is
            days = {}
            spans = [(date.fromisoformat(a), date.fromisoformat(b)) for a, b in body.get("ranges", [])]  # type: ignore[union-attr]
        else:
            spans = [(first, last)]
        for a, b in spans:
            days.update(dict.fromkeys(each_day(a, b), fingerprint))
    return Materialized(version=wanted, days=days, fingerprint=fingerprint)
