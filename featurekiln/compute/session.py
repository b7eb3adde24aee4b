"""The Spark session factory: Delta configured, UTC whatever the machine's time zone."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from featurekiln.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Maven coordinates of the Delta jars that match pyspark 4.2 / delta-spark 4.4 (pinned).
DELTA_PACKAGE = "io.delta:delta-spark_4.2_2.13:4.4.0"
# hadoop-aws must match the Hadoop of pyspark's jars (3.5.0); it brings the AWS SDK v2 bundle (~690 MB).
HADOOP_AWS_PACKAGE = "org.apache.hadoop:hadoop-aws:3.5.0"

BASE_CONF: dict[str, str] = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.sources.partitionOverwriteMode": "static",
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


def get_spark(
    settings: Settings, conf: dict[str, str] | None = None, app_name: str = "featurekiln", *, submitted: bool = False
) -> SparkSession:
    """Return the Spark session, creating it on first use.

    Args:
        settings: ``spark_master`` is the master (``local[...]`` also applies
            small-machine defaults); an ``s3a://`` warehouse adds hadoop-aws and
            points s3a at the store as :mod:`featurekiln.s3` resolves it.
        conf: extra Spark settings; they win over the defaults.
        app_name: the application name shown in the Spark UI.
        submitted: the process runs under ``spark-submit`` (the ``jobs/`` entry
            points), which sets the master and the jars.

    Returns:
        A session with Delta Lake (jars from Maven through ``spark.jars.packages``)
        and the SQL session time zone set to UTC. If a session already exists it
        is reused: the SQL and s3a settings are applied to it.

    Raises:
        ObjectStoreError: the warehouse is on S3 and boto3 finds no credentials.
    """
    from pyspark.sql import SparkSession

    from featurekiln.s3 import is_s3, s3a_conf

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    master = None if submitted else settings.spark_master
    packages = [DELTA_PACKAGE]
    options = dict(BASE_CONF)
    if master is not None and master.startswith("local"):
        options.update(LOCAL_CONF)
    if is_s3(settings.warehouse):
        packages.append(HADOOP_AWS_PACKAGE)
        options.update(s3a_conf(settings))
    options.update(conf or {})
    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        builder = builder.master(master)
    builder = builder.config("spark.jars.packages", ",".join(packages))
    for key, value in options.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    for key, value in options.items():
        if key.startswith("spark.sql.") and not key.startswith(("spark.sql.extensions", "spark.sql.catalog")):
            spark.conf.set(key, value)
        elif key.startswith("spark.hadoop."):
            spark.sparkContext._jsc.hadoopConfiguration().set(key[len("spark.hadoop."):], value)  # noqa: SLF001
    spark.sparkContext.setLogLevel("ERROR")
    return spark
