"""Shared fixtures: the one session-scoped Spark session, a temporary warehouse, moto's server.

Dummy AWS credentials are set at import (if unset), before the session's Spark
starts, so that every boto3 client and Spark's executors find them, and no
test can reach a real AWS account. So is ``SPARK_CONF_DIR`` (tests/spark_conf):
the Java options of the JVMs of the processes the tests start.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.online.servers import AWS_ENV, MotoServer, free_port, serve

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

for _name, _value in AWS_ENV.items():
    os.environ.setdefault(_name, _value)
# The JVMs of the processes the tests start (`kiln`, Airflow tasks, spark-submit) read Spark's defaults here.
os.environ.setdefault("SPARK_CONF_DIR", str(Path(__file__).with_name("spark_conf")))
_buckets = itertools.count()

# Test tiers by kind (markers registered in pyproject.toml): a test that uses one of these fixtures,
# directly or through another fixture, gets the marker; a test that starts a JVM or a server by
# itself (a `kiln` subprocess that computes, a server it kills) carries the marker explicitly.
SPARK_FIXTURES = frozenset({"spark"})
SERVER_FIXTURES = frozenset({"moto_server", "redis_server", "airflow_db", "airflow_server", "browser"})
# The ``store`` fixture's backends that start a server (tests/online/conftest.py).
SERVER_STORES = frozenset({"redis", "dynamodb"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test ``spark`` or ``server`` from the fixtures it uses; ``make test-fast`` deselects both.

    The files that hold a ``slow`` test run first (in their order), so that the workers of ``make test``
    (``pytest -n 2 --dist loadfile``) do not end on one long file.
    """
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: (item.path not in slow_files, item.path.name != "test_rehearsal.py"))
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & SPARK_FIXTURES:
            item.add_marker(pytest.mark.spark)
        callspec = getattr(item, "callspec", None)
        store = callspec.params.get("store") if callspec is not None else None
        if names & SERVER_FIXTURES or store in SERVER_STORES:
            item.add_marker(pytest.mark.server)


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """The one Spark session of the test run: local[2], 2 shuffle partitions, Delta, UTC.

    It lives as long as the test run and computes most of it, so its JVM keeps Java's default compilers and
    collector (tests/spark_conf tunes the short-lived JVMs of child processes; bench/README.md, "Test JVMs").
    """
    from featurekiln.compute.session import get_spark
    from featurekiln.settings import Settings

    defaults = {"spark.driver.defaultJavaOptions": "-XX:+TieredCompilation -XX:+UseG1GC"}
    session = get_spark(Settings(spark_master="local[2]"), conf={"spark.sql.shuffle.partitions": "2", **defaults})
    yield session
    session.stop()


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """moto's server (DynamoDB and S3 over HTTP) on a free loopback port, one per test session."""
    yield from serve(MotoServer(free_port(), tmp_path_factory.mktemp("moto")))


@pytest.fixture
def s3_bucket(moto_server: MotoServer) -> str:
    """A new, empty bucket on the moto server (its name)."""
    import boto3

    name = f"kiln-test-{os.getpid()}-{next(_buckets)}"
    boto3.client("s3", endpoint_url=moto_server.endpoint_url, region_name=AWS_ENV["AWS_DEFAULT_REGION"]).create_bucket(
        Bucket=name
    )
    return name


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    """An empty warehouse root below the test's temporary directory."""
    root = tmp_path / "warehouse"
    root.mkdir()
    return root


def _collect_frame(frame: DataFrame) -> pd.DataFrame:
    import pandas as pd
    from pyspark.sql import functions as F
    from pyspark.sql.types import TimestampNTZType, TimestampType

    stamps = [f.name for f in frame.schema.fields if isinstance(f.dataType, TimestampType | TimestampNTZType)]
    micros = frame.select(*[F.unix_micros(F.col(c)).alias(c) if c in stamps else F.col(c) for c in frame.columns])
    rows = [row.asDict() for row in micros.collect()]
    columns = {c: pd.Series([r[c] for r in rows], dtype=object) for c in frame.columns}
    for c in stamps:
        columns[c] = pd.Series(
            [None if v is None else pd.Timestamp(v, unit="us", tz="UTC") for v in columns[c]], dtype=object
        )
    return pd.DataFrame(columns, columns=frame.columns)


@pytest.fixture(scope="session")
def collect_frame() -> Callable[[DataFrame], pd.DataFrame]:
    """Collect a (small) Spark DataFrame into pandas with plain Python values.

    Ints stay exact ints, nulls are None, dates are ``datetime.date`` and
    timestamps are UTC ``pd.Timestamp`` whatever the process time zone.
    """
    return _collect_frame
