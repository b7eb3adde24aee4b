"""Where computed chunks wait for the quality gate, and where failing chunks are kept.

Write-audit-publish across processes (Airflow's tasks): ``materialize`` writes
each chunk to a staging Delta table, ``validate`` audits the staged chunks, and
``publish`` copies them into the feature table (one ``replaceWhere`` commit per
chunk) and removes the staging tables. A chunk that fails its expectations is
copied to the quarantine instead and never reaches the feature table.

Layout below the warehouse root (``<run>`` is the run id, made safe for paths)::

    _staging/<view>/<run>/<first>_<last>      a staged chunk (Delta, by ds)
    _quarantine/<view>/<run>/<first>_<last>   a chunk that failed (Delta, by ds)
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from featurekiln.quality.report import safe_run_id
from featurekiln.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def _chunk_name(first: date, last: date) -> str:
    return f"{first.isoformat()}_{last.isoformat()}"


def staging_path(settings: Settings, view: str, run_id: str, first: date, last: date) -> str:
    """The staging table of the chunk ``first`` .. ``last`` (both included) of a run."""
    return settings.warehouse_path("_staging", view, safe_run_id(run_id), _chunk_name(first, last))


def quarantine_root(settings: Settings, view: str, run_id: str) -> str:
    """The quarantine of a run: one Delta table per failing chunk below it."""
    return settings.warehouse_path("_quarantine", view, safe_run_id(run_id))


def quarantine_path(settings: Settings, view: str, run_id: str, first: date, last: date) -> str:
    """Where the failing chunk ``first`` .. ``last`` of a run is kept for inspection."""
    return "/".join([quarantine_root(settings, view, run_id), _chunk_name(first, last)])


def write_chunk(frame: DataFrame, path: str) -> None:
    """Write ``frame`` as the Delta table at ``path``, replacing what a failed attempt left there."""
    frame.write.format("delta").mode("overwrite").option("overwriteSchema", "true").partitionBy("ds").save(path)


def read_chunk(spark: SparkSession, path: str) -> DataFrame:
    """The chunk staged (or quarantined) at ``path``."""
    return spark.read.format("delta").load(path)


def remove(spark: SparkSession, path: str) -> None:
    """Delete the directory ``path`` (any Hadoop file system); a missing path is fine."""
    jvm = spark.sparkContext._jvm  # noqa: SLF001 - Hadoop's FileSystem is reached through the JVM
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).delete(hadoop_path, True)  # noqa: SLF001
