"""Airflow orchestration: one DAG per feature definition (no Spark import at parse time)."""

from __future__ import annotations

from featurekiln.orchestration.assets import feature_asset
from featurekiln.orchestration.factory import BuildResult, build_dags, dag_id_of

__all__ = ["BuildResult", "build_dags", "dag_id_of", "feature_asset"]
