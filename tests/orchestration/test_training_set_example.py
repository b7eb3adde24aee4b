"""The downstream training-set DAG of docs/examples: scheduled on the feature tables' Assets, and it runs.

It is parsed by Airflow as if copied into a DAG folder (a DAG bundle of its own), and run
with ``dag.test()`` (in this process, on the session's Spark) against snapshots
that ``runner.backfill`` published; its output is checked against the published
rows, joined in pandas.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from tests.orchestration.conftest import REPO_ROOT, SAMPLE_DEFS

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("airflow_db")]

EXAMPLE = REPO_ROOT / "docs" / "examples" / "training_set_dag.py"
DAG_ID = "training_set_churn_labels"
BUNDLE = "kiln_examples"
SNAPSHOT = date(2025, 1, 9)  # what spine rows of 2025-01-10 get


def test_the_example_is_scheduled_on_the_published_assets_and_writes_the_training_set(
    sample_warehouse, monkeypatch, spark, collect_frame
) -> None:
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db

    from featurekiln import runner
    from featurekiln.definitions import load_catalog
    from featurekiln.orchestration import build_dags
    from featurekiln.settings import Settings

    warehouse = sample_warehouse("training_example")
    for key, value in {"KILN_DEFS": str(SAMPLE_DEFS), "KILN_WAREHOUSE": str(warehouse),
                       "KILN_SPARK_MASTER": "local[2]"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("KILN_SPARK_CONN_ID", raising=False)
    settings = Settings.from_env()
    views = load_catalog(SAMPLE_DEFS)

    # As if copied into a DAG folder: a DAG bundle of its own next to dags/, parsed by Airflow into its database.
    local = "airflow.dag_processing.bundles.local.LocalDagBundle"
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([
        {"name": "dags-folder", "classpath": local, "kwargs": {}},
        {"name": BUNDLE, "classpath": local, "kwargs": {"path": str(EXAMPLE.parent)}},
    ]))
    DagBundlesManager().sync_bundles_to_db()
    bag = BundleDagBag(dag_folder=str(EXAMPLE), bundle_path=EXAMPLE.parent, bundle_name=BUNDLE)
    assert not bag.import_errors, bag.import_errors
    sync_bag_to_db(bag, BUNDLE, None)
    dag = bag.dags[DAG_ID]
    feature_dags = build_dags(settings=settings).dags
    published = {o.uri for v in ("user_purchases", "user_clicks") for o in feature_dags[f"kiln_{v}"].get_task("publish").outlets}
    assert {a.uri for a in dag.timetable.asset_condition.objects} == published

    published_day = {}
    for name, columns in (("user_purchases", [f.name for f in views["user_purchases"].features]),
                          ("user_clicks", ["clicks_1d"])):
        runner.backfill(views[name], SNAPSHOT, SNAPSHOT, settings=settings, spark=spark)
        day = collect_frame(spark.read.format("delta").load(str(Path(settings.warehouse) / "features" / name))
                            .where(f"ds = '{SNAPSHOT}'"))
        published_day[name] = (columns, {row["user_id"]: row for row in day.to_dict("records")})
    known = sorted(set(published_day["user_purchases"][1]) & set(published_day["user_clicks"][1]))[:2]
    assert len(known) == 2, "the sample has users with snapshots of both views"
    at = [datetime(2025, 1, 10, h, tzinfo=timezone.utc) for h in (0, 7, 7, 23, 7)]
    # midnight, a duplicate row, a key never seen, a null key
    spine = pd.DataFrame({"user_id": pd.array([known[0], known[1], known[1], 999_999, None], dtype="Int64"),
                          "ts": at, "label": [1, 0, 0, 1, 0]})
    (warehouse / "raw" / "churn_labels").mkdir(parents=True)
    spine.to_parquet(warehouse / "raw" / "churn_labels" / "part-0.parquet", index=False, coerce_timestamps="us")

    run = dag.test()
    assert run.state == "success", [(ti.task_id, ti.state) for ti in run.get_task_instances()]
    [out] = (warehouse / "training_sets" / "churn_labels").iterdir()
    assert (out / "_kiln_training_set.json").is_file()
    got = collect_frame(spark.read.parquet(str(out)))

    names = [*spine.columns] + [f"{n}__{c}" for n, (columns, _) in published_day.items() for c in columns]
    assert list(got.columns) == names
    expected = []
    for user, ts, label in spine.itertuples(index=False):
        user = None if pd.isna(user) else int(user)
        row = [user, pd.Timestamp(ts), label]
        for columns, rows in published_day.values():
            found = rows.get(user, {})
            row += [found.get(c) for c in columns]
        expected.append(tuple(row))
    assert all(v is not None for v in expected[0][3:]), "the first spine row matches a snapshot row of each view"
    assert Counter(map(tuple, got.itertuples(index=False))) == Counter(expected)
