"""The data-quality plugin's app in process, behind Airflow's real auth manager (the simple one) and database.

Reports are written by featurekiln's own writer to a local warehouse and to an
``s3a://`` warehouse on the moto server; the app reads them back with no JVM.
Authentication: no credential gives 401, a forged token 403, a token the auth
manager signed 200. The browser test through ``airflow standalone`` is
tests/orchestration/test_quality_plugin_ui.py.
"""

from __future__ import annotations

import html
import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from urllib.parse import quote

import pytest

from featurekiln.quality.index_page import latest_runs, write_index
from featurekiln.quality.report import write_report
from featurekiln.quality.results import ChunkValidation, Outcome, RunReport
from featurekiln.settings import Settings
from tests.orchestration.conftest import PLUGINS_FOLDER
from tests.quality.browser import page_text

VIEW = "user_purchases"
DAG = f"kiln_{VIEW}"
FAILED_RUN = "manual__2025-03-01T12:00:00+00:00"
GOOD_RUN = "manual__2025-03-02T12:00:00+00:00"
FAILING = Outcome(expectation="expect_column_values_to_be_between", column="spend_30d", severity="error", success=False,
                  observed="1 of 40 rows unexpected", expected="between 0 and +inf", unexpected_count=1, sample=[-25.0])
PASSING = Outcome(expectation="expect_column_values_to_not_be_null", column="user_id", severity="error", success=True,
                  observed="0 of 40 rows unexpected", expected="-", unexpected_count=0)


def a_report(view: str, run_id: str, failed: bool, hour: int) -> RunReport:
    started = datetime(2025, 3, 2, hour, tzinfo=timezone.utc)
    outcomes = (FAILING, PASSING) if failed else (PASSING,)
    chunk = ChunkValidation(start=date(2025, 3, 1), end=date(2025, 3, 1), rows=40, suite="expectations/x.json",
                            outcomes=outcomes, seconds=1.0)
    return RunReport(view=view, run_id=run_id, trigger="backfill", start=date(2025, 3, 1), end=date(2025, 3, 1),
                     started_at=started, finished_at=started + timedelta(seconds=30),
                     status="failed" if failed else "success", rows=0 if failed else 40, chunks=[chunk],
                     published=[] if failed else [("2025-03-01", "2025-03-01")])


def write_reports(settings: Settings) -> None:
    write_report(a_report(VIEW, FAILED_RUN, True, 10), settings)
    write_report(a_report(VIEW, GOOD_RUN, False, 11), settings)
    write_report(a_report("other_view", "cli-1", False, 9), settings)


@pytest.fixture(scope="module")
def auth(airflow_db):
    """Airflow's configured auth manager (the simple one), initialised as the API server does, and a signed token."""
    from airflow.api_fastapi.app import init_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    from airflow.models.dag import DagModel
    from airflow.models.dagbundle import DagBundleModel
    from airflow.utils.session import create_session

    # The view's DAG, as the dag-processor would record it: the index shows the views whose DAG the user may read.
    with create_session() as session:
        if session.get(DagBundleModel, "dags-folder") is None:
            session.add(DagBundleModel(name="dags-folder"))
            session.flush()
        if session.get(DagModel, DAG) is None:
            session.add(DagModel(dag_id=DAG, bundle_name="dags-folder", fileloc="dags/featurekiln_dags.py"))
    manager = init_auth_manager()
    return manager.generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))


@pytest.fixture
def client(auth, monkeypatch):
    from fastapi.testclient import TestClient

    from featurekiln.orchestration.quality_plugin import app

    def get(path: str, token: str | None = auth, cookie: bool = False):
        headers = {"Authorization": f"Bearer {token}"} if token and not cookie else {}
        cookies = {"_token": token} if token and cookie else {}
        with TestClient(app, cookies=cookies) as http:
            return http.get(path, headers=headers)

    return get


def use_warehouse(monkeypatch, settings: Settings) -> None:
    monkeypatch.setenv("KILN_WAREHOUSE", settings.warehouse)
    if settings.s3_endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", settings.s3_endpoint)


def run_path(dag: str, run_id: str) -> str:
    return f"/dags/{dag}/runs/{quote(run_id, safe='')}"


@pytest.mark.parametrize("token", [None, "not-a-jwt", "forged"])
def test_routes_refuse_requests_without_a_valid_token(client, auth, tmp_path, monkeypatch, token) -> None:
    settings = Settings(warehouse=str(tmp_path / "wh"))
    write_reports(settings)
    use_warehouse(monkeypatch, settings)
    if token == "forged":  # a well-formed token signed with another key
        import jwt

        header, payload, _ = auth.split(".")
        token = jwt.encode(json.loads(jwt.utils.base64url_decode(payload)), "another-secret-" * 8, algorithm="HS512")
    for path in ("/", run_path(DAG, FAILED_RUN)):
        for cookie in (False, True):
            response = client(path, token, cookie)
            assert response.status_code == (401 if token is None else 403), (path, cookie, response.text)
            assert "spend_30d" not in response.text


