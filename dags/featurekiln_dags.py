"""One Airflow DAG per feature definition in $KILN_DEFS (default: feature_defs/)."""

from __future__ import annotations

from featurekiln.orchestration import build_dags

build_dags(globals())
