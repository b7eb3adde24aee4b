"""Architecture seams (docs/architecture.md): pure packages stay pure, layers import downwards only."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "featurekiln"
HEAVY = ("pyspark", "airflow", "boto3", "great_expectations", "delta", "redis")
# docs/architecture.md: definitions, planning <- internals <- compute, offline <- quality, online <- runner <- cli,
# orchestration; the runner's steps (pipeline/) sit just below it.
# Modules outside these layers (settings, errors, layout, samples) are shared by all and import no layer.
# Planning reads the definitions, so it sits just above them.
LAYERS = {
    "definitions": 0, "planning": 1,
    "internals": 2,  # the one door to Delta's, Spark's and Hadoop's JVM classes (featurekiln/internals/README.md)
    "compute": 3, "offline": 3,
    "quality": 4, "online": 4,
    "pipeline": 5,
    "runner": 6, "training": 6,
    "cli": 7, "orchestration": 7, "__main__": 8,
    "__init__": 8,  # the package's public face: featurekiln.training_set
}
# pyspark's private handles on the JVM: used in featurekiln/internals/ only.
JVM_HANDLES = re.compile(r"\._(jvm|jsparkSession|jdf|jsc|jc|jo|jconf|jreader|jwrite)\b")


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


def test_only_internals_touch_the_jvm() -> None:
    touching = [
        f"{path.relative_to(PACKAGE.parent)}:{number}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.parent.name != "internals"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if JVM_HANDLES.search(line)
    ]
    assert not touching, f"reach the JVM through featurekiln/internals/ only: {touching}"


def test_training_set_is_importable_from_the_top_without_spark() -> None:
    loaded = _imported_after("from featurekiln import training_set")
    assert "pyspark" not in loaded and "airflow" not in loaded
