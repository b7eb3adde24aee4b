"""The ``kiln`` command line. Only parses and prints; renders errors: red, one line per problem, exit 1.

Usage errors (an unknown command or option, a bad value) print click's short
usage and the error, and exit 2. Neither prints a traceback without ``--debug``.
The common options (``--defs``, ``--warehouse``, ``--expectations``, ``--debug``)
go before or after the subcommand.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Annotated, Any, get_type_hints

import typer
from rich.console import Console
from rich.table import Table

from featurekiln.definitions.loader import load_catalog, load_definitions
from featurekiln.definitions.models import FeatureView
from featurekiln.errors import KilnError, QualityError, UnknownViewError
from featurekiln.settings import DEFAULT_DEFS, DEFAULT_EXPECTATIONS, DEFAULT_WAREHOUSE, Settings

app = typer.Typer(
    name="kiln",
    help="featurekiln: YAML feature definitions -> Spark -> Delta feature tables -> online store.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _console(stderr: bool = False) -> Console:
    """A console that prints tables whole when output is not a terminal (a pipe, a file, make)."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else 1000)


out = _console()
err = _console(stderr=True)


class State:
    """Options shared by every command."""

    settings: Settings = Settings()
    debug: bool = False


state = State()
COMMON = "Common options"
_DefsOption = typer.Option("--defs", help="Directory of feature definitions (env KILN_DEFS).", rich_help_panel=COMMON,
                           show_default=False)
_WarehouseOption = typer.Option("--warehouse", help="Warehouse root, a path or URI (env KILN_WAREHOUSE).",
                                rich_help_panel=COMMON, show_default=False)
_ExpectationsOption = typer.Option("--expectations", help="Directory of Great Expectations suites (env KILN_EXPECTATIONS).",
                                   rich_help_panel=COMMON, show_default=False)
_DebugOption = typer.Option("--debug", help="Show tracebacks and Spark's own log.", rich_help_panel=COMMON)

# The common options as parameters of every command, so they also work after the subcommand.
_COMMON_PARAMETERS = {
    "defs": Annotated[Path | None, _DefsOption],
    "warehouse": Annotated[str | None, _WarehouseOption],
    "expectations": Annotated[Path | None, _ExpectationsOption],
    "debug": Annotated[bool, _DebugOption],
}


def _apply_common(defs: Path | None, warehouse: str | None, expectations: Path | None, debug: bool) -> None:
    """Apply common options given after the subcommand: they win over those given before it."""
    given = {"defs_dir": defs, "warehouse": warehouse, "expectations_dir": expectations, "debug": debug or None}
    state.settings = replace(state.settings, **{key: value for key, value in given.items() if value is not None})
    state.debug = state.settings.debug
    if debug:
        logging.getLogger().setLevel(logging.DEBUG)


