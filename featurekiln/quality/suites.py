"""Expectation suites: the built-in baseline of every view and the users' suites in ``expectations/``.

A suite file is a Great Expectations 1.x suite, ``expectations/<suite>.json``::

    {"name": "user_purchases",
     "expectations": [{"type": "expect_column_values_to_be_between",
                       "kwargs": {"column": "spend_30d", "min_value": 0},
                       "meta": {"severity": "warn"}}]}

A view uses the suite its ``expectations:`` field names, else ``<view>.json``
when that file exists. An expectation blocks publishing when it fails unless
its ``meta.severity`` is ``warn``. Every problem names the file, the line and
the field, such as ``expectations[2].kwargs.column``.

Importing this module is cheap: Great Expectations (slow to import) is imported
only when a suite file is checked.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import io
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from featurekiln.errors import Problem, SpecError
from featurekiln.quality.json_document import read_json_document
from featurekiln.quality.results import Severity
from featurekiln.settings import Settings, prepare_process_environment
from featurekiln.definitions.loader import Document, FieldPath, definition_files, display_name, format_path, read_document
from featurekiln.definitions.models import FeatureView

SUITE_SUFFIX = ".json"
BASELINE = "baseline"
BASELINE_META: dict[str, Any] = {"kiln": "baseline"}
FEATURE_TS_QUERY = (
    "SELECT * FROM {batch} WHERE feature_ts IS NULL OR feature_ts <> CAST(date_add(ds, 1) AS TIMESTAMP)"
)
COUNT_AGGREGATIONS = ("count", "count_distinct")
COLUMN_KWARGS = ("column", "column_A", "column_B", "column_list", "column_set")
SUITE_FIELDS = ("name", "expectations", "meta", "notes", "id")
EXPECTATION_FIELDS = ("type", "kwargs", "meta", "severity", "description", "notes", "id", "rendered_content")
# meta.severity (ours) and Great Expectations' own top-level severity.
_META_SEVERITY: dict[str, Severity] = {"error": "error", "critical": "error", "warn": "warn", "warning": "warn"}
_GX_SEVERITY: dict[str, Severity] = {"critical": "error", "warning": "warn", "info": "warn"}
_GX_BASE_FIELDS = frozenset(
    {"id", "meta", "notes", "description", "rendered_content", "severity", "windows", "batch_id"}
)

Found = list[tuple[FieldPath, str]]


@dataclass(frozen=True)
class Expectation:
    """One expectation of a suite, as Great Expectations' ``type`` and ``kwargs``.

    Attributes:
        type: the Great Expectations type, such as ``expect_column_values_to_be_between``.
        kwargs: its arguments, as written in the suite.
        meta: its meta, as written (``{"kiln": "baseline"}`` for the baseline).
        severity: ``error`` blocks publishing when it fails; ``warn`` is only reported.
        source: ``baseline``, or the suite file's path.
        line: the line of the expectation in its file (None for the baseline).
    """

    type: str
    kwargs: dict[str, Any]
    meta: dict[str, Any]
    severity: Severity
    source: str
    line: int | None = None

    @property
    def column(self) -> str:
        """The column(s) it checks, joined by ``", "``; "" for table-level expectations."""
        if self.type.startswith("expect_table_"):
            return ""
        names = [self.kwargs[key] for key in ("column", "column_A", "column_B") if key in self.kwargs]
        listed = self.kwargs.get("column_list")
        names += list(listed) if isinstance(listed, list | tuple) else []
        return ", ".join(str(name) for name in names)


@dataclass(frozen=True)
class Suite:
    """A named list of expectations: a suite file, or the baseline (``file`` None)."""

    name: str
    file: str | None
    expectations: tuple[Expectation, ...]


@dataclass
class _ParsedSuite:
    """One suite file after reading: the expectations that are valid and every problem."""

    name: str
    file: str
    document: Document | None = None
    expectations: list[Expectation] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def suite(self) -> Suite:
        return Suite(self.name, self.file, tuple(self.expectations))


def view_columns(view: FeatureView) -> list[str]:
    """The columns of the view's feature table, in order: keys, ``ds``, ``feature_ts``, features."""
    return [*view.keys, "ds", "feature_ts", *(f.name for f in view.features)]


def _baseline(kind: str, **kwargs: Any) -> Expectation:
    return Expectation(kind, kwargs, dict(BASELINE_META), "error", BASELINE)


