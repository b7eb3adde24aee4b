"""The ``kiln`` app: the common options (before or after the subcommand), the command decorator, the
helpers every command uses, and :func:`main`, which renders errors (see the package's docstring)."""

from __future__ import annotations

import functools
import inspect
import logging
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Annotated, Any, get_type_hints

import typer
from rich.console import Console
from rich.markup import escape

from featurekiln.definitions.loader import load_catalog
from featurekiln.definitions.models import FeatureView
from featurekiln.errors import KilnError, UnknownViewError
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


def parse_day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date like 2025-01-31", param_hint=option) from None


def view_named(name: str) -> FeatureView:
    views = load_catalog(state.settings.defs_dir)
    if name not in views:
        known = ", ".join(sorted(views)) or "none"
        raise UnknownViewError(f"no view named {name!r} in {state.settings.defs_dir} (views: {known})")
    return views[name]


def selected_views(views: list[str] | None) -> list[FeatureView]:
    """The named views, or every view when none is named."""
    catalog = load_catalog(state.settings.defs_dir)
    return [view_named(name) for name in views] if views else list(catalog.values())


def until_day(until: str | None) -> date:
    from featurekiln.planning.intervals import latest_complete_day

    return parse_day(until, "--until") if until else latest_complete_day(datetime.now(timezone.utc))


def start_spark():  # noqa: ANN201 - pyspark is imported lazily
    from featurekiln.compute.session import get_spark

    with err.status("starting Spark ..."):
        return get_spark(state.settings)


def day_ranges(intervals: list[tuple[date, date]]) -> str:
    """``2025-01-01..2025-01-10, 2025-01-15`` for half-open day intervals."""
    from featurekiln.planning.intervals import ONE_DAY

    return ", ".join(
        f"{start}" if end - start == ONE_DAY else f"{start}..{end - ONE_DAY}" for start, end in intervals
    ) or "-"


def cell(value: object) -> str:
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
                err.print(f"[red]error:[/red] {escape(part)}", highlight=False, soft_wrap=True)
        _point_at_spark_log(error)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("[red]aborted[/red]")
        sys.exit(130)
    except Exception as error:  # noqa: BLE001 - the one place that turns any failure into a readable line
        if debug or state.debug:
            raise
        from featurekiln.compute.spark_errors import is_spark_error, spark_problem

        if is_spark_error(error):  # a Spark error that no step translated: Spark's words, no py4j object id
            line = spark_problem(error).line()
        else:
            text = str(error).strip().splitlines()
            line = f"{type(error).__name__}: {text[0] if text else ''}"
        err.print(f"[red]error:[/red] {escape(line)} (run again with --debug for the traceback)", highlight=False,
                  soft_wrap=True)
        _point_at_spark_log(error)
        sys.exit(1)


def _point_at_spark_log(error: Exception) -> None:
    """After a Spark failure, keep the JVM's log file and say where it is."""
    from featurekiln.pipeline.record import SparkFailure

    if not isinstance(error, SparkFailure) and "pyspark" not in type(error).__module__:
        return
    if "pyspark" in sys.modules:
        from featurekiln.compute.session import keep_jvm_log

        path = keep_jvm_log()
        if path:
            err.print(f"Spark's own log: {path}", highlight=False, soft_wrap=True)
