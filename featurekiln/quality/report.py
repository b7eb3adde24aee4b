"""Data-quality run reports: one self-contained HTML page per run, the RunReport JSON next to it.

Reports live in the warehouse, at ``<warehouse>/_reports/<view>/<run id>.html``
(and ``.json``), on a local disk or in the object store of an ``s3a://``
warehouse (:mod:`featurekiln.warehouse_files`), so that ``kiln report`` reads
them from any machine that reaches the warehouse. A report's page shows the
run's expectations and monitors, then the feature statistics of the last 90 days
as small plots (:mod:`featurekiln.quality.plots`).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from jinja2 import Environment
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from featurekiln.errors import KilnError
from featurekiln.layout import REPORTS_DIR, safe_run_id
from featurekiln.quality.plots import PLOT_DAYS, PLOT_STYLE, day_flags, feature_plots
from featurekiln.quality.results import Outcome, RunReport
from featurekiln.quality.statistics import FeatureDayStats, read_stats
from featurekiln.settings import Settings
from featurekiln.warehouse_files import files_for, local_path

log = logging.getLogger(__name__)

TEXT_WIDTH = 160
SAMPLE_CHARS = 300


def reports_root(settings: Settings) -> str:
    """``<warehouse>/_reports``: an absolute local path, or a URI for an object-store warehouse."""
    return local_path(settings.warehouse_path(REPORTS_DIR))


def report_paths(settings: Settings, view: str, run_id: str) -> tuple[str, str]:
    """The HTML and JSON paths of the report of ``run_id`` of ``view``."""
    stem = "/".join([reports_root(settings), view, safe_run_id(run_id)])
    return stem + ".html", stem + ".json"


def result_label(outcome: Outcome) -> str:
    """``PASS``, ``SKIP`` (a monitor that could not be checked), ``WARN`` (a failed ``warn`` expectation or
    monitor) or ``FAIL`` (a blocking failure)."""
    if outcome.success:
        return "SKIP" if outcome.skipped else "PASS"
    return "FAIL" if outcome.blocking else "WARN"


def _rank(outcome: Outcome) -> int:
    return {"FAIL": 0, "WARN": 1, "SKIP": 2, "PASS": 3}[result_label(outcome)]


def failures_first(outcomes: Sequence[Outcome]) -> list[Outcome]:
    """Blocking failures, then warnings, then skipped monitors, then passes; the given order within each group."""
    return sorted(outcomes, key=_rank)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {rest} s"


def _sample(values: list[object]) -> str:
    text = ", ".join(json.dumps(v, default=str) for v in values)
    return text if len(text) <= SAMPLE_CHARS else text[: SAMPLE_CHARS - 1] + "…"


# The look of every data-quality page (the run reports and the index page of featurekiln/quality/index_page.py).
PAGE_STYLE = """body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328; margin: 24px; }
h1 { font-size: 22px; margin: 0 0 12px; } h2 { font-size: 16px; margin: 28px 0 8px; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 12px; color: #fff; font-weight: 600;
  font-size: 13px; vertical-align: middle; letter-spacing: .03em; }
