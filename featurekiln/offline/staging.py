"""Where computed chunks wait for the quality gate, and where failing chunks are kept.

Write-audit-publish across processes (Airflow's tasks): ``materialize`` writes
each chunk to a staging Delta table, ``validate`` audits the staged chunks, and
``publish`` copies them into the feature table (one ``replaceWhere`` commit per
chunk) and removes the staging tables. A chunk that fails its expectations is
copied to the quarantine instead and never reaches the feature table.

Their paths are named in :mod:`featurekiln.layout`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def write_chunk(frame: DataFrame, path: str, days: int) -> None:
    """Write ``frame`` (rows of ``days`` days) as the Delta table at ``path``, replacing what a failed attempt
    left there."""
    from featurekiln.offline.delta_table import one_file_per_day

    rows = one_file_per_day(frame, "ds", days)
    rows.write.format("delta").mode("overwrite").option("overwriteSchema", "true").partitionBy("ds").save(path)


def read_chunk(spark: SparkSession, path: str) -> DataFrame:
    """The chunk staged (or quarantined) at ``path``."""
    return spark.read.format("delta").load(path)


def remove(spark: SparkSession, path: str) -> None:
    """Delete the directory ``path`` (any Hadoop file system); a missing path is fine."""
    jvm = spark.sparkContext._jvm  # noqa: SLF001 - Hadoop's FileSystem is reached through the JVM
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).delete(hadoop_path, True)  # noqa: SLF001
