"""``kiln maintain``: compact, vacuum past the retention, clean finished runs' leftovers, checkpoint."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from featurekiln.cli.app import command, out, selected_views, start_spark, state


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


@command()
def maintain(
    views: Annotated[list[str] | None, typer.Argument(help="Views to maintain (default: every view).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Measure what would be done; change nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Compact small files, VACUUM files replaced longer ago than the retention, delete finished runs'
    leftovers older than it, and checkpoint: the views' feature and tile tables and the run history.

    The retention is KILN_RETAIN_DAYS (else retain_days in kiln.yaml, else 30 days); see docs/maintenance.md.
    """
    from featurekiln.offline.maintenance import maintain as maintain_tables
    from featurekiln.offline.retention import retain_days

    chosen = selected_views(views)
    days = retain_days(state.settings)
    spark = start_spark()
    done = maintain_tables(spark, state.settings, chosen, dry_run=dry_run)
    if as_json:
        out.print_json(json.dumps({"retain_days": days, "dry_run": dry_run, "tables": [d.to_dict() for d in done]}))
        return
    verb = "would reclaim" if dry_run else "reclaimed"
    table = Table("view", "table", "files", "bytes", "live files", "live bytes", "compacted", f"{verb} files",
                  f"{verb} bytes", "checkpoint", "notes",
                  title=f"kiln maintain{' --dry-run' if dry_run else ''}: retention {days} day(s)")
    for item in done:
        table.add_row(item.view, item.table, str(item.files), _size(item.bytes),
                      "-" if item.live_files is None else str(item.live_files),
                      "-" if item.live_bytes is None else _size(item.live_bytes), str(item.compacted),
                      str(item.reclaimed_files), _size(item.reclaimed_bytes),
                      "-" if item.checkpoint is None else str(item.checkpoint), "; ".join(item.notes))
    out.print(table)
