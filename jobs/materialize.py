"""spark-submit entry point: run a plan of one view through the same executor as the CLI.

Usage::

    spark-submit jobs/materialize.py [--defs DIR] [--warehouse W] VIEW --start YYYY-MM-DD --end YYYY-MM-DD \
        [--chunk-days N] [--no-validate] [--retile] [--run-id ID]
    spark-submit jobs/materialize.py ... VIEW --plan PLAN_JSON --step tiles|publish|push --run-id ID [--trigger T]

With ``--start``/``--end`` (the arguments of ``kiln backfill``) the job computes,
validates and publishes like ``kiln backfill``. With ``--plan`` (Airflow's cluster
mode) it runs one step of the run's plan, as the local Airflow task does.

Under ``spark-submit`` the master and the jars come from ``spark-submit``; run
with plain ``python`` it needs ``--master`` (for example ``local[2]``).
Exit status 0 on success, 1 with one line per problem on a featurekiln error.
"""

from __future__ import annotations

import argparse
import json
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
    parser.add_argument("--start", type=_day, help="first snapshot day (YYYY-MM-DD)")
    parser.add_argument("--end", type=_day, help="last snapshot day, included (YYYY-MM-DD)")
    parser.add_argument("--plan", help="a run's plan as JSON (Airflow's plan task); with --step")
    parser.add_argument("--step", choices=("tiles", "publish", "push"), help="the step of --plan to run")
    parser.add_argument("--trigger", default=None, help="the trigger the run is recorded with")
    parser.add_argument("--chunk-days", type=int, default=None, help="days per atomic commit")
    parser.add_argument("--run-id", default=None, help="recorded in the Delta commits and the run history")
    parser.add_argument("--no-validate", action="store_true", help="skip the quality gate (recorded as unvalidated)")
    parser.add_argument("--retile", action="store_true",
                        help="re-read the source for every event day the range reads, even where tiles are stored")
    args = parser.parse_args(argv)
    if args.plan is not None and (not args.step or not args.run_id):
        parser.error("--plan needs --step and --run-id")
    if args.plan is None and (args.start is None or args.end is None):
        parser.error("--start and --end are required (or --plan with --step)")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the backfill that the arguments describe; return the exit status."""
    from featurekiln import runner
    from featurekiln.compute.session import get_spark
    from featurekiln.errors import KilnError, UnknownViewError
    from featurekiln.planning.plan import RunPlan
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
        if args.plan is not None:
            plan = RunPlan.from_json(json.loads(args.plan))
            result = runner.execute(view, plan, settings=settings, spark=spark, run_id=args.run_id,
                                    trigger=args.trigger or "spark-submit", steps=plan.task_steps(args.step))
            log.info("%s: step %s of run %s done: %d rows", view.name, args.step, args.run_id, result.rows)
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
             result.report.report if result.report else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
