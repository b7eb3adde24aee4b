"""Shared fixtures: the one session-scoped Spark session and a temporary warehouse."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: end-to-end test")


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """The one Spark session of the test run: local[2], 2 shuffle partitions, Delta, UTC."""
    from featurekiln.compute.session import get_spark

    session = get_spark(master="local[2]", conf={"spark.sql.shuffle.partitions": "2"})
    yield session
    session.stop()


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
