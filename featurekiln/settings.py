"""Settings shared by the CLI, the jobs and the DAG factory (pure: no heavy imports)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

DEFAULT_DEFS = "feature_defs"
DEFAULT_EXPECTATIONS = "expectations"
DEFAULT_WAREHOUSE = "warehouse"
DEFAULT_CHUNK_DAYS = 30
DEFAULT_MAX_ACTIVE_RUNS = 2
DEFAULT_VERIFY_SAMPLE = 1000
# How Delta commits to an s3a:// warehouse (featurekiln/compute/session.py, docs/object-store.md).
S3_COMMITS_CONDITIONAL = "conditional"
S3_COMMITS_SINGLE_DRIVER = "single-driver"
S3_COMMITS = (S3_COMMITS_CONDITIONAL, S3_COMMITS_SINGLE_DRIVER)
DEFAULT_RETAIN_DAYS = 30
DEFAULT_MAINTENANCE_SCHEDULE = "@weekly"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def _env_bool(name: str, default: bool) -> bool:
    """Read a boolean environment variable (1/0, true/false, yes/no, on/off)."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    text = raw.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{name}={raw!r} is not a boolean; use true or false")


def _env_optional(name: str) -> str | None:
    raw = os.environ.get(name, "").strip()
    return raw or None


def _env_days(name: str) -> int | None:
    raw = _env_optional(name)
    if raw is None:
        return None
    if not raw.isdigit():
        raise ValueError(f"{name}={raw!r} is not a whole number of days (0 or more)")
    return int(raw)


