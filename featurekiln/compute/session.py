"""The Spark session factory: Delta configured, UTC whatever the machine's time zone, and quiet.

Quiet by default: the Delta jars are pre-resolved (:mod:`featurekiln.internals.jars`),
so no Ivy report; the driver JVM's stdout and stderr go to a log file, so none of
the JVM's warnings reach the terminal or an Airflow task log. The file is removed
when the process exits, unless a failure asked to keep it
(:func:`keep_jvm_log`). With ``debug`` the JVM writes to the terminal at WARN.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from featurekiln.internals.hadoop import set_option
from featurekiln.internals.jars import (
    CONDITIONAL_PUT_LOG_STORE_CLASS,
    DELTA_PACKAGE,
    DELTA_STORAGE_JAR,
    HADOOP_AWS_PACKAGE,
    LOCAL_FS_CLASS,
    LOCAL_FS_CONTEXT_CLASS,
    jars_dir,
    own_jar,
    resolved_jars,
)
from featurekiln.settings import (
    S3_COMMITS_SINGLE_DRIVER,
    Settings,
    java_home,
    prepare_process_environment,
    under_spark_submit,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")
JAVA_OPTIONS = f"-Duser.timezone=UTC -Dlog4j2.configurationFile={LOG4J_CONFIG.as_uri()}"

BASE_CONF: dict[str, str] = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.extraJavaOptions": JAVA_OPTIONS,
    "spark.executor.extraJavaOptions": JAVA_OPTIONS,
    "spark.ui.showConsoleProgress": "false",
    # Plain-text log lines (Spark 4 defaults to JSON records), for --debug and the JVM log file.
    "spark.log.structuredLogging.enabled": "false",
    "spark.sql.sources.partitionOverwriteMode": "static",
    # SQL text is taken as written: no '${...}' replaced by Spark settings or system properties.
    "spark.sql.variable.substitute": "false",
    # New tables keep their commit log (and so the record of which definition wrote each day,
    # see offline.delta_table.day_fingerprints) for ten years instead of thirty days.
    "spark.databricks.delta.properties.defaults.logRetentionDuration": "interval 3650 days",
}
LOCAL_CONF: dict[str, str] = {
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.sql.adaptive.coalescePartitions.initialPartitionNum": "8",
    "spark.driver.memory": "4g",
    # Listing a source with more than 32 partition directories is a Spark job with one task per
    # directory; 4 tasks list a few hundred landing days far faster (bench/README.md).
    "spark.sql.sources.parallelPartitionDiscovery.parallelism": "4",
}

# Delta picks a table's log store by the scheme of its path, from the driver's Spark settings.
S3_LOG_STORE_KEYS = ("spark.delta.logStore.s3a.impl", "spark.delta.logStore.s3.impl")
SINGLE_DRIVER_LOG_STORE = "io.delta.storage.S3SingleDriverLogStore"

log = logging.getLogger(__name__)
_jvm_log: dict[str, object] = {"path": None, "keep": False}


def spark_packages(warehouse: str) -> list[str]:
    """Maven packages a session needs: Delta, and hadoop-aws for an ``s3a://`` warehouse."""
    from featurekiln.s3 import is_s3

    return [DELTA_PACKAGE, *([HADOOP_AWS_PACKAGE] if is_s3(warehouse) else [])]


def commit_conf(settings: Settings) -> dict[str, str]:
    """Spark settings that make Delta's commits to an ``s3a://`` warehouse safe for concurrent writers.

    With ``settings.s3_commits`` ``conditional`` (the default) every ``s3a://`` and
    ``s3://`` table commits through
    :data:`~featurekiln.internals.jars.CONDITIONAL_PUT_LOG_STORE_CLASS`: a commit file
    is one put-if-absent, and a writer that loses the race for a version retries at
    the next one (Delta's conflict check), whichever machine it runs on
    (docs/object-store.md). The store is probed once per process
    (:func:`featurekiln.s3.check_conditional_writes`). With ``single-driver`` it is
    Delta's own S3 log store, safe only while one process at a time writes each
    table; that is logged as a warning.

    Raises:
        CommitSafetyError: conditional commits were asked for but featurekiln's jar
            could not be built (no JDK ``javac``), or the store does not honour
            conditional writes.
        ObjectStoreError: the store cannot be reached.
    """
    from featurekiln.s3 import CommitSafetyError, check_conditional_writes

    if settings.s3_commits == S3_COMMITS_SINGLE_DRIVER:
        log.warning(
            "KILN_OBJECT_STORE_COMMITS=single-driver: Delta's S3 log store is safe only while one process at a time "
            "writes each table of %s; concurrent writers can lose commits",
            settings.warehouse,
        )
        return dict.fromkeys(S3_LOG_STORE_KEYS, SINGLE_DRIVER_LOG_STORE)
    if own_jar() is None:
        raise CommitSafetyError(
            f"commits to {settings.warehouse} need featurekiln's log store, which is compiled by a JDK's javac, "
            "and there is none (or it failed, see the .failed file next to the jars): install a JDK, or set "
            "KILN_OBJECT_STORE_COMMITS=single-driver and run one writer at a time (docs/object-store.md)"
        )
    check_conditional_writes(settings)
    return dict.fromkeys(S3_LOG_STORE_KEYS, CONDITIONAL_PUT_LOG_STORE_CLASS)