def baseline_suite(view: FeatureView) -> Suite:
    """The built-in checks of every view, all blocking.

    The table has exactly the definition's columns in order, ``(keys, ds)`` is
    unique, keys, ``ds`` and ``feature_ts`` are not null, ``count`` and
    ``count_distinct`` features are non-null non-negative longs, and
    ``feature_ts`` is ``ds + 1 day`` at 00:00 (the Spark session runs in UTC).
    """
    expectations = [
        _baseline("expect_table_columns_to_match_ordered_list", column_list=view_columns(view)),
        _baseline("expect_compound_columns_to_be_unique", column_list=[*view.keys, "ds"]),
        *(_baseline("expect_column_values_to_not_be_null", column=c) for c in [*view.keys, "ds", "feature_ts"]),
    ]
    for feature in view.features:
        if feature.agg in COUNT_AGGREGATIONS:
            expectations += [
                _baseline("expect_column_values_to_not_be_null", column=feature.name),
                _baseline("expect_column_values_to_be_between", column=feature.name, min_value=0),
                _baseline("expect_column_values_to_be_of_type", column=feature.name, type_="LongType"),
            ]
    expectations.append(_baseline("unexpected_rows_expectation", unexpected_rows_query=FEATURE_TS_QUERY))
    return Suite(BASELINE, None, tuple(expectations))


def suite_files(directory: Path) -> list[Path]:
    """The ``*.json`` suite files directly in ``directory``, sorted (none when it does not exist)."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix == SUITE_SUFFIX)


def _great_expectations() -> Any:
    """Import Great Expectations (slow) without its network analytics."""
    prepare_process_environment()
    import great_expectations

    return great_expectations


def _unknown_type(type_: str) -> str:
    from great_expectations.expectations.registry import list_registered_expectation_implementations

    version = _great_expectations().__version__
    close = difflib.get_close_matches(type_, list_registered_expectation_implementations(), n=1, cutoff=0.9)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown expectation type {type_!r} (Great Expectations {version}){hint}"


def _arguments(type_: str) -> list[str]:
    from great_expectations.expectations.registry import get_expectation_impl

    names = [name for name in get_expectation_impl(type_).__fields__ if name not in _GX_BASE_FIELDS]
    return sorted(names, key=lambda name: name in ("result_format", "catch_exceptions"))  # the generic ones last


def _kwargs_problems(type_: str, kwargs: dict[str, Any], errors: list[dict[str, Any]]) -> Found:
    """Turn Great Expectations' pydantic errors into one problem per argument."""
    found: Found = []
    seen: set[tuple[str, ...]] = set()
    if any(e["type"] not in ("value_error.missing", "value_error.extra") for e in errors if e["loc"] != ("__root__",)):
        # a field failed, so the root check saw it as missing: its message would mislead
        errors = [e for e in errors if e["loc"] != ("__root__",)]
    for error in errors:
        loc = tuple(str(part) for part in error["loc"])
        if loc in seen:  # a union type reports one error per alternative: keep the first
            continue
        seen.add(loc)
        if loc == ("__root__",):
            found.append((("kwargs",), str(error["msg"])))
        elif error["type"] == "value_error.missing":
            found.append((("kwargs", *loc), f"is required by {type_}"))
        elif error["type"] == "value_error.extra":
            allowed = ", ".join(_arguments(type_))
            found.append((("kwargs", *loc), f"unknown argument of {type_}; allowed: {allowed}"))
        else:
            given = f" (got {kwargs[loc[0]]!r})" if loc and loc[0] in kwargs else ""
            found.append((("kwargs", *loc), f"{error['msg']}{given}"))
    return found


def _build_problems(type_: str, kwargs: dict[str, Any], meta: dict[str, Any]) -> Found:
    """Build the expectation with Great Expectations: unknown types and bad arguments are problems."""
    _great_expectations()
    from great_expectations.exceptions import ExpectationNotFoundError, GreatExpectationsError
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    try:
        config = ExpectationConfiguration(type=type_, kwargs=copy.deepcopy(kwargs), meta=copy.deepcopy(meta))
        with contextlib.redirect_stdout(io.StringIO()):  # some expectations print warnings
            config.to_domain_obj()
    except ExpectationNotFoundError:
        return [(("type",), _unknown_type(type_))]
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        errors = getattr(error, "errors", None)
        if callable(errors):
            return _kwargs_problems(type_, kwargs, list(errors()))
        return [(("kwargs",), str(error))]
    except (GreatExpectationsError, TypeError) as error:
        return [(("kwargs",), str(error))]
    query = kwargs.get("unexpected_rows_query")
    if isinstance(query, str) and "{batch}" not in query:
        return [(("kwargs", "unexpected_rows_query"), "must select from {batch}, the validated snapshot")]
    return []


