"""The DAG file parsed by Airflow's own DagBag: one DAG per definition, broken ones visible. No Spark."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import UTC, date, datetime, timezone
from pathlib import Path

import pytest

from featurekiln.definitions.loader import load_definitions
from featurekiln.orchestration.assets import table_uri
from featurekiln.settings import Settings
from tests.orchestration.conftest import DAGS_FOLDER, SAMPLE_DEFS, dag_bag

VIEWS = sorted(load_definitions(SAMPLE_DEFS).views)
TASKS = {"plan", "tiles", "publish", "push_online"}


@pytest.fixture(scope="module")
def bag():
    return dag_bag(SAMPLE_DEFS)


def write_views(directory: Path, count: int) -> None:
    """Write ``count`` valid definitions, copies of user_purchases under new names."""
    text = (SAMPLE_DEFS / "user_purchases.yaml").read_text(encoding="utf-8")
    for i in range(count):
        (directory / f"v{i:04d}.yaml").write_text(text.replace("name: user_purchases", f"name: view_{i:04d}"))


def test_one_dag_per_view_and_no_import_errors(bag) -> None:
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == sorted([*(f"kiln_{v}" for v in VIEWS), "kiln_maintenance"])


def test_dag_carries_the_definition(bag) -> None:
    views = load_definitions(SAMPLE_DEFS).views
    for name, view in views.items():
        dag = bag.dags[f"kiln_{name}"]
        assert {t.task_id for t in dag.tasks} == TASKS
        assert dag.start_date == datetime(2025, 1, 1, tzinfo=timezone.utc)
        assert dag.catchup is False
        assert set(view.tags) <= set(dag.tags) and "featurekiln" in dag.tags
        assert dag.default_args["owner"] == view.owner
        assert {t.owner for t in dag.tasks} == {view.owner}
        assert dag.description == view.description
        assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
        assert (dag.timetable.expression, str(dag.timetable.timezone)) == ("0 0 * * *", "UTC")
        assert f"# {name}" in dag.doc_md and view.description in dag.doc_md
        for feature in view.features:
            assert f"| {feature.name} | {feature.agg} |" in dag.doc_md
        assert ", ".join(f"`{k}`" for k in view.keys) in dag.doc_md
        assert view.source.path in dag.doc_md
        assert set(dag.params.keys()) == {"start", "end", "chunk_days", "force", "retile"}


def test_layout(bag) -> None:
    dag = bag.dags["kiln_user_purchases"]
    down = {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks}
    assert down == {
        "plan": ["publish", "push_online", "tiles"],
        "tiles": ["publish"],
        "publish": ["push_online"],
        "push_online": [],
    }
    assert not any(t.is_mapped for t in dag.tasks), "one plan, one step per task"
    publish = dag.get_task("publish")
    assert [o.name for o in publish.outlets] == [table_uri("user_purchases", Settings.from_env())]
    assert publish.outlets[0].uri.startswith("file://") and publish.outlets[0].uri.endswith("/features/user_purchases")


def test_settings_reach_the_dags(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KILN_CATCHUP", "true")
    monkeypatch.setenv("KILN_MAX_ACTIVE_RUNS", "3")
    monkeypatch.setenv("KILN_WAREHOUSE", "s3a://bucket/wh")
    defs = tmp_path / "defs"
    defs.mkdir()
    shutil.copy(SAMPLE_DEFS / "user_clicks.yaml", defs)
    bag = dag_bag(defs)
    dag = bag.dags["kiln_user_clicks"]
    assert sorted(bag.dag_ids) == ["kiln_maintenance", "kiln_user_clicks"]
    assert dag.catchup is True
    assert dag.max_active_runs == 3
    assert dag.get_task("publish").outlets[0].uri == "s3a://bucket/wh/features/user_clicks"


def test_verify_online_follows_push_online_of_online_views_when_set(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KILN_VERIFY_ONLINE", "true")
    defs = tmp_path / "defs"
    defs.mkdir()
    shutil.copy(SAMPLE_DEFS / "user_clicks.yaml", defs)  # online: false
    shutil.copy(SAMPLE_DEFS / "user_purchases.yaml", defs)  # online: true
    bag = dag_bag(defs)
    assert bag.dags["kiln_user_purchases"].get_task("push_online").downstream_task_ids == {"verify_online"}
    assert set(bag.dags["kiln_user_clicks"].task_ids) == TASKS


def test_schedule_from_the_definition(tmp_path) -> None:
    defs = tmp_path / "defs"
    defs.mkdir()
    text = (SAMPLE_DEFS / "user_clicks.yaml").read_text()
    (defs / "a.yaml").write_text(text.replace("name: user_clicks", "name: at_three") + 'schedule: "0 3 * * *"\n')
    (defs / "b.yaml").write_text(text.replace("name: user_clicks", "name: manual") + "schedule: none\n")
    (defs / "c.yaml").write_text(text.replace("name: user_clicks", "name: bad_cron") + 'schedule: "every day"\n')
    bag = dag_bag(defs)
    assert bag.dags["kiln_at_three"].timetable.expression == "0 3 * * *"
    assert type(bag.dags["kiln_manual"].timetable).__name__ == "NullTimetable"
    broken = bag.dags["kiln_bad_cron"]
    assert "broken" in broken.tags
    assert "'every day' is not a cron expression" in broken.doc_md


def test_a_broken_definition_hides_nothing(tmp_path) -> None:
    defs = tmp_path / "defs"
    shutil.copytree(SAMPLE_DEFS, defs)
    broken_window = (SAMPLE_DEFS / "user_clicks.yaml").read_text().replace(
        "name: user_clicks", "name: broken_clicks"
    ).replace("window: 7d}", "window: 7days}", 1)
    (defs / "broken_clicks.yaml").write_text(broken_window)
    (defs / "not_yaml.yaml").write_text("name: [unclosed\n")
    bag = dag_bag(defs)
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == sorted([*(f"kiln_{v}" for v in VIEWS), "kiln_broken_clicks", "kiln_not_yaml",
                                          "kiln_maintenance"])
    dag = bag.dags["kiln_broken_clicks"]
    assert [t.task_id for t in dag.tasks] == ["definition_error"]
    line = next(i for i, text in enumerate(broken_window.splitlines(), 1) if "7days" in text)
    assert f"| {line} | features[1].window | '7days' is not a whole number of days like '7d' |" in dag.doc_md
    assert "broken_clicks.yaml" in dag.doc_md and "broken" in dag.tags
    assert dag.description.startswith("BROKEN definition:")
    assert "invalid YAML" in bag.dags["kiln_not_yaml"].doc_md


def test_a_broken_definition_fails_its_task_with_the_problems(tmp_path) -> None:
    from featurekiln.errors import SpecError
    from featurekiln.orchestration.factory import build_dags
    from featurekiln.settings import Settings

    defs = tmp_path / "defs"
    defs.mkdir()
    shutil.copy(Path(__file__).parents[1] / "definitions" / "broken" / "bad_window.yaml", defs / "bad_window.yaml")
    result = build_dags(settings=Settings.from_env(defs_dir=defs))
    (dag_id,) = result.dags
    task = result.dags[dag_id].get_task("definition_error")
    with pytest.raises(SpecError) as error:
        task.python_callable()
    assert error.value.problems == [str(p) for p in result.problems]
    assert all("bad_window.yaml:" in p for p in error.value.problems)


def test_strict_mode_fails_the_parse(tmp_path, monkeypatch) -> None:
    defs = tmp_path / "defs"
    shutil.copytree(SAMPLE_DEFS, defs)
    (defs / "bad.yaml").write_text("name: bad\n")
    monkeypatch.setenv("KILN_STRICT", "true")
    bag = dag_bag(defs)
    assert bag.dag_ids == []
    (error,) = bag.import_errors.values()
    assert "bad.yaml:1: entity: is required" in error


def test_a_duplicate_name_gets_its_own_broken_dag(tmp_path) -> None:
    defs = tmp_path / "defs"
    shutil.copytree(SAMPLE_DEFS, defs)
    shutil.copy(SAMPLE_DEFS / "user_clicks.yaml", defs / "zz_copy.yaml")
    bag = dag_bag(defs)
    assert "kiln_user_clicks" in bag.dag_ids and "kiln_zz_copy" in bag.dag_ids
    assert "duplicate view name 'user_clicks'" in bag.dags["kiln_zz_copy"].doc_md


def test_missing_definitions_directory_is_visible(tmp_path) -> None:
    bag = dag_bag(tmp_path / "nowhere")
    assert bag.dag_ids == ["kiln_definitions"]
    assert "definitions directory does not exist" in bag.dags["kiln_definitions"].doc_md


def test_parsing_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(DAGS_FOLDER)!r})\n"
        "assert len(bag.dags) == 4, bag.import_errors\n"  # the views' DAGs and kiln_maintenance
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('pyspark', 'py4j', 'great_expectations', 'boto3', 'botocore', 'delta', 'redis'))\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_200_definitions_parse_into_200_dags(tmp_path) -> None:
    """A large deployment parses without import errors (its speed against hand-written DAGs is
    bench/dag_parse.py's)."""
    defs = tmp_path / "defs"
    defs.mkdir()
    write_views(defs, 200)
    bag = dag_bag(defs)
    assert len(bag.dag_ids) == 201 and bag.import_errors == {}  # and kiln_maintenance


def test_the_plan_of_a_trigger_form_run_covers_the_range_in_chunks_in_order(tmp_path) -> None:
    """Over an empty warehouse (the ledger is read from files: no Spark, no Airflow)."""
    from featurekiln.orchestration.steps import plan_dag_run
    from featurekiln.planning.materialization import inclusive

    view = load_definitions(SAMPLE_DEFS).views["user_purchases"]
    settings = Settings(defs_dir=SAMPLE_DEFS, warehouse=str(tmp_path), chunk_days=30)
    moment = datetime(2025, 2, 1, tzinfo=UTC)
    facts = {"interval_start": moment, "interval_end": moment, "reference": moment, "now": moment}
    plan = plan_dag_run(view, {"start": "2025-01-01", "end": "2025-01-10", "chunk_days": 4}, settings, **facts)
    assert inclusive(plan.chunks) == [
        ["2025-01-01", "2025-01-04"],
        ["2025-01-05", "2025-01-08"],
        ["2025-01-09", "2025-01-10"],
    ]
    assert plan.ranges == ((date(2025, 1, 1), date(2025, 1, 11)),) and plan.push is view.online
    one_day = plan_dag_run(view, {"start": "2025-01-01", "end": "2025-01-01"}, settings, **facts)
    assert inclusive(one_day.chunks) == [["2025-01-01", "2025-01-01"]]


@pytest.mark.parametrize("conn_id", [None, "spark_cluster"])
def test_dags_serialize_for_the_scheduler(tmp_path, monkeypatch, conn_id) -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    if conn_id:
        monkeypatch.setenv("KILN_SPARK_CONN_ID", conn_id)
    else:
        monkeypatch.delenv("KILN_SPARK_CONN_ID", raising=False)
    bag = dag_bag(SAMPLE_DEFS)
    for dag_id, dag in bag.dags.items():
        restored = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
        assert {t.task_id for t in restored.tasks} == (
            {t.task_id for t in dag.tasks} if dag_id == "kiln_maintenance" else TASKS)
    for step in ("tiles", "publish"):
        task = bag.dags["kiln_user_purchases"].get_task(step)
        expected = "SparkSubmitOperator" if conn_id else "_PythonDecoratedOperator"
        assert task.operator_class.__name__ == expected


def test_spark_submit_arguments_are_those_of_the_cli() -> None:
    import importlib.util

    from featurekiln.orchestration.steps import spark_submit_args

    args = spark_submit_args("user_purchases", "publish")
    assert args[0] == "user_purchases" and args[1::2][:3] == ["--plan", "--step", "--run-id"]
    assert args[4] == "publish" and "xcom_pull(task_ids='plan')" in args[2]
    spec = importlib.util.spec_from_file_location("materialize_job", Path(__file__).parents[2] / "jobs" / "materialize.py")
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    rendered = [*args[:2], '{"view": "user_purchases"}', *args[3:6], "manual__2025-01-20T00:00:00+00:00", "--trigger",
                "backfill"]
    parsed = job.parse_args(["--defs", "d", "--warehouse", "w", *rendered])
    assert (parsed.view, parsed.plan, parsed.step, parsed.run_id, parsed.trigger) == (
        "user_purchases", '{"view": "user_purchases"}', "publish", "manual__2025-01-20T00:00:00+00:00", "backfill"
    )
    cli = job.parse_args(["user_purchases", "--start", "2025-01-05", "--end", "2025-01-09", "--run-id", "r"])
    assert (cli.start, cli.end, cli.plan) == (date(2025, 1, 5), date(2025, 1, 9), None), "the arguments of the CLI"
    assert (parsed.defs, parsed.warehouse) == ("d", "w")
