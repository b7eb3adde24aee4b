"""Trigger-form params: Airflow's schema check and the range check of the plan task. No Spark."""

from __future__ import annotations

import copy
from datetime import datetime, timezone

import pytest

from featurekiln.orchestration import build_dags
from featurekiln.settings import Settings
from tests.orchestration.conftest import SAMPLE_DEFS


@pytest.fixture(scope="module")
def dag():
    return build_dags(settings=Settings.from_env(defs_dir=SAMPLE_DEFS), only="kiln_user_purchases").dags[
        "kiln_user_purchases"
    ]


@pytest.mark.parametrize(
    ("given", "first_line"),
    [
        ({"start": "2025-13-01"}, "Invalid input for param start: '2025-13-01' is not a 'date'"),
        ({"end": "last week"}, "Invalid input for param end: 'last week' is not a 'date'"),
        ({"chunk_days": 0}, "Invalid input for param chunk_days: 0 is less than the minimum of 1"),
    ],
)
def test_airflow_rejects_a_malformed_param_with_a_readable_message(dag, given, first_line) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    params = copy.deepcopy(dag.params)
    with pytest.raises(ParamValidationError) as error:
        params.update(given)
        params.validate()
    assert str(error.value).splitlines()[0] == first_line


def test_defaults_are_valid_and_mean_the_scheduled_days(dag) -> None:
    assert copy.deepcopy(dag.params).validate() == {"start": None, "end": None, "chunk_days": 30, "force": False, "retile": False}


def test_form_fields_have_titles_and_date_pickers(dag) -> None:
    schema = {name: dag.params.get_param(name).schema for name in ("start", "end", "chunk_days")}
    assert schema["start"]["format"] == schema["end"]["format"] == "date"
    assert all(s.get("title") for s in schema.values())
    assert "2025-01-01" in dag.params.get_param("start").description


@pytest.mark.usefixtures("airflow_db", "kiln_env")
def test_a_range_error_fails_the_plan_task_with_the_message(dag, capfd) -> None:
    """end before start: the run fails in ``plan``, before any Spark, and the log says why."""
    run = dag.test(
        logical_date=datetime(2025, 1, 20, tzinfo=timezone.utc),
        run_conf={"start": "2025-01-09", "end": "2025-01-03"},
    )
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == "failed"
    assert states["plan"] == "failed"
    assert states["publish"] == "upstream_failed"
    assert "param end: 2025-01-03 is before start 2025-01-09" in capfd.readouterr().out
