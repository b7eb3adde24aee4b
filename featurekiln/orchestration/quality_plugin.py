"""An Airflow 3 plugin: each run's data-quality report in a "Data quality" tab, and the warehouse's index page.

The plugin adds to Airflow's API server a FastAPI app mounted at ``/featurekiln-quality``:

- ``GET /featurekiln-quality/dags/{dag_id}/runs/{run_id}``: the report of that run
  of the view of DAG ``kiln_<view>`` (featurekiln/orchestration/factory.py), rendered
  from its RunReport JSON with the plots of the stored feature statistics; 404 with a short page when the DAG is not a featurekiln DAG
  or the run has written no report yet;
- ``GET /featurekiln-quality/``: the index page (featurekiln/quality/index_page.py) of
  the views whose DAG the user may read, linking to the route above;

and two external views: the tab "Data quality" on every DAG run (``destination:
dag_run``), and a navigation entry "Data quality" that opens the index.

Reports are read with :mod:`featurekiln.warehouse_files` and statistics with
:func:`featurekiln.quality.statistics.read_stats` (boto3 for an ``s3a://``
warehouse): no JVM starts in the API server. The warehouse is ``KILN_WAREHOUSE`` (and
the S3 settings) of the API server's environment, read on each request.

Airflow mounts plugin apps without its authentication, so every route here
authenticates the caller itself with Airflow's own dependency
(``airflow.api_fastapi.core_api.security.get_user``: the ``Authorization: Bearer``
JWT, else the UI's session cookie) and authorizes through the configured auth
manager: reading the runs of the DAG for a report, the DAGs the user may read for
the index. No credential gives 401, an invalid one or a refused permission 403.

Loading the plugin imports FastAPI only; Airflow's security module, Jinja and
boto3 are imported by the first request. ``plugins/featurekiln_quality.py`` (the
plugins folder of ``make airflow`` and of the tests' ``airflow standalone``) exposes it.
"""

from __future__ import annotations

from html import escape
from typing import Annotated, Any
from urllib.parse import quote

from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from featurekiln.errors import KilnError

URL_PREFIX = "/featurekiln-quality"
DAG_PREFIX = "kiln_"  # featurekiln/orchestration/factory.py names a view's DAG kiln_<view>
TAB_NAME = "Data quality"

app = FastAPI(title="featurekiln data quality", docs_url=None, redoc_url=None, openapi_url=None)
_BEARER = HTTPBearer(auto_error=False)


async def _user(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]) -> Any:
    """The authenticated Airflow user (HTTPException 401 without a credential, 403 with an invalid one)."""
    from airflow.api_fastapi.core_api.security import get_user

    return await get_user(request, _oauth_token=None, bearer_credentials=credentials)


User = Annotated[Any, Depends(_user)]


def _page(title: str, message: str, status: int) -> HTMLResponse:
    body = f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title></head>"
    body += f"<body style='font: 14px system-ui, sans-serif; margin: 24px'><h1 style='font-size: 18px'>{escape(title)}"
    body += f"</h1><p id='message'>{escape(message)}</p></body></html>"
    return HTMLResponse(body, status_code=status)


def _settings() -> Any:
    from featurekiln.settings import Settings

    return Settings.from_env()


def _run_link(view: str, run_id: str) -> str:
    """The address of a run's report relative to the index page (``URL_PREFIX/``)."""
    return f"dags/{quote(DAG_PREFIX + view, safe='')}/runs/{quote(run_id, safe='')}"


@app.get("/dags/{dag_id}/runs/{run_id}", response_class=HTMLResponse)
def run_report(dag_id: str, run_id: str, request: Request, user: User) -> HTMLResponse:
    """The data-quality report of run ``run_id`` of DAG ``dag_id``, if the user may read that DAG's runs.

    A plain ``def``: FastAPI runs it in its thread pool, so reading the store never blocks the event loop.
    """
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag

    requires_access_dag("GET", DagAccessEntity.RUN, param_dag_id=dag_id)(request, user)
    if not dag_id.startswith(DAG_PREFIX):
        return _page("Not a featurekiln DAG", f"{dag_id} does not run a featurekiln view.", 404)
    from featurekiln.quality.report import read_report, render_html, report_stats

    view = dag_id[len(DAG_PREFIX) :]
    settings = _settings()
    try:
        report = read_report(settings, view, run_id)
    except KilnError as error:
        return _page(f"No data-quality report for {run_id}", f"{error}. A run writes it when it validates.", 404)
    return HTMLResponse(render_html(report, index_href="../../../", stats=report_stats(settings, report)))


@app.get("/", response_class=HTMLResponse)
def index(user: User) -> HTMLResponse:
    """The index of the views whose DAG the user may read: their latest runs and statuses."""
    from airflow.api_fastapi.app import get_auth_manager

    from featurekiln.quality.index_page import latest_runs, render_index

    readable = get_auth_manager().get_authorized_dag_ids(user=user, method="GET")
    settings = _settings()
    try:
        views = [v for v in latest_runs(settings) if DAG_PREFIX + v.view in readable]
    except KilnError as error:
        return _page("The reports cannot be read", str(error), 502)
    return HTMLResponse(render_index(views, settings.warehouse, _run_link))


async def _no_cache(request: Request, call_next: Any) -> Any:
    response = await call_next(request)
    response.headers["Cache-Control"] = "no-store"  # a run's report changes when the run is retried
    return response


app.middleware("http")(_no_cache)


class KilnQualityPlugin(AirflowPlugin):
    """The "Data quality" tab of every DAG run and the "Data quality" navigation entry (the index)."""

    name = "featurekiln_quality"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "featurekiln data quality"}]
    external_views = [
        {
            "name": TAB_NAME,
            "href": URL_PREFIX.lstrip("/") + "/dags/{DAG_ID}/runs/{RUN_ID}",
            "destination": "dag_run",
            "url_route": "featurekiln-quality-run",
        },
        {
            "name": TAB_NAME,
            "href": URL_PREFIX.lstrip("/") + "/",
            "destination": "nav",
            "url_route": "featurekiln-quality",
        },
    ]
