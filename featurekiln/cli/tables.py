"""``kiln show | status | report | stats``: what the feature tables hold, how their runs went, and the per-day
statistics of their features."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from featurekiln.cli.app import cell, command, day_ranges, out, parse_day, state, view_named
from featurekiln.definitions.loader import load_catalog
from featurekiln.definitions.models import FeatureView
from featurekiln.errors import KilnError, TableError

if TYPE_CHECKING:
    from featurekiln.offline.table_reader import DeltaSnapshot


@command()
def show(
    view: Annotated[str, typer.Argument(help="View name.")],
    ds: Annotated[str | None, typer.Option("--ds", help="Snapshot day (default: the latest).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Rows to show.")] = 20,
) -> None:
    """Show rows of a snapshot of the view's feature table."""
    from featurekiln.layout import table_path
    from featurekiln.offline.table_reader import open_table

    definition = view_named(view)
    path = table_path(state.settings, definition.name)
    table = open_table(path, state.settings)
    if table is None:
        raise TableError(f"{definition.name}: no feature table at {path}; "
                         f"run `kiln backfill {definition.name} --start ... --end ...` first")
    day = parse_day(ds, "--ds") if ds else table.max_partition("ds")
    if day is None:
        raise KilnError(f"{view}: the feature table is empty")
    out.print(_snapshot_table(definition, table, day, limit))


def _snapshot_table(view: FeatureView, table: DeltaSnapshot, day: date, limit: int) -> Table:
    from featurekiln.offline.table_reader import python_rows, sort_rows

    snapshot = table.read({"ds": day})
    shown = Table(*table.columns, title=f"{view.name} ds={day} ({snapshot.num_rows} rows)")
    for row in python_rows(sort_rows(snapshot, view.keys, limit=limit)):
        shown.add_row(*[cell(row[c]) for c in table.columns])
    return shown


@command()
def status(
    rows: Annotated[int, typer.Option("--rows", min=0, help="Also show this many rows of each latest snapshot.")] = 0,
) -> None:
    """Per view: the table location, rows, the days it holds, and the holes between them."""
    from featurekiln.layout import table_path
    from featurekiln.offline.delta_table import held_days
    from featurekiln.offline.table_reader import open_table
    from featurekiln.planning.intervals import gaps

    views = load_catalog(state.settings.defs_dir)
    table = Table("view", "rows", "days", "holes", "table")
    samples: list[Table] = []
    for view in views.values():
        path = table_path(state.settings, view.name)
        snapshot = open_table(path, state.settings)
        if snapshot is None:
            table.add_row(view.name, "-", "-", "-", f"{path} (not built)")
            continue
        latest = snapshot.max_partition("ds")
        held = held_days(state.settings, path)
        holes = gaps(held)
        table.add_row(view.name, str(snapshot.count()), day_ranges(held),
                      f"[red]{day_ranges(holes)}[/red]" if holes else "none", path)
        if rows and latest is not None:
            samples.append(_snapshot_table(view, snapshot, latest, rows))
    out.print(table)
    for line in _online_lines(views.values()):
        out.print(line, highlight=False, soft_wrap=True)
    for sample in samples:
        out.print(sample)


def _online_lines(views: Iterable[FeatureView]) -> list[str]:
    """For each online view: the snapshot the online store serves, and how far behind the latest validated one."""
    from featurekiln.pipeline.serving import pending_push

    lines = []
    for view in (v for v in views if v.online):
        try:
            latest, online = pending_push(view, state.settings)
        except KilnError as error:
            lines.append(f"[yellow]online[/yellow] {view.name}: the online store cannot be read: {error}")
            continue
        behind = (latest - online).days if latest and online else None
        if latest is None:
            state_text = "nothing validated to push"
        else:
            state_text = "push pending" if online is None or online < latest else "up to date"
        lines.append(f"online {view.name}: serves {online or 'nothing'}; latest validated {latest or 'none'}"
                     f"{f' ({behind} day(s) behind)' if behind else ''}: {state_text}")
    return lines


