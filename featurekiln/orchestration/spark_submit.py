"""Cluster mode: the ``tiles`` and ``publish`` steps of a run's plan as ``spark-submit jobs/materialize.py``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featurekiln.orchestration.steps import spark_submit_args
from featurekiln.settings import Settings, python_path

if TYPE_CHECKING:
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MATERIALIZE_JOB = PROJECT_ROOT / "jobs" / "materialize.py"


def materialize_job(settings: Settings) -> str:
    """Path of the ``jobs/materialize.py`` entry point (``Settings.materialize_job`` overrides it)."""
    return settings.materialize_job or str(MATERIALIZE_JOB)


def submit_conf() -> dict[str, str]:
    """Spark settings every submitted job needs (Delta, UTC), from the one session factory."""
    from featurekiln.compute.session import BASE_CONF

    conf = dict(BASE_CONF)
    # Executors run Python workers with the same interpreter and can import featurekiln.
    conf["spark.pyspark.python"] = sys.executable
    conf["spark.executorEnv.PYTHONPATH"] = str(PROJECT_ROOT)
    return conf


def submit_jars(settings: Settings) -> str:
    """Jars of a submitted job: the pinned Delta jars (and hadoop-aws for s3a), resolved once, no Ivy per job,
    and featurekiln's own jar when it was compiled (its first/last partials)."""
    from featurekiln.internals.jars import resolved_jars
    from featurekiln.compute.session import cluster_jars, spark_packages

    return ",".join(resolved_jars(spark_packages(settings.warehouse)) + cluster_jars(None))


def submit_env(settings: Settings) -> dict[str, Any]:
    """Environment of the ``spark-submit`` process: the project importable, the same KILN_* settings."""
    path = python_path()
    return {
        "PYTHONPATH": os.pathsep.join(p for p in (str(PROJECT_ROOT), path) if p),
        "PYSPARK_PYTHON": sys.executable,
        "KILN_DEFS": str(settings.defs_dir),
        "KILN_WAREHOUSE": settings.warehouse,
    }


def step_operator(view: str, step: str, settings: Settings, outlets: list[Any] | None = None) -> SparkSubmitOperator:
    """A ``SparkSubmitOperator`` (task id ``step``) that runs one step of the run's plan on the cluster.

    Args:
        view: the view's name.
        step: ``tiles`` or ``publish``.
        settings: settings of the DAG (the Spark connection, defs, warehouse).
        outlets: the task's outlets (the feature table's Asset for ``publish``).
    """
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    return SparkSubmitOperator(
        task_id=step,
        conn_id=settings.spark_conn_id or "spark_default",
        application=materialize_job(settings),
        name=f"featurekiln-{step}",
        conf=submit_conf(),
        jars=submit_jars(settings),
        env_vars=submit_env(settings),
        application_args=spark_submit_args(view, step),
        outlets=outlets or [],
    )
