"""Load feature definitions from YAML files, reporting every problem at once.

Each problem names the file, the line and the field, for example
``feature_defs/x.yaml:14: features[2].window: '7days' is not a whole number of days like '7d'``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from featurekiln.errors import Problem, SpecError
from featurekiln.definitions.checks import definition_problems
from featurekiln.definitions.models import Entity, Feature, FeatureView, Monitor, Source

FieldPath = tuple[str | int, ...]
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Document:
    """A parsed YAML document and the line (1-based) of every field path in it."""

    file: str
    data: object
    lines: dict[FieldPath, int]

    def line_of(self, path: FieldPath) -> int | None:
        """Line of ``path``, or of its nearest ancestor that the file contains."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None


@dataclass
class LoadResult:
    """What :func:`load_definitions` found: the valid views and every problem."""

    views: dict[str, FeatureView] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    problems_by_file: dict[str, list[Problem]] = field(default_factory=dict)

    def add(self, problems: list[Problem]) -> None:
        for problem in problems:
            self.problems.append(problem)
            self.problems_by_file.setdefault(problem.file, []).append(problem)


def format_path(path: FieldPath) -> str:
    """Render ``("features", 2, "window")`` as ``features[2].window``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def display_name(path: Path) -> str:
    """The path relative to the working directory when it is below it."""
    try:
        return os.path.relpath(path) if not os.path.relpath(path).startswith("..") else str(path)
    except ValueError:
        return str(path)


def _index_lines(node: yaml.Node, path: FieldPath, lines: dict[FieldPath, int], dupes: list[tuple[FieldPath, int]]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[object] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            child = (*path, key)
            if key in seen:
                dupes.append((child, key_node.start_mark.line + 1))
                continue
            seen.add(key)
            lines[child] = key_node.start_mark.line + 1
            _index_lines(value_node, child, lines, dupes)
            lines[child] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_lines(item, (*path, i), lines, dupes)


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's C parser when available


def read_document(text: str, file: str) -> tuple[Document | None, list[Problem]]:
    """Parse YAML ``text`` once into a :class:`Document`, or return the syntax problems."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else None
        return None, [Problem(file, line, "", f"invalid YAML: {error.problem or error}")]
    finally:
        loader.dispose()
    if node is None or not isinstance(data, dict):
        return None, [Problem(file, 1, "", "must be a YAML mapping of fields (name, entity, source, features, ...)")]
    lines: dict[FieldPath, int] = {}
    dupes: list[tuple[FieldPath, int]] = []
    _index_lines(node, (), lines, dupes)
    problems = [Problem(file, line, format_path(p), "is given twice") for p, line in dupes]
    return Document(file, data, lines), problems


_MODEL_AT: dict[str, type[BaseModel]] = {"entity": Entity, "source": Source, "features": Feature, "monitors": Monitor}


def _model_for(parent: FieldPath) -> type[BaseModel]:
    return _MODEL_AT.get(str(parent[0]), FeatureView) if parent else FeatureView


def _message(error: dict) -> str:
    kind, loc = error["type"], error["loc"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        allowed = ", ".join(_model_for(tuple(loc[:-1])).model_fields)
        return f"unknown field; allowed fields here: {allowed}"
    if kind == "string_pattern_mismatch":
        return (
            f"{error['input']!r} is not a valid name: lowercase letters, digits and '_', "
            "starting with a letter, at most 63 characters"
        )
    if kind == "too_short" and loc and loc[-1] in ("keys", "features"):
        return f"give at least one {'key column' if loc[-1] == 'keys' else 'feature'}"
    if kind.startswith(("date_", "datetime_")):
        return f"{error['input']!r} is not a date like 2025-01-01"
    message = str(error["msg"])
    if message.startswith("Value error, "):
        return message[len("Value error, ") :]
    return message[:1].lower() + message[1:]


def parse_view(document: Document) -> tuple[FeatureView | None, list[Problem]]:
    """Validate a parsed document into a :class:`FeatureView` with all its problems."""
    found: list[tuple[FieldPath, str]] = []
    view: FeatureView | None = None
    try:
        view = FeatureView.model_validate(document.data)
    except ValidationError as error:
        found += [(tuple(item["loc"]), _message(item)) for item in error.errors()]
    if isinstance(document.data, dict):
        found += list(definition_problems(document.data))
    found.sort(key=lambda item: (document.line_of(item[0]) or 0))
    problems = [Problem(document.file, document.line_of(path), format_path(path), msg) for path, msg in found]
    if view is not None and not problems:
        view.locate(document.file, {format_path(path): line for path, line in document.lines.items() if path})
    return (None if problems else view), problems


def load_file(path: Path) -> tuple[FeatureView | None, Document | None, list[Problem]]:
    """Load and check one definition file: the view (None on any problem), its document, the problems."""
    file = display_name(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return None, None, [Problem(file, None, "", f"cannot be read: {error}")]
    document, problems = read_document(text, file)
    if document is None:
        return None, None, problems
    view, more = parse_view(document)
    problems += more
    return (view if not problems else None), document, problems


def definition_files(defs_dir: Path) -> list[Path]:
    """The YAML files directly in ``defs_dir``, sorted by name."""
    return sorted(p for p in defs_dir.iterdir() if p.is_file() and p.suffix in YAML_SUFFIXES)


def load_definitions(defs_dir: str | Path) -> LoadResult:
    """Load every definition in ``defs_dir``; never raises for a bad definition.

    Returns:
        The valid views by name and every problem found (a view with a problem is
        left out; other views still load). Duplicate view names are problems of
        every file after the first.
    """
    directory = Path(defs_dir)
    result = LoadResult()
    if not directory.is_dir():
        result.add([Problem(display_name(directory), None, "", "definitions directory does not exist")])
        return result
    for path in definition_files(directory):
        view, document, problems = load_file(path)
        result.add(problems)
        if view is None or document is None:
            continue
        if view.name in result.views:
            message = f"duplicate view name {view.name!r} (also in {result.files[view.name]})"
            result.add([Problem(document.file, document.line_of(("name",)), "name", message)])
            continue
        result.views[view.name] = view
        result.files[view.name] = document.file
    return result


def load_catalog(defs_dir: str | Path) -> dict[str, FeatureView]:
    """Load every definition in ``defs_dir`` or raise one error listing every problem.

    Raises:
        SpecError: at least one definition has a problem.
    """
    result = load_definitions(defs_dir)
    if result.problems:
        raise SpecError(result.problems)
    return result.views