@command()
def report(
    view: Annotated[str | None, typer.Argument(help="View name (default: every view).", show_default=False)] = None,
    last: Annotated[int, typer.Option("--last", min=1, help="How many runs to list.")] = 20,
    run: Annotated[str | None, typer.Option("--run", help="Show this run's expectations.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The run history (newest first), or one run's expectations with --run."""
    from featurekiln.quality.history import read_runs
    from featurekiln.quality.report import read_report

    if run is not None:
        if view is None:
            raise typer.BadParameter("--run needs the VIEW argument", param_hint="'--run'")
        _print_run(read_report(state.settings, view_named(view).name, run), as_json)
        return
    if view is not None:
        view_named(view)
    runs = read_runs(state.settings, view, last)
    if as_json:
        out.print_json(json.dumps(runs, default=str))
        return
    table = Table("view", "run", "trigger", "days", "rows", "status", "failed/warn", "seconds")
    for item in runs:
        colour = {"success": "green", "warned": "yellow", "unvalidated": "yellow"}.get(item["status"], "red")
        counts = f"{len(item['failed'])}/{len(item['warnings'])}"
        table.add_row(
            item["view"],
            item["run_id"],
            item["trigger"],
            f"{item['start']}..{item['end']}",
            str(item["rows"]),
            f"[{colour}]{item['status']}[/{colour}]",
            counts if item["status"] != "unvalidated" else "-",
            f"{item['duration_s']:.0f}",
        )
    out.print(table)
    # Whole lines below the table, so that paths and messages are never cut to the terminal's width.
    for item in runs:
        for line in [*item["failed"], *[f"warning: {w}" for w in item["warnings"]], *([item["error"]] if item["error"] else [])]:
            out.print(f"{item['view']} {item['run_id']}: {line}", highlight=False, soft_wrap=True)
        out.print(f"{item['view']} {item['run_id']}: report {item['report'] or '-'}", highlight=False, soft_wrap=True)


@command()
def stats(
    view: Annotated[str, typer.Argument(help="View name.")],
    feature: Annotated[list[str] | None, typer.Option("--feature", help="Only this feature (repeatable).")] = None,
    start: Annotated[str | None, typer.Option("--start", help="First day (default: the first stored).")] = None,
    end: Annotated[str | None, typer.Option("--end", help="Last day, included (default: the last stored).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: a list of objects.")] = False,
) -> None:
    """Per-day statistics of the view's features on the published days: rows, nulls, min, max, mean, stddev,
    p50, p95, distinct."""
    from featurekiln.quality.statistics import read_stats

    definition = view_named(view)
    names = [f.name for f in definition.features]
    unknown = [f for f in feature or [] if f not in names]
    if unknown:
        raise KilnError(f"{definition.name}: no feature {', '.join(map(repr, unknown))} (features: {', '.join(names)})")
    first = parse_day(start, "--start") if start else None
    last = parse_day(end, "--end") if end else None
    found = read_stats(state.settings, definition.name, features=feature or None, start=first, end=last)
    if as_json:
        out.print_json(json.dumps([s.to_json() for s in found]))
        return
    order = {name: i for i, name in enumerate(names)}
    table = Table("ds", "feature", "rows", "nulls", "min", "max", "mean", "stddev", "p50", "p95", "distinct",
                  title=f"{definition.name}: statistics of {len({s.ds for s in found})} day(s)")
    for item in sorted(found, key=lambda s: (s.ds, order.get(s.feature, len(order)))):
        table.add_row(item.ds.isoformat(), item.feature, *(cell(getattr(item, c)) for c in
                      ("rows", "nulls", "min", "max", "mean", "stddev", "p50", "p95", "distinct")))
    out.print(table)


def _print_run(run_report, as_json: bool) -> None:  # noqa: ANN001 - a RunReport
    from featurekiln.quality.report import failures_first, result_label

    if as_json:
        out.print_json(json.dumps(run_report.to_dict(), default=str))
        return
    colour = {"success": "green", "warned": "yellow"}.get(run_report.status, "red")
    out.print(
        f"{run_report.view} run {run_report.run_id} ({run_report.trigger}): [{colour}]{run_report.status}[/{colour}], "
        f"days {run_report.start}..{run_report.end}, {run_report.rows} rows published",
        highlight=False,
    )
    if run_report.error:
        out.print(f"[red]error:[/red] {run_report.error}", highlight=False)
    for chunk in run_report.chunks:
        table = Table("expectation", "column", "observed", "expected", "result", title=f"{chunk.start}..{chunk.end}: {chunk.rows} rows")
        for outcome in failures_first(chunk.outcomes):
            label = result_label(outcome)
            colour = {"PASS": "green", "SKIP": "dim", "WARN": "yellow"}.get(label, "red")
            column = (outcome.column or "-") + (f" on {outcome.day}" if outcome.day else "")
            table.add_row(outcome.expectation, column, outcome.observed, outcome.expected, f"[{colour}]{label}[/{colour}]")
        out.print(table)
    if run_report.quarantine:
        out.print(f"quarantine: {run_report.quarantine}", highlight=False, soft_wrap=True)
    out.print(f"report: {run_report.report}", highlight=False, soft_wrap=True)