def _check_commit_conf(spark: SparkSession, expected: dict[str, str]) -> None:
    """A session that was started without the log store settings cannot get them any more: refuse it."""
    from featurekiln.s3 import CommitSafetyError

    running = spark.sparkContext.getConf()
    for key, value in expected.items():
        if running.get(key) != value:
            raise CommitSafetyError(
                f"this process's Spark session started with {key}={running.get(key)!r}, not {value!r}, and Delta "
                "reads it only at start: stop that session before featurekiln's (or start it with "
                "featurekiln.spark_session())"
            )


def keep_jvm_log() -> str | None:
    """Keep this process's JVM log file after exit (a failure wants it read); its path, if any."""
    _jvm_log["keep"] = True
    path = _jvm_log["path"]
    return str(path) if path else None


def _remove_jvm_log() -> None:
    path = _jvm_log["path"]
    if path and not _jvm_log["keep"]:
        Path(str(path)).unlink(missing_ok=True)


def _launch_quiet_gateway(conf: dict[str, str]) -> None:
    """Start the driver JVM with its output in a log file, for the session builder to pick up."""
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway

    spark_conf = SparkConf(loadDefaults=False)
    for key, value in conf.items():
        spark_conf.set(key, value)
    handle, path = tempfile.mkstemp(prefix=f"featurekiln-spark-{os.getpid()}-", suffix=".log")
    _jvm_log["path"] = path
    atexit.register(_remove_jvm_log)
    with os.fdopen(handle, "ab") as log:
        gateway = launch_gateway(spark_conf, popen_kwargs={"stdout": log, "stderr": log})
    SparkContext._ensure_initialized(gateway=gateway, conf=spark_conf)  # noqa: SLF001 - pyspark's hook for a gateway


def get_spark(
    settings: Settings, conf: dict[str, str] | None = None, app_name: str = "featurekiln", *, submitted: bool = False
) -> SparkSession:
    """Return the Spark session, creating it on first use.

    Args:
        settings: ``spark_master`` is the master (``local[...]`` also applies
            small-machine defaults); an ``s3a://`` warehouse adds hadoop-aws and
            points s3a at the store as :mod:`featurekiln.s3` resolves it;
            ``debug`` lets the JVM print to the terminal (WARN and above) instead
            of a log file.
        conf: extra Spark settings; they win over the defaults.
        app_name: the application name shown in the Spark UI.
        submitted: the process runs under ``spark-submit`` (the ``jobs/`` entry
            points), which sets the master and the jars.

    Returns:
        A session with Delta Lake (pre-resolved jars, see :mod:`featurekiln.internals.jars`)
        and the SQL session time zone set to UTC. If a session already exists it
        is reused: the SQL and s3a settings are applied to it.

    Raises:
        JarResolutionError: the pinned jars are not resolved yet and Maven Central
            cannot be reached.
        ObjectStoreError: the warehouse is on S3 and boto3 finds no credentials.
        CommitSafetyError: the warehouse is on S3 and Delta's commits there cannot
            be made safe for concurrent writers (:func:`commit_conf`).
    """
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    from featurekiln.s3 import is_s3, s3a_conf

    prepare_process_environment()
    submitted = submitted or under_spark_submit()
    master = None if submitted else settings.spark_master
    options = dict(BASE_CONF)
    if master is not None and master.startswith("local"):
        options.update(LOCAL_CONF)
        options.update(local_fs_conf())
        options["spark.driver.extraJavaOptions"] = local_java_options()
    commits: dict[str, str] = {}
    if is_s3(settings.warehouse):
        options.update(s3a_conf(settings))
        commits = commit_conf(settings)
        options.update(commits)
    options.update(conf or {})
    if not submitted:
        options["spark.jars"] = ",".join(resolved_jars(spark_packages(settings.warehouse)) + cluster_jars(master))
    launch = {**options, "spark.app.name": app_name, **({"spark.master": master} if master is not None else {})}
    if SparkContext._gateway is None and not submitted and not settings.debug:  # noqa: SLF001
        _launch_quiet_gateway(launch)
    builder = SparkSession.builder
    for key, value in launch.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    _check_commit_conf(spark, {key: options[key] for key in commits})
    for key, value in options.items():
        if key.startswith("spark.sql.") and not key.startswith(("spark.sql.extensions", "spark.sql.catalog")):
            spark.conf.set(key, value)
        elif key.startswith("spark.hadoop."):
            set_option(spark, key[len("spark.hadoop."):], value)
    spark.sparkContext.setLogLevel("WARN" if settings.debug else "ERROR")
    _quiet_python_loggers(settings.debug)
    return spark


