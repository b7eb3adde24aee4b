"""featurekiln: YAML feature definitions -> Airflow DAGs -> Spark -> Delta -> online store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__version__ = "0.1.0"
__all__ = ["spark_session", "training_set"]


def spark_session(app_name: str = "featurekiln", **overrides: object) -> SparkSession:
    """The Spark session featurekiln itself uses for the configured warehouse, for a user's own job.

    Built from the same settings as the CLI (``Settings.from_env``: ``KILN_*`` and
    the standard AWS variables; ``overrides`` such as ``warehouse=...`` win):
    Delta Lake, the SQL time zone UTC, and for an ``s3a://`` warehouse s3a pointed
    at the store with Delta's commits made safe for concurrent writers
    (docs/object-store.md), so a job may write to a table that featurekiln also
    writes. If this process already has a session it is returned, provided it was
    started with the same commit settings.

    Args:
        app_name: the application name shown in the Spark UI.
        **overrides: ``Settings`` fields to use instead of the environment's.

    Raises:
        CommitSafetyError: the warehouse is on S3 and its commits cannot be made safe.
        ObjectStoreError: the warehouse is on S3 and cannot be reached.
        JarResolutionError: the pinned jars are not resolved and Maven Central cannot be reached.
    """
    from featurekiln.compute.session import get_spark
    from featurekiln.settings import Settings

    return get_spark(Settings.from_env(**overrides), app_name=app_name)


def __getattr__(name: str) -> Any:
    """``featurekiln.training_set`` is imported on first use: ``import featurekiln`` stays light."""
    if name == "training_set":
        from featurekiln.training import training_set

        return training_set
    raise AttributeError(f"module 'featurekiln' has no attribute {name!r}")
