"""Architecture seams of DESIGN.md: pure packages stay pure."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("pyspark", "airflow", "boto3", "great_expectations", "delta", "redis")


def _imported_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    output = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return {name.split(".")[0] for name in output.split()}


def test_definitions_and_planning_import_nothing_heavy() -> None:
    loaded = _imported_after(
        "import featurekiln.definitions, featurekiln.planning.plan, featurekiln.planning.intervals, featurekiln.planning.training"
    )
    assert not loaded & set(HEAVY)


def test_cli_module_does_not_start_spark_at_import() -> None:
    loaded = _imported_after("import featurekiln.cli, featurekiln.runner")
    assert "pyspark" not in loaded and "airflow" not in loaded


def test_training_set_is_importable_from_the_top_without_spark() -> None:
    loaded = _imported_after("from featurekiln import training_set")
    assert "pyspark" not in loaded and "airflow" not in loaded
