"""spark-submit entry point: compute snapshots of one view through the same runner as the CLI.

Usage (the arguments of ``kiln backfill``)::

    spark-submit jobs/materialize.py [--defs DIR] [--warehouse W] VIEW --start YYYY-MM-DD --end YYYY-MM-DD \
        [--chunk-days N] [--no-validate] [--retile] [--run-id ID]
    spark-submit jobs/materialize.py ... VIEW --start ... --end ... --stage --run-id ID

Without ``--stage`` the job computes, validates and publishes like ``kiln backfill``.
With ``--stage`` (Airflow's cluster mode) it only computes the days into the run's
staging table; Airflow's ``validate`` and ``publish`` tasks do the rest.

Under ``spark-submit`` the master and the jars come from ``spark-submit``; run
with plain ``python`` it needs ``--master`` (for example ``local[2]``).
Exit status 0 on success, 1 with one line per problem on a featurekiln error.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__" and str(ROOT) not in sys.path:  # spark-submit runs this file by path
    sys.path.insert(0, str(ROOT))

log = logging.getLogger("featurekiln.jobs.materialize")


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2025-01-31") from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line (the same options as ``kiln backfill`` for one view)."""
    parser = argparse.ArgumentParser(prog="materialize.py", description=__doc__.splitlines()[0])
    parser.add_argument("--defs", help="definitions directory (default: $KILN_DEFS or feature_defs)")
    parser.add_argument("--warehouse", help="warehouse root (default: $KILN_WAREHOUSE or warehouse)")
    parser.add_argument("--master", help="Spark master when not run by spark-submit, e.g. local[2]")
    parser.add_argument("view", help="view name")
    parser.add_argument("--start", type=_day, required=True, help="first snapshot day (YYYY-MM-DD)")
    parser.add_argument("--end", type=_day, required=True, help="last snapshot day, included (YYYY-MM-DD)")
    parser.add_argument("--chunk-days", type=int, default=None, help="days per atomic commit")
    parser.add_argument("--run-id", default=None, help="recorded in the Delta commits; names the staging table")
    parser.add_argument("--no-validate", action="store_true", help="skip the quality gate (recorded as unvalidated)")
    parser.add_argument("--retile", action="store_true",
                        help="re-read the source for every event day the range reads, even where tiles are stored")
    parser.add_argument("--stage", action="store_true", help="only compute into the run's staging table (needs --run-id)")
    args = parser.parse_args(argv)
    if args.stage and not args.run_id:
        parser.error("--stage needs --run-id")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the backfill that the arguments describe; return the exit status."""
    from featurekiln import runner
    from featurekiln.compute.session import get_spark
    from featurekiln.errors import KilnError, UnknownViewError
    from featurekiln.planning.plan import plan_backfill
    from featurekiln.settings import Settings, under_spark_submit
    from featurekiln.definitions.loader import load_catalog

    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env(defs_dir=args.defs, warehouse=args.warehouse, spark_master=args.master)
    try:
        catalog = load_catalog(settings.defs_dir)
        if args.view not in catalog:
            raise UnknownViewError(f"no view named {args.view!r} in {settings.defs_dir}")
        under_submit = under_spark_submit()
        spark = get_spark(settings, submitted=under_submit and not args.master)
        view = catalog[args.view]
        if args.stage:
            chunk = plan_backfill(view, args.start, args.end, (args.end - args.start).days + 1).chunks[0]
            rows = runner.stage(view, chunk, settings=settings, spark=spark, run_id=args.run_id)
            log.info("%s: %d rows staged for run %s", view.name, rows, args.run_id)
            return 0
        result = runner.backfill(
            view,
            args.start,
            args.end,
            settings=settings,
            spark=spark,
            chunk_days=args.chunk_days,
            run_id=args.run_id,
            trigger="spark-submit",
            validate=not args.no_validate,
            retile=args.retile,
        )
    except KilnError as error:
        for line in error.problems:
            sys.stderr.write(f"error: {line}\n")
        return 1
    log.info("%s: %d rows in %d chunk(s) -> %s; report %s", result.view, result.rows, len(result.chunks), result.table,
             result.report.report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
