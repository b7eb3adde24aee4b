"""``kiln backfill | plan | run | push``: compute, validate and publish snapshots, and push them online."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.table import Table

from featurekiln.cli.app import command, err, out, parse_day, selected_views, start_spark, state, until_day, view_named
from featurekiln.definitions.loader import load_catalog
from featurekiln.definitions.models import FeatureView
from featurekiln.errors import KilnError, QualityError


@command()
def backfill(
    views: Annotated[list[str] | None, typer.Argument(help="View name(s).", show_default=False)] = None,
    start: Annotated[str, typer.Option("--start", help="First snapshot day (YYYY-MM-DD).")] = "",
    end: Annotated[str, typer.Option("--end", help="Last snapshot day, included (YYYY-MM-DD).")] = "",
    all_views: Annotated[bool, typer.Option("--all", help="Backfill every view.")] = False,
    chunk_days: Annotated[int | None, typer.Option("--chunk-days", min=1, help="Days per validated chunk (the run is one commit).")] = None,
    no_validate: Annotated[
        bool, typer.Option("--no-validate", help="Skip the quality gate (the run is recorded as unvalidated).")
    ] = False,
    retile: Annotated[
        bool, typer.Option("--retile", help="Re-read the source for every event day the range reads, even where "
                           "tiles are stored (after a fix to raw data).")
    ] = False,
) -> None:
    """Compute snapshots START..END (END included), validate them, publish them to the views' Delta tables.

    Stored tiles are reused: only event days without stored tiles are read from the source, unless --retile.
    """
    from featurekiln import runner
    from featurekiln.planning.plan import plan_backfill

    if not start or not end:
        raise typer.BadParameter("both are required", param_hint="'--start' / '--end'")
    if bool(views) == all_views:
        raise typer.BadParameter("name one or more views, or pass --all (not both)", param_hint="'VIEWS' / '--all'")
    first, last = parse_day(start, "--start"), parse_day(end, "--end")
    catalog = load_catalog(state.settings.defs_dir)
    selected = list(catalog.values()) if all_views else [view_named(name) for name in views or []]
    plans = {v.name: plan_backfill(v, first, last, chunk_days or state.settings.chunk_days) for v in selected}
    suites = {v.name: runner.view_suites(v, state.settings) for v in selected} if not no_validate else {}
    if no_validate:
        err.print("[yellow]warning:[/yellow] --no-validate: the quality gate is skipped; these runs are recorded as "
                  "unvalidated and their snapshots cannot be pushed online", highlight=False)
    spark = start_spark()
    failures: list[QualityError] = []
    for definition in selected:
        with _steps(f"{definition.name} {first}..{last} ({len(plans[definition.name].chunks)} chunk(s))") as on_step:
            try:
                result = runner.backfill(
                    definition,
                    first,
                    last,
                    settings=state.settings,
                    spark=spark,
                    chunk_days=chunk_days,
                    validate=not no_validate,
                    retile=retile,
                    on_step=on_step,
                )
            except QualityError as error:
                failures.append(error)
                for line in error.problems:
                    err.print(f"[red]failed:[/red] {line}", highlight=False, soft_wrap=True)
                continue
        report = result.report
        if report is None:  # a backfill's plan always computes days
            continue
        colour = {"success": "green", "warned": "yellow"}.get(report.status, "red")
        out.print(
            f"[{colour}]{report.status}[/{colour}]: {definition.name}: {result.rows} rows in {len(result.chunks)} "
            f"chunk(s) -> {result.table}",
            highlight=False,
        )
        for warning in report.warnings:
            out.print(f"  [yellow]warning:[/yellow] {warning.line()}", highlight=False, soft_wrap=True)
        if definition.name in suites:
            out.print(f"  report: {report.report}", highlight=False, soft_wrap=True)
    if failures:
        raise KilnError(f"{len(failures)} view(s) failed their expectations: see the lines above and `kiln report`")


@contextmanager
def _steps(label: str) -> Iterator[Callable[[str], None]]:
    """A progress line on stderr while a run works: a spinner, ``label: <its current step>``, the time elapsed.

    Shown on a terminal only, and gone when the run ends (its result line follows).
    """
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    if not err.is_terminal:  # a log (CI, Airflow, a pipe) gets the result lines only
        yield lambda _line: None
        return
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err,
                  transient=True) as progress:
        task = progress.add_task(label, total=None)
        yield lambda line: progress.update(task, description=f"{label}: {line}")


@command()
def plan(
    views: Annotated[list[str] | None, typer.Argument(help="View name(s); default: every view.", show_default=False)] = None,
    until: Annotated[str | None, typer.Option("--until", help="Last snapshot day wanted (default: yesterday, UTC).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list, one object per view.")] = False,
) -> None:
    """Per view: the days materialized, missing, stale, and what `kiln run` would compute and read.

    "reads events" are the event days read from the source; every other tile day comes from the stored tiles.
    """
    from featurekiln import runner
    from featurekiln.planning.materialization import inclusive

    selected, last = selected_views(views), until_day(until)
    plans = [runner.plan_run(view, last, settings=state.settings) for view in selected]
    if as_json:
        typer.echo(json.dumps([p.to_json() for p in plans]))
        return
    table = Table("view", "materialized", "missing", "stale", "will compute", "reads events", "tiles stored",
                  title=f"plan until {last}")
    for item in plans:
        cells = [_inclusive_text(inclusive(getattr(item, name))) for name in
                 ("materialized", "missing", "stale", "will_compute", "reads_events", "tiles")]
        table.add_row(item.view, cells[0], cells[1], f"[red]{cells[2]}[/red]" if item.stale else cells[2], *cells[3:])
    out.print(table)
    for item in plans:
        if item.refused:
            err.print(f"[yellow]refused:[/yellow] {item.refused}", highlight=False, soft_wrap=True)
    for view in selected:
        if view.online:
            out.print(_push_line(view), highlight=False, soft_wrap=True)


def _push_line(view: FeatureView) -> str:
    """Whether a push is pending for an online view: the latest validated snapshot and the one online."""
    from featurekiln.pipeline.serving import pending_push

    try:
        latest, online = pending_push(view, state.settings)
    except KilnError as error:
        return f"[yellow]online:[/yellow] {view.name}: the online store cannot be read: {error}"
    if latest is None:
        return f"online: {view.name}: no validated snapshot to push (online: {online or 'none'})"
    if online is None or online < latest:
        return f"[yellow]push pending[/yellow]: {view.name}: snapshot {latest} (online: {online or 'none'})"
    return f"online: {view.name}: up to date (snapshot {online})"


def _inclusive_text(ranges: list[list[str]]) -> str:
    return ", ".join(a if a == b else f"{a}..{b}" for a, b in ranges) or "-"


@command()
def run(
    views: Annotated[list[str] | None, typer.Argument(help="View name(s); default: every view.", show_default=False)] = None,
    until: Annotated[str | None, typer.Option("--until", help="Last snapshot day wanted (default: yesterday, UTC).")] = None,
) -> None:
    """Compute what `kiln plan` says, through the quality gate; publish; push online views. Nothing to do is fine."""
    from featurekiln import runner
    from featurekiln.errors import StaleTableError

    selected, last = selected_views(views), until_day(until)
    spark = start_spark()
    problems: list[KilnError] = []
    for view in selected:
        try:
            with _steps(view.name) as on_step:
                result = runner.run(view, last, settings=state.settings, spark=spark, on_step=on_step)
        except (QualityError, StaleTableError) as error:
            problems.append(error)
            for line in error.problems:
                err.print(f"[red]failed:[/red] {line}", highlight=False, soft_wrap=True)
            continue
        report = result.report
        if report is None or result.plan.empty:
            out.print(f"[green]up to date[/green]: {view.name} until {last}", highlight=False)
        else:
            colour = {"success": "green", "warned": "yellow"}.get(report.status, "red")
            out.print(f"[{colour}]{report.status}[/{colour}]: {view.name} {result.plan}: {result.rows} rows; "
                      f"report: {report.report}", highlight=False, soft_wrap=True)
        if result.pushed is not None:
            out.print(f"[green]pushed[/green]: {view.name} ds={result.pushed.ds}: {result.pushed.rows} rows online",
                      highlight=False)
    if problems:
        raise KilnError(f"{len(problems)} view(s) did not run: see the lines above")


@command()
def push(
    view: Annotated[str, typer.Argument(help="View name (its definition sets online: true).")],
    ds: Annotated[str | None, typer.Option("--ds", help="Snapshot day to push (default: the latest published).")] = None,
) -> None:
    """Push a published snapshot of the view to the online store; a newer snapshot online always wins."""
    from featurekiln import runner
    from featurekiln.online.push import require_online

    definition = view_named(view)
    require_online(definition)
    spark = start_spark()
    with err.status(f"pushing {definition.name} ..."):
        result = runner.push(definition, parse_day(ds, "--ds") if ds else None, settings=state.settings, spark=spark)
    out.print(
        f"[green]pushed[/green]: {result.view} ds={result.ds} -> {result.store}: {result.rows} rows, "
        f"{result.written} written, {result.skipped} unchanged or newer online, {result.deleted} inactive deleted "
        f"({result.seconds:.1f}s)"
    )
