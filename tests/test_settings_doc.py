"""docs/settings.md is the one settings table: checked against ``Settings`` and the online store configs (pure).

Every field of ``featurekiln.settings.Settings`` has a row with the variables
``Settings.from_env`` reads for it and its default; every backend field that
``online_store`` in ``kiln.yaml`` accepts has a row with its default; nothing
is listed that the code does not have; and every ``KILN_*`` variable named in
the docs is in the table.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from pydantic_core import PydanticUndefined

from featurekiln.online.config import SECTION
from featurekiln.online.dynamodb import DynamoDBConfig
from featurekiln.online.redis import RedisConfig
from featurekiln.online.sqlite import SqliteConfig
from featurekiln.settings import S3_COMMITS, Settings

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "settings.md"
BACKENDS = {"sqlite": SqliteConfig, "redis": RedisConfig, "dynamodb": DynamoDBConfig}


def _table(heading: str) -> list[list[str]]:
    """The rows of the first table below ``heading`` in docs/settings.md, cells stripped of backticks."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip().strip("`") for cell in line.strip("|").split("|")] for line in lines[2:]]


def _variables(cell: str) -> list[str]:
    return [name.strip().strip("`") for name in cell.split(", else ")]


def _shown(value: object) -> str:
    """A default as the table shows it."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No variable that ``Settings.from_env`` reads is set."""
    for row in _table("Environment"):
        for name in _variables(row[1]):
            monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_every_setting_is_in_the_table_and_nothing_else() -> None:
    documented = [row[0] for row in _table("Environment")]
    fields = [field.name for field in dataclasses.fields(Settings)]
    assert sorted(documented) == sorted(fields)
    assert len(documented) == len(set(documented))


def test_the_documented_defaults_are_the_code_s(clean_env: pytest.MonkeyPatch) -> None:
    settings = Settings.from_env()
    for name, _, default, _ in _table("Environment"):
        assert _shown(getattr(settings, name)) == default, name
        assert _shown(getattr(Settings(), name)) == default, name


def _sample(current: object, annotation: str = "") -> tuple[str, object]:
    """An environment value that differs from ``current`` (of a field declared ``annotation``) and the value
    ``from_env`` must make of it."""
    if current is None and annotation.startswith("int"):  # an optional number of days, unset
        return "12", 12
    if isinstance(current, bool):
        return ("false", False) if current else ("true", True)
    if isinstance(current, int):
        return str(current + 7), current + 7
    if isinstance(current, Path):
        return "elsewhere/dir", Path("elsewhere/dir")
    if current in S3_COMMITS:  # a choice: another of its values
        other = next(value for value in S3_COMMITS if value != current)
        return other, other
    return "probe-value", "probe-value"


def test_each_documented_variable_sets_its_field(clean_env: pytest.MonkeyPatch) -> None:
    for name, variables, _, _ in _table("Environment"):
        for variable in _variables(variables):
            annotation = {f.name: str(f.type) for f in dataclasses.fields(Settings)}[name]
            raw, expected = _sample(getattr(Settings.from_env(), name), annotation)
            clean_env.setenv(variable, raw)
            assert getattr(Settings.from_env(), name) == expected, f"{variable} does not set {name}"
            clean_env.delenv(variable)


def test_every_kiln_variable_named_in_the_docs_is_in_the_table() -> None:
    table = {v for row in _table("Environment") for v in _variables(row[1])}
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        named = set(re.findall(r"\bKILN_[A-Z_]*[A-Z]\b", doc.read_text(encoding="utf-8")))
        assert named <= table, f"{doc.name} names settings that do not exist: {sorted(named - table)}"


def test_kiln_yaml_fields_are_the_online_store_configs() -> None:
    assert f"holds one setting, `{SECTION}`" in DOC.read_text(encoding="utf-8")
    rows = _table("`kiln.yaml`")
    documented = {(backend, field): default for backend, field, default, _ in rows}
    assert len(documented) == len(rows)
    expected = {}
    for backend, model in BACKENDS.items():
        for field, info in model.model_fields.items():
            if field != "type":
                default = "required" if info.default is PydanticUndefined else _shown(info.default)
                expected[(backend, field)] = default
    assert documented == expected
