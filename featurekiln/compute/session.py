"""The Spark session factory: Delta configured, UTC whatever the machine's time zone."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Maven coordinates of the Delta jars that match pyspark 4.2 / delta-spark 4.4 (pinned).
DELTA_PACKAGE = "io.delta:delta-spark_4.2_2.13:4.4.0"
HADOOP_AWS_PACKAGE = "org.apache.hadoop:hadoop-aws:3.4.2"

BASE_CONF: dict[str, str] = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.sources.partitionOverwriteMode": "static",
    # SQL text is taken as written: no '${...}' replaced by Spark settings or system properties.
    "spark.sql.variable.substitute": "false",
    # One writer per ds partition instead of one per task and partition: fewer, larger files.
    "spark.databricks.delta.optimizeWrite.enabled": "true",
}
LOCAL_CONF: dict[str, str] = {
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.sql.adaptive.coalescePartitions.initialPartitionNum": "8",
    "spark.driver.memory": "4g",
}


def get_spark(master: str | None = "local[*]", conf: dict[str, str] | None = None, app_name: str = "featurekiln") -> SparkSession:
    """Return the Spark session, creating it on first use.

    Args:
        master: Spark master URL; ``local[...]`` also applies small-machine defaults.
            None leaves the master to ``spark-submit`` (the ``jobs/`` entry points).
        conf: extra Spark settings; they win over the defaults.
        app_name: the application name shown in the Spark UI.

    Returns:
        A session with Delta Lake (jars from Maven through ``spark.jars.packages``)
        and the SQL session time zone set to UTC. If a session already exists it
        is reused and only the SQL settings are applied to it.
    """
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    settings = dict(BASE_CONF)
    if master is not None and master.startswith("local"):
        settings.update(LOCAL_CONF)
    settings.update(conf or {})
    packages = [DELTA_PACKAGE]
    if "s3a://" in os.environ.get("KILN_WAREHOUSE", ""):
        packages.append(HADOOP_AWS_PACKAGE)
    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        builder = builder.master(master)
    builder = builder.config("spark.jars.packages", ",".join(packages))
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    for key, value in settings.items():
        if key.startswith("spark.sql.") and not key.startswith(("spark.sql.extensions", "spark.sql.catalog")):
            spark.conf.set(key, value)
    spark.sparkContext.setLogLevel("ERROR")
    return spark
