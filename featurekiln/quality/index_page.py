"""The index page of a warehouse's data-quality reports: every view, its latest runs, their statuses.

The page is rendered from the RunReport JSON files under ``<warehouse>/_reports/<view>/``
(:mod:`featurekiln.quality.report`), local or in the object store of an ``s3a://``
warehouse, with boto3 and no JVM: each report's JSON holds its run-history row
(:mod:`featurekiln.quality.history` appends the same summary to a Delta table, which
only Spark reads). Like the run reports, the page is static HTML with inline CSS,
no scripts and no network access, in the same look (``PAGE_STYLE``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import quote

from jinja2 import Environment

from featurekiln.errors import KilnError
from featurekiln.layout import safe_run_id
from featurekiln.quality.report import PAGE_STYLE, reports_root
from featurekiln.quality.results import RunReport
from featurekiln.settings import Settings
from featurekiln.warehouse_files import files_for

LATEST_RUNS = 10
INDEX_FILE = "index.html"

# ``link(view, run_id)``: the address of a run's report, relative to the index page.
Link = Callable[[str, str], str]


def file_link(view: str, run_id: str) -> str:
    """The report's file beside ``<warehouse>/_reports/index.html``: ``<view>/<safe run id>.html``."""
    return f"{quote(view)}/{quote(safe_run_id(run_id))}.html"


@dataclass(frozen=True)
class ViewRuns:
    """A view and its latest runs (newest first); ``unreadable`` counts report files that did not parse."""

    view: str
    runs: list[RunReport]
    unreadable: int = 0

    @property
    def latest(self) -> RunReport | None:
        return self.runs[0] if self.runs else None


def latest_runs(settings: Settings, last: int = LATEST_RUNS) -> list[ViewRuns]:
    """The views that have reports, by name, each with its ``last`` newest runs (by when the report was written).

    Raises:
        KilnError: the reports cannot be listed or read (an ``ObjectStoreError`` for
            an object store that refuses).
    """
    root = reports_root(settings)
    files = files_for(root, settings)
    found: list[ViewRuns] = []
    for view in sorted(files.folders(root)):
        folder = f"{root}/{view}"
        entries = sorted((e for e in files.listing(folder) if e.name.endswith(".json")), key=lambda e: -e.modified)
        runs, unreadable = [], 0
        for entry in entries[:last]:
            try:
                runs.append(RunReport.from_dict(json.loads(files.read(f"{folder}/{entry.name}"))))
            except FileNotFoundError:
                continue  # replaced or removed since the listing
            except (ValueError, KeyError, TypeError):
                unreadable += 1
            except OSError as error:
                raise KilnError(f"cannot read the report {folder}/{entry.name}: {error}") from error
        runs.sort(key=lambda r: r.started_at.timestamp(), reverse=True)
        found.append(ViewRuns(view, runs, unreadable))
    return found


_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Data quality · {{ warehouse }}</title>
<style>
{{ style | safe }}
</style>
</head>
<body>
<h1>Data quality</h1>
<p class="muted">Warehouse <code>{{ warehouse }}</code> · {{ views | length }} view{{ "s" if views | length != 1 }} ·
  the latest {{ last }} runs of each</p>
{% for v in views %}
<h2 id="view-{{ v.view }}">{{ v.view }}
  {% if v.latest %}<span class="badge status-{{ v.latest.status }}">{{ v.latest.status | upper }}</span>{% endif %}</h2>
<table class="runs" data-view="{{ v.view }}">
<thead><tr><th>Run</th><th>Status</th><th>Trigger</th><th>Days</th><th>Rows</th><th>Failed</th><th>Warnings</th>
<th>Started</th></tr></thead>
<tbody>
{% for r in v.runs %}
<tr class="{{ row_class(r) }}">
<td class="mono"><a href="{{ link(v.view, r.run_id) }}">{{ r.run_id }}</a></td>
<td class="result">{{ r.status | upper }}</td>
<td>{{ r.trigger }}</td>
<td class="mono">{{ r.start }} → {{ r.end }}</td>
<td>{{ "{:,}".format(r.rows) }}</td>
<td>{{ r.failed | length }}</td>
<td>{{ r.warnings | length }}</td>
<td class="mono">{{ r.started_at.isoformat(sep=" ", timespec="seconds") }}</td>
</tr>
{% endfor %}
</tbody>
</table>
{% if v.unreadable %}<p class="muted">{{ v.unreadable }} report file(s) of this view could not be read.</p>{% endif %}
{% else %}
<p class="muted" id="no-reports">No run has written a report in this warehouse yet.</p>
{% endfor %}
<footer>featurekiln data-quality index · written {{ written }}</footer>
</body>
</html>
"""

_PAGE = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True).from_string(_TEMPLATE)


def _row_class(report: RunReport) -> str:
    return {"failed": "fail", "error": "fail", "warned": "warn", "success": "pass"}.get(report.status, "")


def render_index(views: list[ViewRuns], warehouse: str, link: Link = file_link, last: int = LATEST_RUNS) -> str:
    """The index page: per view, its latest status as a badge and a table of its runs linking to their reports.

    Failed (and broken) runs are highlighted like failing expectations in a run
    report, warned runs like warnings.
    """
    return _PAGE.render(
        views=views,
        warehouse=warehouse,
        link=link,
        last=last,
        style=PAGE_STYLE,
        row_class=_row_class,
        written=datetime.now(timezone.utc).isoformat(sep=" ", timespec="seconds"),
    )


def write_index(settings: Settings, last: int = LATEST_RUNS) -> str:
    """Write ``<warehouse>/_reports/index.html``, linking to the report files beside it; its path.

    Raises:
        KilnError: the reports cannot be read or the page cannot be written.
    """
    root = reports_root(settings)
    path = f"{root}/{INDEX_FILE}"
    page = render_index(latest_runs(settings, last), settings.warehouse, file_link, last)
    try:
        files_for(path, settings).write(path, page.encode("utf-8"), "text/html; charset=utf-8")
    except OSError as error:
        raise KilnError(f"cannot write the index of the reports to {path}: {error}") from error
    return path
