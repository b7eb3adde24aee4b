"""The one push path: which published snapshot may be served online, and pushing it.

A day may be served when the feature table's log says so (:mod:`featurekiln.offline.materialized`):
the commit that last wrote it used the current definition and recorded the gate's
verdict ``success`` or ``warned``. A commit that records no verdict (written
before commits carried one) is looked up in the run history instead. An empty
snapshot is never pushed: it would delete every key online, and far more
often it means the source had no data yet.

``kiln push``, the executor's push step (``kiln run``, the nightly DAG's
``push_online``) and ``kiln status`` all use these functions.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import TYPE_CHECKING

from featurekiln.definitions.models import FeatureView
from featurekiln.errors import OnlineStoreError, StaleTableError
from featurekiln.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from featurekiln.offline.materialized import DayRecord
    from featurekiln.online.push import PushResult

log = logging.getLogger(__name__)

SERVABLE = ("success", "warned")


def servable(view: FeatureView, day: date, record: DayRecord | None) -> str | None:
    """Why snapshot ``day`` may not be served (None when it may), from the ledger's ``record`` of it.

    A record without a verdict says None here; :func:`require_servable` then asks the run history.
    """
    if record is None:
        return (f"{view.name}: the feature table holds no snapshot {day}; run "
                f"`kiln backfill {view.name} --start {day} --end {day}` first")
    if record.fingerprint != view.fingerprint():
        return (f"{view.name}: snapshot {day} was computed with another version of the definition; rebuild it with "
                f"`kiln backfill {view.name} --start {day} --end {day}` (or the whole table) before serving it")
    if record.verdict is not None and record.verdict not in SERVABLE:
        return (f"{view.name}: snapshot {day} was published by run {record.run_id} without validation; "
                f"backfill it again with validation before pushing it online")
    return None


def latest_servable(view: FeatureView, settings: Settings) -> date | None:
    """The newest day of the feature table that may be served by the ledger alone (no Spark), or None."""
    from featurekiln.layout import table_path
    from featurekiln.offline.materialized import day_records

    records = day_records(settings, view.name, table_path(settings, view.name))
    return next((d for d in sorted(records, reverse=True)
                 if servable(view, d, records[d]) is None and records[d].verdict is not None), None)


def require_servable(view: FeatureView, day: date, *, settings: Settings, spark: SparkSession) -> None:
    """Raise unless snapshot ``day`` may be served.

    Raises:
        StaleTableError: the day was computed with another version of the definition.
        UnvalidatedError: the day was published without validation (or is not in the table).
    """
    from featurekiln.layout import table_path
    from featurekiln.offline.materialized import day_records
    from featurekiln.quality.history import UnvalidatedError, require_validated

    record = day_records(settings, view.name, table_path(settings, view.name)).get(day)
    problem = servable(view, day, record)
    if problem and record is not None and record.fingerprint != view.fingerprint():
        raise StaleTableError(problem)
    if problem:
        raise UnvalidatedError(problem)
    if record is not None and record.verdict is None:  # a commit from before verdicts were recorded
        require_validated(settings, view.name, day)


def has_rows(settings: Settings, view: FeatureView, day: date) -> bool:
    """Whether snapshot ``day`` of the view's table has at least one row: the row counts of its files, read
    without Spark (:mod:`featurekiln.offline.table_reader`: each file's statistics, or its parquet footer)."""
    from featurekiln.layout import table_path
    from featurekiln.offline.table_reader import open_table

    table = open_table(table_path(settings, view.name), settings)
    return table is not None and table.count({"ds": day}) > 0


def push(view: FeatureView, ds: date | None, *, settings: Settings, spark: SparkSession) -> PushResult:
    """Push snapshot ``ds`` (default: the latest with rows) of an online view, if it may be served
    (``kiln push``).

    Raises:
        OnlineStoreError: the view is not online, the snapshot is empty, or the store refused.
        UnvalidatedError: the day was not published by a validated run.
        StaleTableError: the day was computed with another version of the definition.
    """
    from featurekiln.online.push import latest_snapshot_day, push_view, require_online

    require_online(view)
    day = ds or latest_snapshot_day(spark, settings, view)
    require_servable(view, day, settings=settings, spark=spark)
    if not has_rows(settings, view, day):
        raise OnlineStoreError(f"{view.name}: snapshot {day} has no rows; nothing pushed (an empty push would "
                               "delete every key online)")
    return push_view(spark, view, settings, day)


def pending_push(view: FeatureView, settings: Settings) -> tuple[date | None, date | None]:
    """``(latest servable day, day online)`` of an online view; a push is pending when the first is newer.

    Raises:
        OnlineStoreError: the store setting is invalid or the store is unreachable.
    """
    from featurekiln.online.push import pushed_day

    return latest_servable(view, settings), pushed_day(view, settings)


def push_pending(view: FeatureView, *, settings: Settings, spark: SparkSession) -> PushResult | None:
    """The executor's push step: push the latest servable snapshot when the online store holds an older one.

    Newer-wins writes make a repeated push harmless, so a run finishes the push of
    a run that died or whose push failed. Nothing is pushed for a view that is
    not online, when the store is up to date, or when the snapshot has no rows.

    Raises:
        OnlineStoreError: the store refused or is unreachable (the next run pushes again).
    """
    if not view.online:
        log.info("%s: online is off; nothing to push", view.name)
        return None
    latest, online = pending_push(view, settings)
    if latest is None:
        log.info("%s: no validated snapshot with the current definition; nothing to push", view.name)
        return None
    if online is not None and online >= latest:
        log.info("%s: the online store holds snapshot %s already; nothing to push", view.name, online)
        return None
    from featurekiln.online.push import push_view

    if not has_rows(settings, view, latest):
        log.warning("%s: snapshot %s has no rows; nothing pushed, the online store keeps its values", view.name,
                    latest)
        return None
    result = push_view(spark, view, settings, latest)
    log.info("%s: pushed snapshot %s online (it held %s): %s", view.name, latest, online or "none", result)
    return result