def _severity(entry: dict[str, Any], meta: dict[str, Any]) -> tuple[Severity, Found]:
    """``meta.severity`` (error/critical, warn/warning), else Great Expectations' own ``severity``."""
    if "severity" in meta:
        value = meta["severity"]
        if isinstance(value, str) and value.lower() in _META_SEVERITY:
            return _META_SEVERITY[value.lower()], []
        return "error", [(("meta", "severity"), f"{value!r} is not a severity; use error or warn")]
    if "severity" in entry:
        value = entry["severity"]
        if isinstance(value, str) and value.lower() in _GX_SEVERITY:
            return _GX_SEVERITY[value.lower()], []
        return "error", [(("severity",), f"{value!r} is not a severity; use critical, warning or info")]
    return "error", []


def _shape_problems(entry: dict[str, Any]) -> Found:
    """Problems of an expectation's fields before Great Expectations sees it."""
    found: Found = []
    for key in entry:
        if key == "expectation_type":
            found.append(((key,), "is the Great Expectations 0.x name of the field; 1.x calls it 'type'"))
        elif key not in EXPECTATION_FIELDS:
            found.append(((key,), f"unknown field; allowed fields here: {', '.join(EXPECTATION_FIELDS)}"))
    if "type" not in entry:
        found.append((("type",), "is required"))
    elif not isinstance(entry["type"], str):
        found.append((("type",), "must be a string such as 'expect_column_values_to_not_be_null'"))
    if not isinstance(entry.get("kwargs", {}), dict):
        found.append((("kwargs",), "must be an object of the expectation's arguments"))
    if not isinstance(entry.get("meta", {}), dict):
        found.append((("meta",), "must be an object"))
    return found


def _read_expectation(parsed: _ParsedSuite, document: Document, index: int, entry: object) -> None:
    """Check one entry of ``expectations``; add it to ``parsed`` or add its problems."""
    path: FieldPath = ("expectations", index)
    if not isinstance(entry, dict):
        found: Found = [((), "must be an object with type, kwargs and meta")]
    else:
        type_, kwargs, meta = entry.get("type"), entry.get("kwargs", {}), entry.get("meta", {})
        found = _shape_problems(entry)
        severity, more = _severity(entry, meta if isinstance(meta, dict) else {})
        found += more
        if isinstance(type_, str) and isinstance(kwargs, dict) and isinstance(meta, dict):
            found += _build_problems(type_, kwargs, meta)
        if not found:
            expectation = Expectation(type_, copy.deepcopy(kwargs), copy.deepcopy(meta), severity, parsed.file)
            parsed.expectations.append(replace(expectation, line=document.line_of(path)))
    for relative, message in found:
        full = (*path, *relative)
        parsed.problems.append(Problem(parsed.file, document.line_of(full), format_path(full), message))


def _suite_field_problems(data: dict[str, Any], path: Path) -> Found:
    """Problems of a suite's top-level fields (the expectations are checked one by one)."""
    allowed = ", ".join(SUITE_FIELDS)
    found: Found = [((k,), f"unknown field; allowed fields here: {allowed}") for k in data if k not in SUITE_FIELDS]
    if "name" in data and data["name"] != path.stem:
        found.append((("name",), f"{data['name']!r} differs from the file name {path.name}; views name suites by file"))
    if "expectations" not in data:
        found.append((("expectations",), "is required: a list of expectations"))
    elif not isinstance(data["expectations"], list):
        found.append((("expectations",), "must be a list"))
    return found


def _read_suite(path: Path) -> _ParsedSuite:
    """Read and check one suite file on its own (not against a view)."""
    parsed = _ParsedSuite(name=path.stem, file=display_name(path))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        parsed.problems.append(Problem(parsed.file, None, "", f"cannot be read: {error}"))
        return parsed
    parsed.document, parsed.problems = read_json_document(text, parsed.file)
    document = parsed.document
    if document is None:
        return parsed
    data = document.data
    if not isinstance(data, dict):
        message = 'must be a JSON object like {"name": ..., "expectations": [...]}'
        parsed.problems.append(Problem(parsed.file, 1, "", message))
        return parsed
    found = _suite_field_problems(data, path)
    parsed.problems += [Problem(parsed.file, document.line_of(p), format_path(p), m) for p, m in found]
    for index, entry in enumerate(data.get("expectations") if isinstance(data.get("expectations"), list) else []):
        _read_expectation(parsed, document, index, entry)
    parsed.problems.sort(key=lambda p: p.line or 0)
    return parsed


def load_suite(path: Path) -> Suite:
    """Load one suite file, checked on its own (JSON, expectation types, arguments, severities).

    Raises:
        SpecError: with every problem of the file.
    """
    parsed = _read_suite(path)
    if parsed.problems:
        raise SpecError(parsed.problems)
    return parsed.suite()


