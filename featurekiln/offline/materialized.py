"""Which snapshot days a feature table holds, and which definition built each, from its Delta commits.

Every chunk commit of :func:`featurekiln.offline.delta_table.replace_days` records
``userMetadata`` = ``{view, fingerprint, start, end (inclusive), run_id, trigger}``.
Replaying those commits in version order gives, per ``ds``, the fingerprint of the
commit that last replaced it. Commits without such metadata (OPTIMIZE, a manual
write) are ignored. This stands in for the ledger: callers use :func:`materialized_days`
only, so the ledger can replace it behind the same function. Delta keeps commit
history for ``delta.logRetentionDuration`` (30 days by default): days committed
before that are no longer known here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING

from featurekiln.errors import TableError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


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


def _chunk(metadata: str | None) -> tuple[date, date, str] | None:
    if not metadata:
        return None
    try:
        body = json.loads(metadata)
        return date.fromisoformat(body["start"]), date.fromisoformat(body["end"]), str(body["fingerprint"])
    except (ValueError, KeyError, TypeError):
        return None


def materialized_days(spark: SparkSession, path: str, name: str, version: int | None = None) -> Materialized:
    """The snapshot days of the Delta table at ``path`` as of ``version`` (default: the latest).

    Raises:
        TableError: there is no Delta table at ``path``, or ``version`` does not exist.
    """
    from delta.tables import DeltaTable

    if not DeltaTable.isDeltaTable(spark, path):
        raise TableError(f"{name}: no feature table at {path}; run `kiln backfill {name} --start ... --end ...` first")
    commits = DeltaTable.forPath(spark, path).history().select("version", "userMetadata").collect()
    latest = max(int(c["version"]) for c in commits)
    wanted = latest if version is None else version
    if not 0 <= wanted <= latest:
        raise TableError(f"{name}: the feature table has no version {version} (versions 0..{latest})")
    days: dict[date, str] = {}
    fingerprint = None
    for commit in sorted(commits, key=lambda c: int(c["version"])):
        chunk = _chunk(commit["userMetadata"])
        if int(commit["version"]) > wanted or chunk is None:
            continue
        first, last, fingerprint = chunk
        day = first
        while day <= last:
            days[day] = fingerprint
            day += timedelta(days=1)
    return Materialized(version=wanted, days=days, fingerprint=fingerprint)
