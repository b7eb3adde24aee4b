"""Reading a source: runtime errors name the view, the file:line and the YAML field."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from featurekiln.compute.sources import read_events
from featurekiln.definitions import load_catalog
from featurekiln.errors import SourceError
from featurekiln.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

EVENTS = (date(2025, 1, 1), date(2025, 1, 3))


def _view(tmp_path: Path, **changes: object):  # noqa: ANN202 - a FeatureView
    definition: dict[str, object] = {
        "name": "clicks",
        "entity": {"name": "user", "keys": ["user_id"]},
        "source": {"path": "raw/clicks", "format": "parquet", "timestamp": "ts"},
        "start": "2025-01-01",
        "features": [{"name": "n_7d", "agg": "count", "window": "7d"}, {"name": "s_7d", "agg": "sum", "expr": "amount", "window": "7d"}],
    }
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = definition
        for part in parents:
            node = node[part] if not part.isdigit() else node[int(part)]  # type: ignore[index]
        node[int(last) if last.isdigit() else last] = value  # type: ignore[index]
    defs = tmp_path / "defs"
    defs.mkdir(exist_ok=True)
    (defs / "clicks.yaml").write_text(yaml.safe_dump(definition, sort_keys=False))
    return load_catalog(defs)["clicks"]


@pytest.fixture
def settings(spark: SparkSession, warehouse: Path) -> Settings:
    import pandas as pd

    frame = pd.DataFrame({"user_id": [1, 2], "ts": pd.to_datetime(["2025-01-01 10:00", "2025-01-02 11:00"], utc=True),
                          "amount": [1.5, 2.5]})
    spark.createDataFrame(frame).write.parquet(str(warehouse / "raw" / "clicks"))
    return Settings(warehouse=str(warehouse))


def _error(spark: SparkSession, view, settings: Settings) -> str:  # noqa: ANN001
    with pytest.raises(SourceError) as caught:
        read_events(spark, view, settings, EVENTS).collect()
    return str(caught.value)


def test_a_missing_source_path_names_the_file_line_and_field(spark: SparkSession, settings: Settings, tmp_path: Path) -> None:
    message = _error(spark, _view(tmp_path, source__path="raw/nothing_here"), settings)
    assert message.startswith("clicks: ")
    assert "clicks.yaml:7: source.path: no parquet data at " in message and "raw/nothing_here" in message


def test_an_expression_that_does_not_resolve_names_its_feature(spark: SparkSession, settings: Settings, tmp_path: Path) -> None:
    message = _error(spark, _view(tmp_path, features__1__expr="amount_eur * 2"), settings)
    assert "clicks.yaml:17: features[1].expr: 'amount_eur * 2' does not resolve against the source" in message


def test_a_missing_timestamp_column_names_source_timestamp(spark: SparkSession, settings: Settings, tmp_path: Path) -> None:
    message = _error(spark, _view(tmp_path, source__timestamp="event_ts"), settings)
    assert "clicks.yaml:9: source.timestamp: the source has no column 'event_ts'; it has: amount, ts, user_id" in message


def test_a_timestamp_of_the_wrong_type_is_refused(spark: SparkSession, settings: Settings, tmp_path: Path) -> None:
    message = _error(spark, _view(tmp_path, source__timestamp="amount"), settings)
    assert "clicks.yaml:9: source.timestamp: column 'amount' is double, not a timestamp" in message


def test_a_missing_key_column_names_entity_keys(spark: SparkSession, settings: Settings, tmp_path: Path) -> None:
    message = _error(spark, _view(tmp_path, entity__keys=["account_id"]), settings)
    assert "clicks.yaml:4: entity.keys: the source has no column 'account_id'" in message