def command(name: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a command that also takes the common options (after its name)."""

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(func, eval_str=True)
        hints = get_type_hints(func, include_extras=True)

        @functools.wraps(func)
        def wrapper(**kwargs: Any) -> Any:
            common = {key: kwargs.pop(key) for key in _COMMON_PARAMETERS}
            if any(value not in (None, False) for value in common.values()):
                _apply_common(**common)
            return func(**kwargs)

        extra = [
            inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY, default=False if key == "debug" else None, annotation=hint)
            for key, hint in _COMMON_PARAMETERS.items()
        ]
        wrapper.__signature__ = signature.replace(parameters=[*signature.parameters.values(), *extra])  # type: ignore[attr-defined]
        wrapper.__annotations__ = {**hints, **_COMMON_PARAMETERS}
        del wrapper.__wrapped__  # typer must read the wrapper's signature, not the function's
        return app.command(name)(wrapper)

    return register


@app.callback()
def common(
    defs: Annotated[Path, typer.Option("--defs", envvar="KILN_DEFS", help="Directory of feature definitions.")] = Path(DEFAULT_DEFS),
    warehouse: Annotated[str, typer.Option("--warehouse", envvar="KILN_WAREHOUSE", help="Warehouse root (path or URI).")] = DEFAULT_WAREHOUSE,
    expectations: Annotated[
        Path, typer.Option("--expectations", envvar="KILN_EXPECTATIONS", help="Directory of Great Expectations suites.")
    ] = Path(DEFAULT_EXPECTATIONS),
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and Spark's own log.")] = False,
) -> None:
    """Options that every command takes, here or after the command's name."""
    state.settings = Settings.from_env(defs_dir=defs, warehouse=warehouse, expectations_dir=expectations,
                                       debug=True if debug else None)
    state.debug = state.settings.debug
    logging.basicConfig(level=logging.DEBUG if state.debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def _parse_day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date like 2025-01-31", param_hint=option) from None


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


@command()
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


@command("list")
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


@command()
def schema() -> None:
    """Print the JSON Schema of the definition format (for editors)."""
    document = FeatureView.model_json_schema()
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "featurekiln feature definition"
    out.print_json(json.dumps(document))


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
    first, last = _parse_day(start, "--start"), _parse_day(end, "--end")
    catalog = load_catalog(state.settings.defs_dir)
    selected = list(catalog.values()) if all_views else [_view(name) for name in views or []]
    plans = {v.name: plan_backfill(v, first, last, chunk_days or state.settings.chunk_days) for v in selected}
    suites = {v.name: runner.view_suites(v, state.settings) for v in selected} if not no_validate else {}
    if no_validate:
        err.print("[yellow]warning:[/yellow] --no-validate: the quality gate is skipped; these runs are recorded as "
                  "unvalidated and their snapshots cannot be pushed online", highlight=False)
    spark = _spark()
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


def _selected(views: list[str] | None) -> list[FeatureView]:
    """The named views, or every view when none is named."""
    catalog = load_catalog(state.settings.defs_dir)
    return [_view(name) for name in views] if views else list(catalog.values())


def _until(until: str | None) -> date:
    from featurekiln.planning.intervals import latest_complete_day

    return _parse_day(until, "--until") if until else latest_complete_day(datetime.now(timezone.utc))


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

    selected, last = _selected(views), _until(until)
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

    selected, last = _selected(views), _until(until)
    spark = _spark()
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
        if result.plan.nothing_to_do:
            out.print(f"[green]up to date[/green]: {view.name} until {last}", highlight=False)
            continue
        for done in result.backfills:
            report = done.report
            colour = {"success": "green", "warned": "yellow"}.get(report.status, "red")
            out.print(f"[{colour}]{report.status}[/{colour}]: {view.name} {done.plan.chunks[0].start}.."
                      f"{done.plan.chunks[-1].last}: {done.rows} rows; report: {report.report}", highlight=False,
                      soft_wrap=True)
        if result.pushed is not None:
            out.print(f"[green]pushed[/green]: {view.name} ds={result.pushed.ds}: {result.pushed.rows} rows online",
                      highlight=False)
    if problems:
        raise KilnError(f"{len(problems)} view(s) did not run: see the lines above")


@command()
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


@command()
def status(
    rows: Annotated[int, typer.Option("--rows", min=0, help="Also show this many rows of each latest snapshot.")] = 0,
) -> None:
    """Per view: the table location, rows, the days it holds, and the holes between them."""
    from featurekiln.layout import table_path
    from featurekiln.offline.delta_table import held_days, table_exists
    from featurekiln.planning.intervals import gaps

    views = load_catalog(state.settings.defs_dir)
    spark = _spark()
    table = Table("view", "rows", "days", "holes", "table")
    samples: list[Table] = []
    for view in views.values():
        path = table_path(state.settings, view.name)
        if not table_exists(spark, path):
            table.add_row(view.name, "-", "-", "-", f"{path} (not built)")
            continue
        frame = spark.read.format("delta").load(path)
        stats = frame.selectExpr("count(*)", "max(ds)").first()
        held = held_days(state.settings, path)
        holes = gaps(held)
        table.add_row(view.name, str(stats[0]), _ranges(held), f"[red]{_ranges(holes)}[/red]" if holes else "none", path)
        if rows and stats[1] is not None:
            samples.append(_snapshot_table(view, frame, stats[1], rows))
    out.print(table)
    for sample in samples:
        out.print(sample)


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


@command()
def push(
    view: Annotated[str, typer.Argument(help="View name (its definition sets online: true).")],
    ds: Annotated[str | None, typer.Option("--ds", help="Snapshot day to push (default: the latest published).")] = None,
) -> None:
    """Push a published snapshot of the view to the online store; a newer snapshot online always wins."""
    from featurekiln import runner
    from featurekiln.online.push import require_online

    definition = _view(view)
    require_online(definition)
    spark = _spark()
    with err.status(f"pushing {definition.name} ..."):
        result = runner.push(definition, _parse_day(ds, "--ds") if ds else None, settings=state.settings, spark=spark)
    out.print(
        f"[green]pushed[/green]: {result.view} ds={result.ds} -> {result.store}: {result.rows} rows, "
        f"{result.written} written, {result.skipped} unchanged or newer online, {result.deleted} inactive deleted "
        f"({result.seconds:.1f}s)"
    )


@command()
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
        raise typer.BadParameter("give one key as col=value ..., or --keys-file (not both)", param_hint="'KEY' / '--keys-file'")
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


@command("training-set")
def training_set_command(
    spine: Annotated[str, typer.Option("--spine", help="The spine: parquet, CSV (*.csv) or a Delta table.")],
    target: Annotated[str, typer.Option("--out", help="Where to write the training set (replaced).")],
    features: Annotated[
        list[str], typer.Option("--features", help="view or view:feature, comma-separated (repeatable).")
    ],
    timestamp: Annotated[str, typer.Option("--timestamp", help="The spine's time column (UTC).")] = "ts",
    key_map: Annotated[
        list[str] | None, typer.Option("--map", help="view.key=column where a key's spine column has another name.")
    ] = None,
    allow_missing: Annotated[
        bool, typer.Option("--allow-missing", help="Missing or stale snapshot days give nulls and a warning.")
    ] = False,
    as_of_version: Annotated[
        list[str] | None, typer.Option("--as-of-version", help="view=V: read Delta version V of the view's table.")
    ] = None,
    output_format: Annotated[str, typer.Option("--format", help="parquet or delta.")] = "parquet",
) -> None:
    """Every spine row with the features it would have been served at its time (snapshot ds = date(t) - 1 day)."""
    from featurekiln.planning.training import parse_key_map, parse_versions
    from featurekiln.training import TrainingRequest, write_training_set

    if output_format not in ("parquet", "delta"):
        raise typer.BadParameter(f"{output_format!r} is not parquet or delta", param_hint="--format")
    refs = [ref.strip() for item in features for ref in item.split(",") if ref.strip()]
    mapping = {f"{view}.{key}": column for (view, key), column in parse_key_map(key_map or []).items()}
    request = TrainingRequest(tuple(refs), timestamp, mapping, allow_missing, parse_versions(as_of_version or []))
    spark = _spark()
    with err.status("building the training set ..."):
        result = write_training_set(spark, spine, target, request, state.settings, output_format)  # type: ignore[arg-type]
    report = result.report
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True)
    table = Table("view", "version", "column", "match rate", "null rate",
                  title=f"{report.rows_in} spine rows in, {report.rows_out} rows out")
    for stats in report.views:
        table.add_row(stats.view, str(stats.version), "(row found)", f"{report.match_rate(stats):.2%}", "")
        for column in stats.nulls:
            table.add_row("", "", column, "", f"{report.null_rate(stats, column):.2%}")
    out.print(table)
    out.print(f"[green]wrote[/green] {result.output_format} {result.out} ({result.seconds:.1f}s); record: {result.record}",
              highlight=False, soft_wrap=True)


@command("check-online")
def check_online_command(
    view: Annotated[str, typer.Argument(help="View name (online: true).")],
    sample: Annotated[int, typer.Option("--sample", min=0, help="Keys to check each way; 0 checks every key.")] = 1000,
) -> None:
    """Compare the online store with the latest snapshot: mismatched values, keys missing online, extra keys."""
    from featurekiln.online.consistency import OnlineMismatchError, check_online

    definition = _view(view)
    spark = _spark()
    with err.status(f"checking {definition.name} online ..."):
        report = check_online(spark, definition, state.settings, sample or None)
    if not report.ok:
        raise OnlineMismatchError(report)
    out.print(f"[green]OK[/green]: {report.summary()}", highlight=False, soft_wrap=True)


@command("sample-data")
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


def _ranges(intervals: list[tuple[date, date]]) -> str:
    """``2025-01-01..2025-01-10, 2025-01-15`` for half-open day intervals."""
    from featurekiln.planning.intervals import ONE_DAY

    return ", ".join(
        f"{start}" if end - start == ONE_DAY else f"{start}..{end - ONE_DAY}" for start, end in intervals
    ) or "-"


def _cell(value: object) -> str:
    if value is None:
        return "[dim]null[/dim]"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return str(value)


def main() -> None:
    """Entry point of ``kiln``: run the app, render errors (tracebacks only with ``--debug``)."""
    debug = "--debug" in sys.argv or state.settings.debug
    try:
        app(standalone_mode=True)
    except KilnError as error:
        if debug or state.debug:
            raise
        for line in error.problems:
            for part in line.splitlines():
                err.print(f"[red]error:[/red] {part}", highlight=False, soft_wrap=True)
        _point_at_spark_log(error)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("[red]aborted[/red]")
        sys.exit(130)
    except Exception as error:  # noqa: BLE001 - the one place that turns any failure into a readable line
        if debug or state.debug:
            raise
        text = str(error).strip().splitlines()
        err.print(f"[red]error:[/red] {type(error).__name__}: {text[0] if text else ''} (run again with --debug for the "
                  "traceback)", highlight=False, soft_wrap=True)
        _point_at_spark_log(error)
        sys.exit(1)


def _point_at_spark_log(error: Exception) -> None:
    """After a Spark failure, keep the JVM's log file and say where it is."""
    from featurekiln.runner import SparkFailure

    if not isinstance(error, SparkFailure) and "pyspark" not in type(error).__module__:
        return
    if "pyspark" in sys.modules:
        from featurekiln.compute.session import keep_jvm_log

        path = keep_jvm_log()
        if path:
            err.print(f"Spark's own log: {path}", highlight=False, soft_wrap=True)
