"""The ``kiln`` command line. Renders errors: red, one line per problem, exit 1."""

from __future__ import annotations

import json
import logging
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.console import Console
from rich.table import Table

from featurekiln.errors import KilnError, QualityError, UnknownViewError
from featurekiln.settings import DEFAULT_DEFS, DEFAULT_EXPECTATIONS, DEFAULT_WAREHOUSE, Settings
from featurekiln.definitions.loader import load_catalog, load_definitions
from featurekiln.definitions.models import FeatureView

app = typer.Typer(
    name="kiln",
    help="featurekiln: YAML feature definitions -> Spark -> Delta feature tables.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)


class State:
    """Options shared by every command."""

    settings: Settings = Settings()
    debug: bool = False


state = State()


@app.callback()
def common(
    defs: Annotated[Path, typer.Option("--defs", envvar="KILN_DEFS", help="Directory of feature definitions.")] = Path(DEFAULT_DEFS),
    warehouse: Annotated[str, typer.Option("--warehouse", envvar="KILN_WAREHOUSE", help="Warehouse root (path or URI).")] = DEFAULT_WAREHOUSE,
    expectations: Annotated[
        Path, typer.Option("--expectations", envvar="KILN_EXPECTATIONS", help="Directory of Great Expectations suites.")
    ] = Path(DEFAULT_EXPECTATIONS),
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and Spark logs.")] = False,
) -> None:
    """Options that every command takes."""
    state.settings = Settings.from_env(defs_dir=defs, warehouse=warehouse, expectations_dir=expectations)
    state.debug = debug
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def _parse_day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2025-01-31", param_hint=option) from None


def _view(name: str) -> FeatureView:
    views = load_catalog(state.settings.defs_dir)
    if name not in views:
        known = ", ".join(sorted(views)) or "none"
        raise UnknownViewError(f"no view named {name!r} in {state.settings.defs_dir} (views: {known})")
    return views[name]


def _spark():  # noqa: ANN202 - pyspark is imported lazily
    from featurekiln.compute.session import get_spark

    with err.status("starting Spark ..."):
        return get_spark(state.settings)


@app.command()
def validate() -> None:
    """Check every definition and expectation suite; print every problem with file, line and field."""
    from featurekiln.quality.suites import check_suites, suite_files

    settings = state.settings
    result = load_definitions(settings.defs_dir)
    problems = [*result.problems, *check_suites(result.views, settings, result.files)]
    if problems:
        raise KilnError("\n".join(str(p) for p in problems))
    suites = len(suite_files(settings.expectations_dir))
    out.print(
        f"[green]OK[/green]: {len(result.views)} definition(s) in {settings.defs_dir}, "
        f"{suites} suite(s) in {settings.expectations_dir}"
    )


@app.command("list")
def list_views() -> None:
    """List the views: entity keys, features, schedule, start, ttl."""
    views = load_catalog(state.settings.defs_dir)
    table = Table("view", "keys", "features", "schedule", "start", "ttl", "online")
    for view in views.values():
        table.add_row(
            view.name,
            ", ".join(view.keys),
            ", ".join(f.name for f in view.features),
            view.schedule,
            view.start.isoformat(),
            f"{view.ttl_days}d",
            "yes" if view.online else "no",
        )
    out.print(table)


@app.command()
def schema() -> None:
    """Print the JSON Schema of the definition format (for editors)."""
    document = FeatureView.model_json_schema()
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "featurekiln feature definition"
    out.print_json(json.dumps(document))


@app.command()
def backfill(
    views: Annotated[list[str] | None, typer.Argument(help="View name(s).", show_default=False)] = None,
    start: Annotated[str, typer.Option("--start", help="First snapshot day (YYYY-MM-DD).")] = "",
    end: Annotated[str, typer.Option("--end", help="Last snapshot day, included (YYYY-MM-DD).")] = "",
    all_views: Annotated[bool, typer.Option("--all", help="Backfill every view.")] = False,
    chunk_days: Annotated[int | None, typer.Option("--chunk-days", min=1, help="Days per atomic commit.")] = None,
    no_validate: Annotated[
        bool, typer.Option("--no-validate", help="Skip the quality gate (the run is recorded as unvalidated).")
    ] = False,
) -> None:
    """Compute snapshots START..END (END included), validate them, publish them to the views' Delta tables."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from featurekiln import runner
    from featurekiln.planning.plan import plan_backfill

    if not start or not end:
        raise click.UsageError("--start and --end are required")
    if bool(views) == all_views:
        raise click.UsageError("name one or more views, or pass --all")
    first, last = _parse_day(start, "--start"), _parse_day(end, "--end")
    catalog = load_catalog(state.settings.defs_dir)
    selected = list(catalog.values()) if all_views else [_view(name) for name in views or []]
    plans = {v.name: plan_backfill(v, first, last, chunk_days or state.settings.chunk_days) for v in selected}
    suites = {v.name: runner.view_suites(v, state.settings) for v in selected} if not no_validate else {}
    if no_validate:
        err.print("[yellow]warning:[/yellow] --no-validate: the quality gate is skipped; these runs are recorded as "
                  "unvalidated and their snapshots cannot be pushed online", highlight=False)
    spark = _spark()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    failures: list[QualityError] = []
    for definition in selected:
        with Progress(*columns, console=err) as progress:
            task = progress.add_task(f"{definition.name} {first}..{last}", total=len(plans[definition.name].chunks))
            try:
                result = runner.backfill(
                    definition,
                    first,
                    last,
                    settings=state.settings,
                    spark=spark,
                    chunk_days=chunk_days,
                    validate=not no_validate,
                    on_chunk=lambda _: progress.advance(task),
                )
            except QualityError as error:
                failures.append(error)
                for line in error.problems:
                    err.print(f"[red]failed:[/red] {line}", highlight=False, soft_wrap=True)
                continue
        report = result.report
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


@app.command()
def show(
    view: Annotated[str, typer.Argument(help="View name.")],
    ds: Annotated[str | None, typer.Option("--ds", help="Snapshot day (default: the latest).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Rows to show.")] = 20,
) -> None:
    """Show rows of a snapshot of the view's feature table."""
    from featurekiln.offline.delta_table import read_table

    definition = _view(view)
    spark = _spark()
    frame = read_table(spark, state.settings, definition.name)
    day = _parse_day(ds, "--ds") if ds else frame.agg({"ds": "max"}).first()[0]
    if day is None:
        raise KilnError(f"{view}: the feature table is empty")
    out.print(_snapshot_table(definition, frame, day, limit))


def _snapshot_table(view: FeatureView, frame, day: date, limit: int) -> Table:  # noqa: ANN001 - a pyspark DataFrame
    snapshot = frame.where(frame.ds == day)
    table = Table(*frame.columns, title=f"{view.name} ds={day} ({snapshot.count()} rows)")
    for row in snapshot.orderBy(*view.keys).limit(limit).collect():
        table.add_row(*[_cell(v) for v in row])
    return table


@app.command()
def status(
    rows: Annotated[int, typer.Option("--rows", min=0, help="Also show this many rows of each latest snapshot.")] = 0,
) -> None:
    """Per view: the table location, rows, first and last snapshot."""
    from featurekiln.offline.delta_table import table_exists, table_path

    views = load_catalog(state.settings.defs_dir)
    spark = _spark()
    table = Table("view", "rows", "first ds", "last ds", "table")
    samples: list[Table] = []
    for view in views.values():
        path = table_path(state.settings, view.name)
        if not table_exists(spark, path):
            table.add_row(view.name, "-", "-", "-", f"{path} (not built)")
            continue
        frame = spark.read.format("delta").load(path)
        stats = frame.selectExpr("count(*)", "min(ds)", "max(ds)").first()
        table.add_row(view.name, str(stats[0]), str(stats[1]), str(stats[2]), path)
        if rows and stats[2] is not None:
            samples.append(_snapshot_table(view, frame, stats[2], rows))
    out.print(table)
    for sample in samples:
        out.print(sample)


@app.command()
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
            raise click.UsageError("--run needs the VIEW argument")
        _print_run(read_report(state.settings, _view(view).name, run), as_json)
        return
    if view is not None:
        _view(view)
    runs = read_runs(_spark(), state.settings, view, last)
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


def _print_run(run_report, as_json: bool) -> None:  # noqa: ANN001 - a RunReport
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
        for outcome in sorted(chunk.outcomes, key=lambda o: (o.success, o.severity != "error")):
            mark = "[green]PASS[/green]" if outcome.success else ("[red]FAIL[/red]" if outcome.blocking else "[yellow]WARN[/yellow]")
            table.add_row(outcome.expectation, outcome.column or "-", outcome.observed, outcome.expected, mark)
        out.print(table)
    if run_report.quarantine:
        out.print(f"quarantine: {run_report.quarantine}", highlight=False, soft_wrap=True)
    out.print(f"report: {run_report.report}", highlight=False, soft_wrap=True)


@app.command()
def push(
    view: Annotated[str, typer.Argument(help="View name (its definition sets online: true).")],
    ds: Annotated[str | None, typer.Option("--ds", help="Snapshot day to push (default: the latest published).")] = None,
) -> None:
    """Push a published snapshot of the view to the online store; a newer snapshot online always wins."""
    from featurekiln.online.push import latest_snapshot_day, push_view, require_online
    from featurekiln.quality.history import require_validated

    definition = _view(view)
    require_online(definition)
    spark = _spark()
    day = _parse_day(ds, "--ds") if ds else latest_snapshot_day(spark, state.settings, definition)
    require_validated(spark, state.settings, definition.name, day)
    with err.status(f"pushing {definition.name} ds={day} ..."):
        result = push_view(spark, definition, state.settings, day)
    out.print(
        f"[green]pushed[/green]: {result.view} ds={result.ds} -> {result.store}: {result.rows} rows, "
        f"{result.written} written, {result.skipped} unchanged or newer online, {result.deleted} inactive deleted "
        f"({result.seconds:.1f}s)"
    )


@app.command()
def get(
    view: Annotated[str, typer.Argument(help="View name.")],
    key: Annotated[list[str] | None, typer.Argument(help="One key: col=value for every key column.", show_default=False)] = None,
    keys_file: Annotated[
        Path | None, typer.Option("--keys-file", help="Many keys: CSV with a header, or JSON objects (a list or one per line).")
    ] = None,
    features: Annotated[list[str] | None, typer.Option("--feature", "-f", help="Only this feature (repeatable).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list: one object per key, null if not online.")] = False,
) -> None:
    """Read the online features of one key (col=value ...) or of every key in --keys-file."""
    from featurekiln.online import get_features
    from featurekiln.online.keys import parse_key_pairs, read_keys_file

    if bool(key) == bool(keys_file):
        raise click.UsageError("give one key as col=value ..., or --keys-file")
    keys = read_keys_file(keys_file) if keys_file else [parse_key_pairs(key or [])]
    rows = get_features(view, keys, features, settings=state.settings)
    if as_json:
        typer.echo(json.dumps(rows, default=lambda v: v.isoformat() if isinstance(v, date | datetime) else str(v)))
        return
    found = [r for r in rows if r is not None]
    columns = list(found[0]) if found else []
    table = Table(*columns, title=f"{view}: {len(found)} of {len(rows)} key(s) online") if columns else None
    for asked, row in zip(keys, rows, strict=True):
        if row is None:
            err.print(f"[yellow]not found[/yellow]: {view} {' '.join(f'{k}={v}' for k, v in asked.items())} is not online")
        elif table is not None:
            table.add_row(*[_cell(row[c]) for c in columns])
    if table is not None:
        out.print(table)


@app.command("sample-data")
def sample_data(
    start: Annotated[str, typer.Option("--start", help="First day of events.")] = "2025-01-01",
    days: Annotated[int, typer.Option("--days", min=1)] = 90,
    users: Annotated[int, typer.Option("--users", min=1)] = 2000,
    seed: Annotated[int, typer.Option("--seed")] = 7,
) -> None:
    """Write the deterministic sample sources (raw/purchases, raw/clicks) into the warehouse."""
    from featurekiln.samples import write_sample_sources

    counts = write_sample_sources(state.settings, start=_parse_day(start, "--start"), days=days, users=users, seed=seed)
    for name, rows in counts.items():
        out.print(f"wrote {rows} rows to {state.settings.warehouse_path('raw', name)}")


def _cell(value: object) -> str:
    if value is None:
        return "[dim]null[/dim]"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return str(value)


def main() -> None:
    """Entry point of ``kiln``: run the app and render errors."""
    debug = "--debug" in sys.argv
    try:
        app(standalone_mode=False)
    except KilnError as error:
        if debug:
            raise
        for line in error.problems:
            for part in line.splitlines():
                err.print(f"[red]error:[/red] {part}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except click.exceptions.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        err.print("[red]aborted[/red]")
        sys.exit(130)
