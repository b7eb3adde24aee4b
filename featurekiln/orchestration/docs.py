"""Markdown shown in the Airflow UI for a view's DAG, and for a broken definition."""

from __future__ import annotations

from collections.abc import Iterable

from featurekiln.errors import Problem
from featurekiln.definitions.models import FeatureView


def _cell(text: object) -> str:
    """Text made safe for one cell of a markdown table."""
    return str(text).replace("|", "\\|").replace("\n", " ").strip() or " "


def _code(text: str) -> str:
    return f"`{text}`" if "`" not in text else text


def view_doc(view: FeatureView, file: str, table: str, lookback: int) -> str:
    """The ``doc_md`` of the DAG of ``view``: description, keys, features, source, runs.

    Args:
        view: the feature view.
        file: the definition file, as the loader names it.
        table: where the feature table lives.
        lookback: days of late data each nightly run recomputes.
    """
    source = view.source
    lines = [
        f"# {view.name}",
        "",
        view.description or "_No description._",
        "",
        f"- **Owner:** {view.owner}",
        f"- **Entity:** {view.entity.name}, keys {', '.join(_code(k) for k in view.keys)}",
        f"- **Feature table:** `{table}` (Delta, partitioned by `ds`)",
        f"- **Start:** {view.start} &nbsp; **Schedule:** `{view.schedule}` &nbsp; **TTL:** {view.ttl_days}d"
        f" &nbsp; **Online:** {'yes' if view.online else 'no'}",
        f"- **Definition:** `{file}` (fingerprint `{view.fingerprint()}`)",
        "",
        "## Features",
        "",
        "| feature | aggregation | expression | window | description |",
        "|---|---|---|---|---|",
    ]
    for feature in view.features:
        window = f"{feature.window}d" if feature.window is not None else f"ttl ({view.ttl_days}d)"
        expr = _code(feature.expr) if feature.expr else "events"
        lines.append(
            f"| {_cell(feature.name)} | {feature.agg} | {_cell(expr)} | {window} | {_cell(feature.description)} |"
        )
    lines += ["", "## Source", "", f"- **Path:** `{source.path}` ({source.format})", f"- **Event time:** `{source.timestamp}`"]
    if source.filter:
        lines.append(f"- **Filter:** `{source.filter}`")
    if source.query:
        lines += ["- **Query:**", "", "```sql", source.query.strip(), "```"]
    lines += [
        "",
        "## Runs",
        "",
        f"- A scheduled run computes what `kiln run {view.name} --until <its day>` would: its day"
        f"{f', the {lookback} days before it (late data)' if lookback else ''} and any day a missed night left out;"
        " the `plan` task logs that plan.",
        "- **Backfill:** trigger with params `start` and `end` (days, both included), or use"
        " Airflow's Backfill; days already materialized with this definition are skipped unless `force`;"
        " `retile` re-reads their events from the source. Each chunk of days is one task and retries alone.",
        "- A manual run without params computes the latest complete day at its logical date.",
    ]
    return "\n".join(lines)


def broken_doc(file: str, problems: Iterable[Problem]) -> str:
    """The ``doc_md`` of the placeholder DAG of a definition that does not load."""
    lines = [
        f"# Broken definition: `{file}`",
        "",
        "This definition does not load, so nothing is computed for it. "
        "Fix these problems (run `kiln validate` locally to check):",
        "",
        "| file | line | field | problem |",
        "|---|---|---|---|",
    ]
    for problem in problems:
        line = problem.line if problem.line is not None else ""
        lines.append(f"| {_cell(problem.file)} | {line} | {_cell(problem.field or '(file)')} | {_cell(problem.message)} |")
    return "\n".join(lines)
