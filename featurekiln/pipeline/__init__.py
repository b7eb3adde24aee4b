"""The steps of the one pipeline that :mod:`featurekiln.runner` strings together for the CLI, the jobs and
Airflow: ``tiling`` (store the tiles a run needs, assemble its snapshots from them), ``publishing`` (commit
validated chunks, the ledger in each commit) and ``record`` (every run's report and history row)."""