.status-success { background: #1a7f37; } .status-warned { background: #bf8700; }
.status-failed { background: #cf222e; } .status-error { background: #82071e; }
.status-unvalidated, .status-running { background: #6e7781; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; margin: 0; }
dl.facts dt { color: #57606a; } dl.facts dd { margin: 0; font-family: ui-monospace, monospace; }
.summary { margin: 16px 0; padding: 10px 14px; border-left: 4px solid #cf222e; background: #ffebe9; }
.summary.warned { border-color: #bf8700; background: #fff8c5; }
.summary ul { margin: 4px 0 0; padding-left: 20px; overflow-wrap: anywhere; }
.summary li { font-family: ui-monospace, monospace; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.mono { font-family: ui-monospace, monospace; } td.wrap { overflow-wrap: anywhere; }
tr.fail td { background: #ffebe9; } tr.warn td { background: #fff8c5; }
td.result { font-weight: 700; } tr.fail td.result { color: #cf222e; } tr.warn td.result { color: #9a6700; }
tr.pass td.result { color: #1a7f37; } tr.skip td.result { color: #57606a; }
.source { color: #57606a; font-size: 12px; } .muted { color: #57606a; }
footer { margin-top: 32px; color: #57606a; font-size: 12px; }
nav.up { margin: 0 0 12px; font-size: 13px; } a { color: #0969da; }
"""

_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ r.status | upper }} · {{ r.view }} · {{ r.run_id }}</title>
<style>
{{ style | safe }}
</style>
</head>
<body>
{% if index_href %}<nav class="up"><a id="index-link" href="{{ index_href }}">← All views</a></nav>{% endif %}
<h1>{{ r.view }} <span class="badge status-{{ r.status }}" id="status">{{ r.status | upper }}</span></h1>
<dl class="facts">
  <dt>Run</dt><dd id="run-id">{{ r.run_id }}</dd>
  <dt>Trigger</dt><dd>{{ r.trigger }}</dd>
  <dt>Days</dt><dd>{{ r.start }} → {{ r.end }} ({{ days }} day{{ "s" if days != 1 }})</dd>
  <dt>Rows</dt><dd>{{ rows }}</dd>
  <dt>Started</dt><dd>{{ r.started_at.isoformat(sep=" ") }}</dd>
  <dt>Duration</dt><dd>{{ duration }}</dd>
  {% if published %}<dt>Published</dt><dd>{{ published }}</dd>{% endif %}
  {% if r.quarantine %}<dt>Quarantine</dt><dd id="quarantine">{{ r.quarantine }}</dd>{% endif %}
  {% if r.error %}<dt>Error</dt><dd>{{ r.error }}</dd>{% endif %}
  <dt>Checks</dt><dd>{{ counts }}</dd>
</dl>
{% if failed %}
<div class="summary" id="failed">
  <strong>Failed (blocking): {{ failed | length }}</strong>
  <ul>{% for o in failed %}<li>{{ o.line() }}</li>{% endfor %}</ul>
</div>
{% endif %}
{% if warnings %}
<div class="summary warned" id="warnings">
  <strong>Warnings (reported, not blocking): {{ warnings | length }}</strong>
  <ul>{% for o in warnings %}<li>{{ o.line() }}</li>{% endfor %}</ul>
</div>
{% endif %}
{% for c in chunks %}
<h2>Chunk {{ c.chunk.start }} → {{ c.chunk.end }}
  <span class="badge status-{{ 'failed' if c.chunk.failed else ('warned' if c.chunk.warnings else 'success') }}">
  {{- 'FAILED' if c.chunk.failed else ('WARNED' if c.chunk.warnings else 'PASSED') -}}</span></h2>
<p class="muted">{{ "{:,}".format(c.chunk.rows) }} rows · suite {{ c.chunk.suite or "baseline only" }} ·
  {{ c.chunk.outcomes | length }} checks · {{ "%.1f" | format(c.chunk.seconds) }} s</p>
<table>
<thead><tr><th>Expectation</th><th>Column</th><th>Severity</th><th>Result</th><th>Observed</th>
<th>Expected</th><th>Unexpected</th><th>Sample</th></tr></thead>
<tbody>
{% for o in c.outcomes %}{% set label = result(o) %}
<tr class="{{ label | lower }}">
<td class="mono">{{ o.expectation }}<div class="source">{{ o.source }}</div></td>
<td class="mono">{{ o.column or "—" }}{% if o.day %}<div class="source">{{ o.day }}</div>{% endif %}</td>
<td>{{ o.severity }}</td>
<td class="result">{{ label }}</td>
<td class="mono wrap">{{ o.exception or o.observed }}</td>
<td class="mono wrap">{{ o.expected }}</td>
<td>{{ "{:,}".format(o.unexpected_count) if o.unexpected_count is not none else "—" }}</td>
<td class="mono wrap">{{ sample(o.sample) if o.sample else "—" }}</td>
</tr>
{% endfor %}
</tbody>
</table>
{% else %}
<p class="muted">No chunk was validated in this run.</p>
{% endfor %}
{% if plots %}{{ plots | safe }}{% endif %}
<footer>featurekiln data-quality report · written {{ written }}</footer>
</body>
</html>
"""

_ENVIRONMENT = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
_PAGE = _ENVIRONMENT.from_string(_TEMPLATE)


def render_html(report: RunReport, index_href: str | None = None,
                stats: Sequence[FeatureDayStats] | None = None) -> str:
    """The report as one self-contained HTML page (inline CSS and SVG, no scripts, no network).

    With ``index_href``, the page starts with a link to the index of the
    warehouse's reports (featurekiln/quality/index_page.py) at that address.

    The header shows the view, run, trigger, a coloured status badge, the days,
    rows, duration and the quarantine path; a summary lists what failed; then
    one table per chunk with failures first (highlighted), then warnings. With
    ``stats`` (:func:`report_stats`), the page ends with the plots of the
    features' statistics over the last 90 days, the days the run's monitors and
    expectations flagged highlighted.
    """
    failed, warnings = report.failed, report.warnings
    checked = sum(c.rows for c in report.chunks)
    total = sum(len(c.outcomes) for c in report.chunks)
    return _PAGE.render(
        r=report,
        style=PAGE_STYLE + PLOT_STYLE,
        index_href=index_href,
        plots=None if stats is None else feature_plots(stats, (report.start, report.end), day_flags(report.chunks),
                                                       order=[s.feature for c in report.chunks for s in c.stats]),
        days=(report.end - report.start).days + 1,
        duration=_duration(report.seconds),
        rows=f"{report.rows:,} published" + (f", {checked:,} validated" if checked else ""),
        published=", ".join(f"{first} → {last}" for first, last in report.published),
        counts=f"{total} checked: {len(failed)} failed, {len(warnings)} warning{'' if len(warnings) == 1 else 's'}",
        failed=failed,
        warnings=warnings,
        chunks=[{"chunk": c, "outcomes": failures_first(c.outcomes)} for c in report.chunks],
        result=result_label,
        sample=_sample,
        written=datetime.now(timezone.utc).isoformat(sep=" ", timespec="seconds"),
    )


def report_stats(settings: Settings, report: RunReport) -> list[FeatureDayStats]:
    """The statistics a report plots: the stored ones of the 90 days up to the run's last day (read without
    Spark), then the run's own (which replace the stored ones of the same day, and show a quarantined day).

    Statistics that cannot be read are logged and left out: the plots never keep a report from being written.
    """
    first = report.end - timedelta(days=PLOT_DAYS - 1)
    try:
        stored = read_stats(settings, report.view, start=first, end=report.end)
    except Exception as error:  # noqa: BLE001 - the plots are an extra: the run's report must be written
        log.warning("%s: the report of run %s plots no stored statistics: %s", report.view, report.run_id, error)
        stored = []
    return [*stored, *(s for c in report.chunks for s in c.stats)]


def write_report(report: RunReport, settings: Settings) -> str:
    """Write the HTML report and the RunReport JSON of a run, replacing earlier ones of the same run.

    Sets ``report.report`` to the HTML path (also in the JSON). The page links to
    the index of the warehouse's reports beside it (``../index.html``, written by
    :func:`featurekiln.quality.index_page.write_index`) and plots the features'
    statistics (:func:`report_stats`).

    Returns:
        The HTML report's path, ``<warehouse>/_reports/<view>/<run id>.html`` (a
        URI for an object-store warehouse); the run id is made safe by
        :func:`safe_run_id`.

    Raises:
        KilnError: the report cannot be written.
    """
    html_path, json_path = report_paths(settings, report.view, report.run_id)
    report.report = html_path
    try:
        files = files_for(html_path, settings)
        files.write(json_path, (json.dumps(report.to_dict(), indent=2) + "\n").encode("utf-8"), "application/json")
        page = render_html(report, index_href="../index.html", stats=report_stats(settings, report))
        files.write(html_path, page.encode("utf-8"), "text/html; charset=utf-8")
    except (OSError, KilnError) as error:
        folder = html_path.rsplit("/", 1)[0]
        raise KilnError(f"cannot write the report of run {report.run_id!r} to {folder}: {error}") from error
    return html_path


def read_report(settings: Settings, view: str, run_id: str) -> RunReport:
    """Read the RunReport of ``run_id`` of ``view`` from its JSON file (local or in the object store).

    Raises:
        KilnError: there is no report of that run (the message lists the latest
            runs that have one), or the file is not a RunReport.
    """
    _, json_path = report_paths(settings, view, run_id)
    files = files_for(json_path, settings)
    try:
        text = files.read(json_path).decode("utf-8")
    except FileNotFoundError:
        known = [e for e in files.listing(json_path.rsplit("/", 1)[0]) if e.name.endswith(".json")]
        latest = ", ".join(e.name[: -len(".json")] for e in sorted(known, key=lambda e: e.modified, reverse=True)[:5])
        raise KilnError(
            f"no report of run {run_id!r} of view {view!r}: {json_path} does not exist (latest: {latest or 'none'})"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise KilnError(f"{json_path} is not a readable run report: {error}") from error
    try:
        return RunReport.from_dict(json.loads(text))
    except (ValueError, KeyError, TypeError) as error:
        raise KilnError(f"{json_path} is not a readable run report: {error}") from error


def outcome_table(outcomes: Sequence[Outcome], title: str = "") -> str:
    """A plain-text table of outcomes (no colour codes, 160 columns), failures first.

    Columns: expectation, column (and a monitor's day), observed, expected, result (PASS, FAIL, WARN or SKIP).
    Meant for Airflow task logs and the CLI.
    """
    table = Table(title=title or None, box=box.ASCII, show_lines=False, expand=False)
    table.add_column("expectation", overflow="fold")
    table.add_column("column", overflow="fold")
    table.add_column("observed", overflow="fold")
    table.add_column("expected", overflow="fold")
    table.add_column("result", no_wrap=True)
    for outcome in failures_first(outcomes):
        observed = outcome.exception or outcome.observed
        column = outcome.column + (f" on {outcome.day}" if outcome.day else "")
        cells = (outcome.expectation, column, observed, outcome.expected)
        table.add_row(*(Text(cell) for cell in cells), result_label(outcome))
    console = Console(file=io.StringIO(), width=TEXT_WIDTH, color_system=None, force_terminal=False, highlight=False)
    console.print(table)
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines())
