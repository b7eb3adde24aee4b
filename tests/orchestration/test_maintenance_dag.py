"""The ``kiln_maintenance`` DAG as the factory builds it beside the views' DAGs (parsed by Airflow; no Spark)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.orchestration.conftest import SAMPLE_DEFS, dag_bag

from featurekiln.definitions.loader import load_definitions
from featurekiln.settings import Settings

VIEWS = sorted(load_definitions(SAMPLE_DEFS).views)


def test_a_task_per_view_then_the_run_history_weekly_by_default() -> None:
    bag = dag_bag(SAMPLE_DEFS)
    dag = bag.dags["kiln_maintenance"]
    assert {t.task_id for t in dag.tasks} == {*(f"maintain_{v}" for v in VIEWS), "maintain_run_history"}
    history = dag.get_task("maintain_run_history")
    assert history.upstream_task_ids == {f"maintain_{v}" for v in VIEWS}
    assert history.trigger_rule == "all_done", "one view's failure does not skip the others' or the history's"
    assert dag.timetable.expression == "0 0 * * 0"
    assert dag.catchup is False and dag.max_active_runs == 1


def test_the_schedule_is_a_setting(monkeypatch) -> None:
    monkeypatch.setenv("KILN_MAINTENANCE_SCHEDULE", "30 4 * * 6")
    assert dag_bag(SAMPLE_DEFS).dags["kiln_maintenance"].timetable.expression == "30 4 * * 6"
    monkeypatch.setenv("KILN_MAINTENANCE_SCHEDULE", "every sunday")
    dag = dag_bag(SAMPLE_DEFS).dags["kiln_maintenance"]
    assert not hasattr(dag.timetable, "expression") and dag.description.startswith("BROKEN KILN_MAINTENANCE_SCHEDULE")


def test_a_view_named_maintenance_keeps_its_dag(tmp_path: Path) -> None:
    from featurekiln.orchestration.factory import build_dags

    defs = tmp_path / "defs"
    defs.mkdir()
    text = (SAMPLE_DEFS / "user_clicks.yaml").read_text(encoding="utf-8")
    (defs / "maintenance.yaml").write_text(text.replace("name: user_clicks", "name: maintenance"))
    result = build_dags(settings=Settings.from_env(defs_dir=defs))
    assert set(result.dags) == {"kiln_maintenance"}
    assert result.dags["kiln_maintenance"].get_task("plan") is not None


def test_no_views_no_maintenance_dag(tmp_path: Path) -> None:
    shutil.copytree(SAMPLE_DEFS, tmp_path / "defs")
    for file in (tmp_path / "defs").glob("*.yaml"):
        file.unlink()
    assert "kiln_maintenance" not in dag_bag(tmp_path / "defs").dag_ids
