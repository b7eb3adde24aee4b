"""A downstream DAG: rebuild a training set whenever new snapshots of its feature tables are published.

Copy this file into your ``dags/`` folder and edit the constants. It runs once
every listed view's ``publish`` task has updated its Asset since the last run
(a list of Assets means "all of them"; write ``asset_a | asset_b`` for "any").
Each run writes ``<warehouse>/training_sets/<NAME>/<run date>/`` with the record
``_kiln_training_set.json`` (the Delta version read of every feature table), so
any earlier set can be rebuilt exactly with ``kiln training-set ... --as-of-version``.
"""

from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk import DAG, get_current_context, task

from featurekiln.orchestration.assets import feature_asset
from featurekiln.settings import Settings

NAME = "churn_labels"
SPINE = "raw/churn_labels"  # below the warehouse: parquet, CSV or Delta, with user_id and ts
FEATURES = ["user_purchases", "user_clicks:clicks_1d"]  # the sample views in feature_defs/
KEY_MAP: dict[str, str] = {}  # where a spine column is named otherwise, e.g. {"user_clicks.user_id": "customer"}
settings = Settings.from_env()

with DAG(
    dag_id=f"training_set_{NAME}",
    schedule=[feature_asset(view.split(":")[0], settings) for view in FEATURES],
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["featurekiln", "training-set"],
):

    @task
    def build_training_set() -> dict[str, object]:
        """Join the spine with the snapshots before each row's time; write it with its record."""
        from featurekiln.compute.session import get_spark
        from featurekiln.training import TrainingRequest, write_training_set

        day = get_current_context()["dag_run"].run_after.date().isoformat()
        result = write_training_set(
            get_spark(settings),
            settings.resolve(SPINE),
            settings.warehouse_path("training_sets", NAME, day),
            TrainingRequest(tuple(FEATURES), "ts", KEY_MAP),
            settings,
        )
        return {"out": result.out, "record": result.record, **result.report.to_dict()}

    build_training_set()
