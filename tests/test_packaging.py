"""pyproject.toml's dependencies and extras are the ones requirements.txt pins (pure).

Every name that ``pip install featurekiln[...]`` can install is pinned in
requirements.txt with ``==``, and the pinned version satisfies the range that
pyproject.toml declares, so the tested set is one that the package accepts.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _pins() -> dict[str, str]:
    """requirements.txt as canonical name -> exact version; every line must be an exact pin."""
    pins = {}
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        requirement = Requirement(text)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"requirements.txt: {text} is not an exact pin"
        pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


def _declared() -> dict[str, list[Requirement]]:
    """Where each requirement is declared ("dependencies" or the extra's name) -> its requirements."""
    project = _project()
    declared = {"dependencies": [Requirement(text) for text in project["dependencies"]]}
    for extra, texts in project.get("optional-dependencies", {}).items():
        declared[extra] = [Requirement(text) for text in texts]
    return declared


def test_every_declared_dependency_is_pinned_and_its_pin_fits_the_range() -> None:
    pins = _pins()
    own = canonicalize_name(_project()["name"])
    problems = []
    for where, requirements in _declared().items():
        for requirement in requirements:
            name = canonicalize_name(requirement.name)
            if name == own:
                continue
            if name not in pins:
                problems.append(f"{where}: {requirement} is not pinned in requirements.txt")
            elif not requirement.specifier.contains(pins[name], prereleases=True):
                problems.append(f"{where}: {requirement} does not accept the pinned {pins[name]}")
    assert not problems, "\n".join(problems)


def test_extras_that_name_the_package_name_existing_extras() -> None:
    declared = _declared()
    own = canonicalize_name(_project()["name"])
    for where, requirements in declared.items():
        for requirement in requirements:
            if canonicalize_name(requirement.name) == own:
                assert requirement.extras <= set(declared) - {"dependencies"}, where


# Imported modules whose distribution comes with a declared one (the declared one imports it).
BROUGHT_BY = {"botocore": "boto3", "py4j": "pyspark"}


def _imported_modules() -> set[str]:
    """Top-level modules that featurekiln/, dags/ and jobs/ import (lazy imports included)."""
    modules = set()
    for folder in ("featurekiln", "dags", "jobs"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    modules.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - {"featurekiln", "__future__"}


def test_the_core_and_the_extras_cover_what_the_code_imports() -> None:
    declared = {canonicalize_name(r.name) for requirements in _declared().values() for r in requirements}
    distributions = packages_distributions()
    missing = []
    for module in sorted(_imported_modules()):
        if module in BROUGHT_BY:
            assert canonicalize_name(BROUGHT_BY[module]) in declared, module
            continue
        names = {canonicalize_name(d) for d in distributions.get(module, [])}
        if not names & declared:
            missing.append(f"{module} (from {sorted(names) or 'no installed distribution'})")
    assert not missing, f"imported but declared neither as a dependency nor in an extra: {missing}"
