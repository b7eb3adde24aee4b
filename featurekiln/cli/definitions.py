"""``kiln validate | list | schema | sample-data``: the definitions and the sample sources."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from featurekiln.cli.app import command, out, parse_day, state
from featurekiln.definitions.loader import load_catalog, load_definitions
from featurekiln.definitions.models import FeatureView
from featurekiln.errors import KilnError


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


@command("sample-data")
def sample_data(
    start: Annotated[str, typer.Option("--start", help="First day of events.")] = "2025-01-01",
    days: Annotated[int, typer.Option("--days", min=1)] = 90,
    users: Annotated[int, typer.Option("--users", min=1)] = 2000,
    seed: Annotated[int, typer.Option("--seed")] = 7,
) -> None:
    """Write the deterministic sample sources (raw/purchases, raw/clicks) into the warehouse."""
    from featurekiln.samples import write_sample_sources

    counts = write_sample_sources(state.settings, start=parse_day(start, "--start"), days=days, users=users, seed=seed)
    for name, rows in counts.items():
        out.print(f"wrote {rows} rows to {state.settings.warehouse_path('raw', name)}")