def test_the_tab_shows_the_right_runs_report_from_a_local_warehouse(client, tmp_path, monkeypatch) -> None:
    settings = Settings(warehouse=str(tmp_path / "wh"))
    write_reports(settings)
    use_warehouse(monkeypatch, settings)
    for cookie in (False, True):  # a REST client's bearer token, or the UI's session cookie
        failed = client(run_path(DAG, FAILED_RUN), cookie=cookie)
        assert failed.status_code == 200 and failed.headers["cache-control"] == "no-store"
        assert f'id="run-id">{FAILED_RUN}<' in failed.text and GOOD_RUN not in failed.text
        assert 'id="status">FAILED<' in failed.text and "expect_column_values_to_be_between(spend_30d)" in failed.text
        assert 'id="plots"' in failed.text  # the plots section, from the stored statistics
    good = client(run_path(DAG, GOOD_RUN))
    assert 'id="status">SUCCESS<' in good.text and FAILED_RUN not in good.text
    assert 'href="../../../"' in good.text  # back to the index, from /featurekiln-quality/dags/<dag>/runs/<run>

    missing = client(run_path(DAG, "manual__never"))
    assert missing.status_code == 404 and "no report of run 'manual__never'" in html.unescape(missing.text)
    assert "manual__2025-03-02T12_00_00_00_00-" in missing.text  # the latest runs that have a report
    assert client(run_path("not_kiln", FAILED_RUN)).status_code == 404


def test_the_tab_shows_the_right_runs_report_from_an_s3_warehouse(client, moto_server, s3_bucket, monkeypatch) -> None:
    settings = Settings(warehouse=f"s3a://{s3_bucket}/wh", s3_endpoint=moto_server.endpoint_url, aws_region="us-east-1")
    write_reports(settings)
    use_warehouse(monkeypatch, settings)
    failed = client(run_path(DAG, FAILED_RUN))
    assert failed.status_code == 200, failed.text
    assert f'id="run-id">{FAILED_RUN}<' in failed.text and 'id="status">FAILED<' in failed.text
    assert 'id="status">SUCCESS<' in client(run_path(DAG, GOOD_RUN)).text

    index = client("/")
    assert index.status_code == 200 and f"s3a://{s3_bucket}/wh" in index.text
    # Only views whose DAG the user may read: other_view has no DAG in this Airflow.
    assert f'data-view="{VIEW}"' in index.text and "other_view" not in index.text


def test_index_lists_views_latest_runs_and_statuses(client, tmp_path, monkeypatch) -> None:
    settings = Settings(warehouse=str(tmp_path / "wh"))
    write_reports(settings)
    (tmp_path / "wh" / "_reports" / VIEW / "broken.json").write_text("{not json")
    views = {v.view: v for v in latest_runs(settings)}
    assert sorted(views) == ["other_view", VIEW]
    assert [r.run_id for r in views[VIEW].runs] == [GOOD_RUN, FAILED_RUN] and views[VIEW].unreadable == 1

    use_warehouse(monkeypatch, settings)
    index = client("/")
    assert index.status_code == 200
    link = f'href="dags/{DAG}/runs/{quote(GOOD_RUN, safe="")}"'
    assert link in index.text and "1 report file(s) of this view could not be read" in index.text
    assert client("/" + link[len('href="'):-1]).status_code == 200  # the link resolves to the run's report

    # The static index beside the report files, in the browser: views, statuses, and links to the files.
    path = write_index(settings)
    text = page_text(tmp_path / "wh" / "_reports" / "index.html")
    assert path.endswith("_reports/index.html")
    assert f"{VIEW} SUCCESS" in text and f"{FAILED_RUN} FAILED backfill" in text and "other_view SUCCESS" in text
    assert 'href="user_purchases/manual__2025-03-01T12_00_00_00_00-' in (tmp_path / "wh" / "_reports" / "index.html").read_text()


def test_loading_the_plugin_imports_nothing_heavy() -> None:
    code = (
        "import sys, airflow.plugins_manager; from plugins.featurekiln_quality import KilnQualityPlugin as P; "
        "print(sorted(m for m in ('pyspark', 'boto3', 'great_expectations', 'delta', "
        "'airflow.api_fastapi.core_api.security', 'featurekiln.quality.report') if m in sys.modules)); "
        "print(sorted(v['destination'] for v in P.external_views), P.fastapi_apps[0]['url_prefix'])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-2:] == ["[]", "['dag_run', 'nav'] /featurekiln-quality"]


def test_airflows_api_server_app_mounts_the_plugin_from_the_plugins_folder(auth, tmp_path, monkeypatch) -> None:
    """Airflow's own API app, built as ``airflow api-server`` builds it, with the plugins folder of ``make airflow``."""
    code = f"""
import sys
from fastapi.testclient import TestClient
from airflow.api_fastapi.app import create_app
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
app = create_app("core")
token = app.state.auth_manager.generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))
with TestClient(app) as http:
    for path in ("/featurekiln-quality/", "/featurekiln-quality/dags/{DAG}/runs/{quote(FAILED_RUN, safe='')}"):
        print(http.get(path).status_code, http.get(path, headers={{"Authorization": "Bearer " + token}}).status_code)
"""
    settings = Settings(warehouse=str(tmp_path / "wh"))
    write_reports(settings)
    env = {**os.environ, "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS_FOLDER), "KILN_WAREHOUSE": settings.warehouse}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=500)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines()[-2:] == ["401 200", "401 200"]