@dataclass(frozen=True)
class Settings:
    """Where definitions live, where tables go and how Spark runs.

    Attributes:
        defs_dir: directory of ``<view>.yaml`` files (env ``KILN_DEFS``).
        expectations_dir: directory of Great Expectations suites ``<suite>.json``
            (env ``KILN_EXPECTATIONS``).
        warehouse: warehouse root, a local path or a URI such as ``s3a://bucket/wh``
            (env ``KILN_WAREHOUSE``). Relative source paths resolve against it.
        spark_master: Spark master URL (env ``KILN_SPARK_MASTER``, default ``local[*]``).
        chunk_days: days per validated chunk of a run (env ``KILN_CHUNK_DAYS``).
        catchup: whether the Airflow DAGs catch up on missed runs since the view's
            start (env ``KILN_CATCHUP``, default false).
        max_active_runs: how many runs of one view's DAG are active at once (env
            ``KILN_MAX_ACTIVE_RUNS``, default 2): a nightly run can proceed beside one
            long trigger-form backfill, and catch-up goes two nights at a time; further
            runs wait queued (docs/orchestration.md, "Overlapping runs").
        spark_conn_id: Airflow connection id of a Spark cluster (env
            ``KILN_SPARK_CONN_ID``). When set, Airflow runs ``jobs/materialize.py``
            through ``spark-submit``; when unset, tasks run Spark in-process on
            ``spark_master``.
        retries: how often Airflow retries a failed task (env ``KILN_RETRIES``).
        strict: the DAG file fails on the first broken definition instead of showing
            it as a failing DAG (env ``KILN_STRICT``; for CI).
        online_store: the online store as a URL such as ``sqlite:///path``,
            ``redis://host:port/db`` or ``dynamodb://?region=...`` (env
            ``KILN_ONLINE_STORE``); None means ``kiln.yaml``, else SQLite under the warehouse.
        materialize_job: the ``jobs/materialize.py`` that cluster mode submits (env
            ``KILN_MATERIALIZE_JOB``; None means the project's own).
        debug: show Spark's own log on the terminal and tracebacks (env ``KILN_DEBUG``,
            the CLI's ``--debug``); off, a JVM start prints nothing.
        verify_online: the DAGs of online views get a ``verify_online`` task after ``push_online``
            that fails the run when the store does not serve the pushed snapshot (env
            ``KILN_VERIFY_ONLINE``, default false).
        verify_sample: keys that ``verify_online`` checks each way; 0 checks every key (env
            ``KILN_VERIFY_SAMPLE``).
        s3_endpoint: the S3-compatible endpoint of an ``s3a://`` warehouse, such as
            MinIO's ``http://minio:9000`` (env ``AWS_ENDPOINT_URL_S3``, else
            ``AWS_ENDPOINT_URL``, as boto3 reads them); None means AWS's own endpoint.
        aws_region: the AWS region (env ``AWS_REGION``, else ``AWS_DEFAULT_REGION``);
            None means the profile's region. Credentials and path-style access come
            from boto3's own chain (see :mod:`featurekiln.s3`).
        s3_commits: how Delta commits to an ``s3a://`` warehouse (env ``KILN_OBJECT_STORE_COMMITS``):
            ``conditional`` (the default) writes each commit file as a put-if-absent, safe
            with any number of writers, and refuses to start where the store or the
            installation cannot do that; ``single-driver`` is Delta's own S3 log store,
            safe only while one process at a time writes each table (docs/object-store.md).
        retain_days: how long replaced table files, old versions and finished runs' leftovers are
            kept (env ``KILN_RETAIN_DAYS``); None means ``retain_days:`` of ``kiln.yaml``, else 30
            (:mod:`featurekiln.offline.retention` says what it guarantees).
        maintenance_schedule: the schedule of the ``kiln_maintenance`` DAG, a cron expression or
            preset (env ``KILN_MAINTENANCE_SCHEDULE``, default ``@weekly``; ``none`` for manual runs).
        java_classes: whether Spark sessions load featurekiln's Java classes (env ``KILN_JAVA_CLASSES``,
            default true); off, the pure-Spark fallbacks of featurekiln/internals/README.md run instead.
    """

    defs_dir: Path = Path(DEFAULT_DEFS)
    expectations_dir: Path = Path(DEFAULT_EXPECTATIONS)
    warehouse: str = DEFAULT_WAREHOUSE
    spark_master: str = "local[*]"
    chunk_days: int = DEFAULT_CHUNK_DAYS
    catchup: bool = False
    max_active_runs: int = DEFAULT_MAX_ACTIVE_RUNS
    spark_conn_id: str | None = None
    retries: int = 1
    strict: bool = False
    online_store: str | None = None
    debug: bool = False
    materialize_job: str | None = None
    verify_online: bool = False
    verify_sample: int = DEFAULT_VERIFY_SAMPLE
    s3_endpoint: str | None = None
    aws_region: str | None = None
    s3_commits: str = S3_COMMITS_CONDITIONAL
    retain_days: int | None = None
    maintenance_schedule: str = DEFAULT_MAINTENANCE_SCHEDULE
    java_classes: bool = True

    def __post_init__(self) -> None:
        if self.s3_commits not in S3_COMMITS:
            raise ValueError(f"KILN_OBJECT_STORE_COMMITS={self.s3_commits!r} is not one of {', '.join(S3_COMMITS)}")

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from the ``KILN_*`` environment variables, then ``overrides`` (None is ignored)."""
        settings = cls(
            defs_dir=Path(os.environ.get("KILN_DEFS", DEFAULT_DEFS)),
            expectations_dir=Path(os.environ.get("KILN_EXPECTATIONS", DEFAULT_EXPECTATIONS)),
            warehouse=os.environ.get("KILN_WAREHOUSE", DEFAULT_WAREHOUSE),
            spark_master=os.environ.get("KILN_SPARK_MASTER", "local[*]"),
            chunk_days=int(os.environ.get("KILN_CHUNK_DAYS", DEFAULT_CHUNK_DAYS)),
            catchup=_env_bool("KILN_CATCHUP", False),
            max_active_runs=int(os.environ.get("KILN_MAX_ACTIVE_RUNS", DEFAULT_MAX_ACTIVE_RUNS)),
            spark_conn_id=_env_optional("KILN_SPARK_CONN_ID"),
            retries=int(os.environ.get("KILN_RETRIES", 1)),
            strict=_env_bool("KILN_STRICT", False),
            online_store=_env_optional("KILN_ONLINE_STORE"),
            debug=_env_bool("KILN_DEBUG", False),
            materialize_job=_env_optional("KILN_MATERIALIZE_JOB"),
            verify_online=_env_bool("KILN_VERIFY_ONLINE", False),
            verify_sample=int(os.environ.get("KILN_VERIFY_SAMPLE", DEFAULT_VERIFY_SAMPLE)),
            s3_endpoint=_env_optional("AWS_ENDPOINT_URL_S3") or _env_optional("AWS_ENDPOINT_URL"),
            aws_region=_env_optional("AWS_REGION") or _env_optional("AWS_DEFAULT_REGION"),
            s3_commits=os.environ.get("KILN_OBJECT_STORE_COMMITS", S3_COMMITS_CONDITIONAL).strip().lower(),
            retain_days=_env_days("KILN_RETAIN_DAYS"),
            maintenance_schedule=os.environ.get("KILN_MAINTENANCE_SCHEDULE", DEFAULT_MAINTENANCE_SCHEDULE),
            java_classes=java_classes_enabled(),
        )
        given = {k: v for k, v in overrides.items() if v is not None}
        for name in ("defs_dir", "expectations_dir"):
            if name in given:
                given[name] = Path(str(given[name]))
        if "warehouse" in given:
            given["warehouse"] = str(given["warehouse"])
        return replace(settings, **given)

    def resolve(self, path: str) -> str:
        """Resolve a source path from a definition: absolute paths and URIs stay as they are."""
        if "://" in path or os.path.isabs(path):
            return path
        return self.warehouse_path(path)

    def warehouse_path(self, *parts: str) -> str:
        """A path below the warehouse root (absolute for local warehouses)."""
        root = self.warehouse.rstrip("/")
        if "://" not in root:
            root = os.path.abspath(root)
        return "/".join([root, *parts])


# The process environment that featurekiln reads or sets besides its own KILN_* settings.


def under_spark_submit() -> bool:
    """Whether this process was started by ``spark-submit`` (its JVM is already running)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def python_path() -> str:
    """The ``PYTHONPATH`` of this process ("" when unset), for processes it starts."""
    return os.environ.get("PYTHONPATH", "")


def java_classes_enabled() -> bool:
    """``KILN_JAVA_CLASSES`` (default true): whether featurekiln's jar is built and put on Spark's class path.

    Read from the environment where it is used (:func:`featurekiln.internals.jars.own_jar`), so that it
    holds for every session of the process; ``Settings.java_classes`` shows the same value.
    """
    return _env_bool("KILN_JAVA_CLASSES", True)


def java_home() -> str | None:
    """``JAVA_HOME``, the Java that Spark runs when it is set (else the ``java`` on the ``PATH``)."""
    return os.environ.get("JAVA_HOME") or None


def prepare_process_environment() -> None:
    """Settings of libraries that only read the environment: Spark's Python workers use
    this interpreter; Great Expectations sends no analytics."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