def _column_problems(view: FeatureView, parsed: _ParsedSuite) -> list[Problem]:
    """Columns named in the suite's kwargs that the view's table does not have."""
    document = parsed.document
    data = document.data if document is not None else None
    if document is None or not isinstance(data, dict) or not isinstance(data.get("expectations"), list):
        return []
    columns = view_columns(view)
    problems: list[Problem] = []
    for index, entry in enumerate(document.data["expectations"]):
        kwargs = entry.get("kwargs") if isinstance(entry, dict) else None
        if not isinstance(kwargs, dict):
            continue
        for key in COLUMN_KWARGS:
            value = kwargs.get(key)
            base: FieldPath = ("expectations", index, "kwargs", key)
            named = [(base, value)] if isinstance(value, str) else []
            named += [((*base, i), v) for i, v in enumerate(value)] if isinstance(value, list) else []
            for path, name in named:
                if isinstance(name, str) and name not in columns:
                    message = f"{name!r} is not a column of view {view.name} (columns: {', '.join(columns)})"
                    problems.append(Problem(parsed.file, document.line_of(path), format_path(path), message))
    return problems


def _definition_file(view: FeatureView, settings: Settings, files: Mapping[str, str] | None) -> str:
    """The definition file of ``view``: from ``files``, else found in the definitions directory."""
    if files and view.name in files:
        return files[view.name]
    directory = settings.defs_dir
    candidates = [directory / f"{view.name}{suffix}" for suffix in (".yaml", ".yml")]
    candidates += definition_files(directory) if directory.is_dir() else []
    for path in candidates:
        if path.is_file():
            document, _ = read_document(path.read_text(encoding="utf-8"), display_name(path))
            if document is not None and isinstance(document.data, dict) and document.data.get("name") == view.name:
                return document.file
    return display_name(directory / f"{view.name}.yaml")


def _definition_problem(
    view: FeatureView, settings: Settings, files: Mapping[str, str] | None, message: str
) -> Problem:
    """A problem at the ``expectations`` line of the view's definition file."""
    file = _definition_file(view, settings, files)
    line: int | None = None
    try:
        document, _ = read_document(Path(file).read_text(encoding="utf-8"), file)
        line = document.line_of(("expectations",)) if document is not None else None
    except (OSError, UnicodeDecodeError):
        pass
    return Problem(file, line, "expectations", message)


def _suite_path(
    view: FeatureView, settings: Settings, files: Mapping[str, str] | None
) -> tuple[Path | None, list[Problem]]:
    """The suite file the view uses (None when it uses none), or the problem with its ``expectations`` field."""
    if view.expectations is None:
        default = settings.expectations_dir / f"{view.name}{SUITE_SUFFIX}"
        return (default if default.is_file() else None), []
    name = view.expectations.strip().removesuffix(SUITE_SUFFIX)
    if not name or "/" in name or "\\" in name or name.startswith("."):
        where = settings.expectations_dir
        message = f"{view.expectations!r} is not a suite name: give the file name of a suite in {where}"
        return None, [_definition_problem(view, settings, files, message)]
    path = settings.expectations_dir / f"{name}{SUITE_SUFFIX}"
    if not path.is_file():
        message = f"suite {name!r} does not exist: there is no {display_name(path)}"
        return None, [_definition_problem(view, settings, files, message)]
    return path, []


def suite_for(view: FeatureView, settings: Settings) -> Suite | None:
    """The view's own suite, checked against the view's columns; None when it has none.

    The suite is the one the ``expectations`` field names, else
    ``<expectations_dir>/<view>.json`` when that file exists.

    Raises:
        SpecError: the named suite is missing, or the suite has problems.
    """
    path, problems = _suite_path(view, settings, None)
    if path is None:
        if problems:
            raise SpecError(problems)
        return None
    parsed = _read_suite(path)
    problems = parsed.problems + _column_problems(view, parsed)
    if problems:
        raise SpecError(problems)
    return parsed.suite()


def check_suites(
    views: Mapping[str, FeatureView], settings: Settings, files: Mapping[str, str] | None = None
) -> list[Problem]:
    """Every problem of the suites: each ``*.json`` in the expectations directory, and each view's use of one.

    Args:
        views: the valid views by name.
        settings: where the expectations directory (and the definitions) are.
        files: each view's definition file (``LoadResult.files``), for problems of
            the ``expectations`` field; found in the definitions directory when absent.

    Returns:
        Problems of suite files (JSON syntax, fields, unknown expectation types,
        arguments, severities), columns a view's suite names that the view does
        not produce, and views naming a suite that does not exist. A suite no view
        uses is checked on its own.
    """
    parsed = {path.name: _read_suite(path) for path in suite_files(settings.expectations_dir)}
    problems = [problem for suite in parsed.values() for problem in suite.problems]
    for view in views.values():
        path, missing = _suite_path(view, settings, files)
        problems += missing
        if path is not None and path.name in parsed:
            problems += _column_problems(view, parsed[path.name])
    return sorted(problems, key=lambda p: (p.file, p.line or 0))
