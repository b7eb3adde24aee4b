"""Architecture seams (docs/architecture.md): pure packages stay pure, layers import downwards only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "featurekiln"
HEAVY = ("pyspark", "airflow", "boto3", "great_expectations", "delta", "redis")
# docs/architecture.md: definitions, planning <- compute, offline <- quality, online <- runner <- cli, orchestration;
# the runner's steps (pipeline/) sit just below it.
# Modules outside these layers (settings, errors, layout, samples) are shared by all and import no layer.
# Planning reads the definitions, so it sits just above them.
LAYERS = {
    "definitions": 0, "planning": 1,
    "compute": 2, "offline": 2,
    "quality": 3, "online": 3,
    "pipeline": 4,
    "runner": 5, "training": 5,
    "cli": 6, "orchestration": 6, "__main__": 7,
    "__init__": 7,  # the package's public face: featurekiln.training_set
}


def _imported_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    output = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return {name.split(".")[0] for name in output.split()}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path) -> set[str]:
    """Every featurekiln module ``path`` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("featurekiln"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("featurekiln"))
    return found


def test_definitions_and_planning_import_nothing_heavy() -> None:
    loaded = _imported_after(
        "import featurekiln.definitions, featurekiln.planning.plan, featurekiln.planning.intervals, featurekiln.planning.training"
    )
    assert not loaded & set(HEAVY)


def test_cli_module_does_not_start_spark_at_import() -> None:
    loaded = _imported_after("import featurekiln.cli, featurekiln.runner")
    assert "pyspark" not in loaded and "airflow" not in loaded


def test_layers_import_only_lower_layers() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        own = LAYERS.get(_part(module))
        for imported in _imports(path):
            other = LAYERS.get(_part(imported))
            if own is None and other is not None:
                wrong.append(f"{module} (shared) imports the layer {imported}")
            elif own is not None and other is not None and other > own:
                wrong.append(f"{module} imports the higher layer {imported}")
            elif own is not None and other is not None and other == own and _part(imported) != _part(module):
                wrong.append(f"{module} imports {imported}, a sibling layer")
    assert not wrong, "\n".join(wrong)


def test_only_settings_reads_the_environment() -> None:
    readers = [
        str(path.relative_to(PACKAGE.parent))
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "settings.py" and ("os.environ" in path.read_text() or "getenv" in path.read_text())
    ]
    assert not readers, f"read environment variables in featurekiln/settings.py only: {readers}"


def test_training_set_is_importable_from_the_top_without_spark() -> None:
    loaded = _imported_after("from featurekiln import training_set")
    assert "pyspark" not in loaded and "airflow" not in loaded
