"""``kiln get | training-set | check-online``: features as a model sees them, online and for training."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from featurekiln.cli.app import cell, command, err, out, start_spark, state, view_named


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
            table.add_row(*[cell(row[c]) for c in columns])
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
    spark = start_spark()
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

    definition = view_named(view)
    spark = start_spark()
    with err.status(f"checking {definition.name} online ..."):
        report = check_online(spark, definition, state.settings, sample or None)
    if not report.ok:
        raise OnlineMismatchError(report)
    out.print(f"[green]OK[/green]: {report.summary()}", highlight=False, soft_wrap=True)
