"""``kiln run``: a changed definition is refused or rebuilt (real Spark, Delta).

Night-by-night runs against the oracle: ``tests/offline/test_incremental.py``."""

from __future__ import annotations

import copy
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from featurekiln.definitions.models import FeatureView
from featurekiln.errors import StaleTableError
from featurekiln.samples import purchases_frame, write_sample_sources
from featurekiln.settings import Settings
from tests.oracle import assert_frames_match, expected_snapshots

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE = {"start": date(2025, 1, 1), "days": 20, "users": 60}
VIEW = "user_purchases"


def day(n: int) -> date:
    return date(2025, 1, 1) + timedelta(days=n - 1)


def raw_definition(**changes: Any) -> dict[str, Any]:
    raw = yaml.safe_load((REPO_ROOT / "feature_defs" / f"{VIEW}.yaml").read_text())
    raw = copy.deepcopy(raw)
    raw.update(changes)
    raw.pop("expectations", None)
    return raw


def expected(raw: dict[str, Any], first: date, last: date):  # noqa: ANN201 - a pandas DataFrame
    events = purchases_frame(seed=5, **SAMPLE)
    return expected_snapshots(events[events["status"] == "completed"], raw, first, last)


@pytest.fixture
def settings(warehouse: Path) -> Settings:
    write_sample_sources(warehouse, seed=5, **SAMPLE)
    return Settings(defs_dir=REPO_ROOT / "feature_defs", expectations_dir=warehouse / "no_suites",
                    warehouse=str(warehouse), spark_master="local[2]")


def table(spark: SparkSession, settings: Settings, collect_frame):  # noqa: ANN001, ANN201
    from featurekiln.offline.delta_table import read_table

    return collect_frame(read_table(spark, settings, VIEW))


def test_a_changed_window_is_refused_then_rebuilt_with_on_change_rebuild(
    spark: SparkSession, settings: Settings, collect_frame
) -> None:
    from featurekiln import runner

    raw = raw_definition(start="2025-01-01", online=False)
    runner.run(FeatureView.model_validate(raw), day(6), settings=settings, spark=spark)

    changed = copy.deepcopy(raw)
    changed["features"][0]["window"] = "3d"
    view = FeatureView.model_validate(changed)
    plan = runner.plan_run(view, day(7), settings=settings)
    assert plan.stale == ((day(1), day(7)),) and plan.missing == ((day(7), day(8)),)
    with pytest.raises(StaleTableError, match=r"kiln backfill user_purchases --start 2025-01-01 --end 2025-01-06"):
        runner.run(view, day(7), settings=settings, spark=spark)

    rebuilt = runner.run(view.model_copy(update={"on_change": "rebuild"}), day(7), settings=settings, spark=spark)
    assert rebuilt.view_plan.will_compute == rebuilt.plan.ranges == ((day(1), day(8)),)
    assert runner.plan_run(view, day(7), settings=settings).stale == ()
    assert_frames_match(table(spark, settings, collect_frame), expected(changed, day(1), day(7)), ["user_id"])