def class_archive_path() -> Path:
    """Where the driver JVM's class-data-sharing archive lives, for this Java, pyspark and featurekiln's jar.

    ``scripts/class_archive.py`` (``make setup``) records it from a small run of
    every step; a local session whose JVM starts with it maps the classes that run
    loaded instead of loading and verifying them again (bench/README.md). The JVM
    checks that an archive matches its own build and class path and ignores it
    otherwise.
    """
    import pyspark

    home = java_home()
    java = str(Path(home, "bin", "java")) if home else shutil.which("java")
    key = f"{Path(java).resolve() if java else ''}|{pyspark.__version__}|{own_jar() or ''}"
    return jars_dir() / f"driver-classes-{hashlib.sha256(key.encode()).hexdigest()[:12]}.jsa"


def local_java_options() -> str:
    """The driver's Java options for a local master: the class archive when it was recorded."""
    archive = class_archive_path()
    return f"{JAVA_OPTIONS} -XX:SharedArchiveFile={archive}" if archive.is_file() else JAVA_OPTIONS


def local_fs_conf() -> dict[str, str]:
    """For a local master: ``file:`` paths through featurekiln's local file system, when its jar exists.

    Hadoop's own starts a ``chmod`` process for every file it creates and a
    ``readlink`` process for every link check (no native library in pip's pyspark);
    :data:`~featurekiln.internals.jars.LOCAL_FS_CLASS` (Spark's files) and
    :data:`~featurekiln.internals.jars.LOCAL_FS_CONTEXT_CLASS` (Delta's commit log)
    do the same with system calls, which makes a backfill on a local disk
    faster (bench/README.md). The jar goes on the driver's
    class path, which in local mode is also the executors' (and so are
    :data:`~featurekiln.internals.jars.MAX_PAIR_CLASS`,
    :data:`~featurekiln.internals.jars.REPEATED_KEYS_CLASS` and
    :data:`~featurekiln.internals.jars.CONDITIONAL_PUT_LOG_STORE_CLASS`, with Delta's
    storage jar that the log store extends).
    """
    jar = own_jar()
    if jar is None:
        return {}
    # The log store extends Delta's storage classes: they load from the same class path as it.
    storage = [j for j in resolved_jars([DELTA_PACKAGE]) if Path(j).name.startswith(DELTA_STORAGE_JAR)]
    return {
        "spark.driver.extraClassPath": os.pathsep.join([jar, *storage]),
        "spark.hadoop.fs.file.impl": LOCAL_FS_CLASS,
        "spark.hadoop.fs.AbstractFileSystem.file.impl": LOCAL_FS_CONTEXT_CLASS,
    }


def cluster_jars(master: str | None) -> list[str]:
    """featurekiln's jar for a session that is not local (its executors fetch it), when it exists.

    :data:`~featurekiln.internals.jars.MAX_PAIR_CLASS` and
    :data:`~featurekiln.internals.jars.REPEATED_KEYS_CLASS` are used there, and
    on the driver :data:`~featurekiln.internals.jars.CONDITIONAL_PUT_LOG_STORE_CLASS`
    (loaded with Delta's jars, which it extends): a cluster keeps Hadoop's file
    systems. A local session has the jar on its class path already
    (:func:`local_fs_conf`).
    """
    if master is not None and master.startswith("local"):
        return []
    jar = own_jar()
    return [jar] if jar else []


def _quiet_python_loggers(debug: bool) -> None:
    """pyspark logs every failed query as a JSON record on stderr; featurekiln's error says it once."""
    from pyspark.logger import PySparkLogger

    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).setLevel(logging.ERROR if debug else logging.CRITICAL)

