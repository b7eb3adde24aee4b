"""Delta feature tables: one per view, partitioned by ``ds``, replaced a chunk at a time.

A chunk ``[start, end)`` is written with ``replaceWhere`` on ``ds``: one atomic
commit that replaces exactly those days, so a rerun gives identical contents and
a crash leaves each chunk either old or new.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from featurekiln.errors import TableError
from featurekiln.layout import table_path
from featurekiln.planning.intervals import Interval
from featurekiln.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


CREATE_ATTEMPTS = 3
_CREATE_RACE = ("DELTA_PROTOCOL_CHANGED", "ProtocolChangedException", "DELTA_METADATA_CHANGED", "MetadataChangedException")


def lost_create_race(error: Exception) -> bool:
    """Whether ``error`` is Delta's report that another writer created the table first.

    Two writers that both find no table (say two Airflow runs publishing their
    first days at once) both try to create it; the loser may simply write again.
    """
    text = f"{type(error).__name__} {error}"
    return any(marker in text for marker in _CREATE_RACE)


def table_exists(spark: SparkSession, path: str) -> bool:
    """Whether ``path`` holds a Delta table."""
    from delta.tables import DeltaTable

    return bool(DeltaTable.isDeltaTable(spark, path))


def read_table(spark: SparkSession, settings: Settings, name: str) -> DataFrame:
    """The feature table of view ``name``.

    Raises:
        TableError: the table does not exist yet.
    """
    path = table_path(settings, name)
    if not table_exists(spark, path):
        raise TableError(f"{name}: no feature table at {path}; run `kiln backfill {name} --start ... --end ...` first")
    return spark.read.format("delta").load(path)


@dataclass(frozen=True)
class CommitInfo:
    """What one chunk commit recorded."""

    version: int
    rows: int


def _predicate(interval: Interval) -> str:
    return f"ds >= '{interval[0].isoformat()}' AND ds < '{interval[1].isoformat()}'"


def _check_schema(spark: SparkSession, path: str, frame: DataFrame, name: str) -> None:
    existing = spark.read.format("delta").load(path).schema
    want = [(f.name, f.dataType.simpleString()) for f in frame.schema.fields]
    have = [(f.name, f.dataType.simpleString()) for f in existing.fields]
    if want != have:
        raise TableError(
            f"{name}: the feature table at {path} has columns {', '.join(f'{n} {t}' for n, t in have)}, "
            f"but the definition now gives {', '.join(f'{n} {t}' for n, t in want)}; "
            "the definition changed: remove the table (or rename the view) and backfill again"
        )


def replace_days(
    spark: SparkSession,
    path: str,
    frame: DataFrame,
    interval: Interval,
    metadata: dict[str, object],
    name: str,
) -> CommitInfo:
    """Replace the days ``interval`` of the table at ``path`` by ``frame`` in one commit.

    Args:
        frame: rows whose ``ds`` all lie in ``interval`` (may be empty: the days
            are then cleared).
        metadata: recorded as the commit's ``userMetadata`` (JSON).

    Raises:
        TableError: the table exists with another schema.
    """
    from delta.tables import DeltaTable

    writer = frame.write.format("delta").option("userMetadata", json.dumps(metadata, sort_keys=True))
    for attempt in range(1, CREATE_ATTEMPTS + 1):
        try:
            if table_exists(spark, path):
                _check_schema(spark, path, frame, name)
                writer.mode("overwrite").option("replaceWhere", _predicate(interval)).save(path)
            else:
                writer.mode("append").partitionBy("ds").save(path)
            break
        except Exception as error:  # noqa: BLE001 - only a lost race to create the table is retried
            if attempt == CREATE_ATTEMPTS or not lost_create_race(error):
                raise
    last = DeltaTable.forPath(spark, path).history(1).select("version", "operationMetrics").first()
    metrics = last["operationMetrics"] or {}
    return CommitInfo(version=int(last["version"]), rows=int(metrics.get("numOutputRows", 0)))


def chunk_metadata(view_name: str, fingerprint: str, interval: Interval, run_id: str, trigger: str) -> dict[str, object]:
    """The commit metadata of a chunk: definition fingerprint and inclusive day range."""
    return {
        "view": view_name,
        "fingerprint": fingerprint,
        "start": interval[0].isoformat(),
        "end": (interval[1] - timedelta(days=1)).isoformat(),
        "run_id": run_id,
        "trigger": trigger,
    }

