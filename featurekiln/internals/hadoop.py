"""Hadoop's FileSystem and configuration of a Spark session, reached through py4j.

Hadoop's ``FileSystem`` is a public Hadoop API, but pyspark exposes it only
through its py4j gateway. featurekiln uses it where it must see the same storage
Delta writes through (a local disk, ``s3a://`` with the session's credentials
and endpoint): measuring and deleting run leftovers, deleting a staging table,
writing a training set's record, discarding an uncommitted write.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def file_system(spark: SparkSession, path: str) -> tuple[Any, Any]:
    """Hadoop's ``FileSystem`` for ``path`` in ``spark``'s configuration, and ``path`` as a Hadoop ``Path``."""
    jvm = spark.sparkContext._jvm  # noqa: SLF001 - Hadoop's FileSystem is reached through the JVM
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    return hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hadoop_path  # noqa: SLF001


def set_option(spark: SparkSession, key: str, value: str) -> None:
    """Set ``key`` in the Hadoop configuration of ``spark``'s context (what ``spark.hadoop.<key>`` sets at start)."""
    spark.sparkContext._jsc.hadoopConfiguration().set(key, value)  # noqa: SLF001


def write_text(spark: SparkSession, path: str, text: str) -> None:
    """Write ``text`` (UTF-8) as the file ``path``, replacing it."""
    system, hadoop_path = file_system(spark, path)
    stream = system.create(hadoop_path, True)
    try:
        stream.write(bytearray(text.encode()))
    finally:
        stream.close()


def delete(spark: SparkSession, path: str, *, recursive: bool = True) -> None:
    """Delete ``path`` (and, ``recursive``, everything below it); a missing path is fine."""
    system, hadoop_path = file_system(spark, path)
    system.delete(hadoop_path, recursive)
