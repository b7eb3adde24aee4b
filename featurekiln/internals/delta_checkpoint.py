"""A checkpoint of a Delta table's latest version: Delta's ``DeltaLog.checkpoint``, through py4j.

Delta's Python and SQL APIs have no checkpoint command (Delta writes one by
itself every ``checkpointInterval`` commits); ``kiln maintain`` writes one after
it compacts and vacuums so that readers of the log start from it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def checkpoint(spark: SparkSession, path: str) -> None:
    """Write a checkpoint of the latest version of the Delta table at ``path``."""
    jvm = spark.sparkContext._jvm  # noqa: SLF001 - Delta's DeltaLog is reached through the JVM
    none = jvm.scala.Option.empty()
    delta_log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, path)  # noqa: SLF001
    delta_log.checkpoint(delta_log.update(False, none, none), none)
