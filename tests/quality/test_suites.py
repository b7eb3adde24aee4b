"""Suites: the baseline, the sample suites, and every kind of broken suite with its exact message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from featurekiln.errors import SpecError
from featurekiln.quality.json_document import read_json_document
from featurekiln.quality.suites import (
    FEATURE_TS_QUERY,
    Expectation,
    baseline_suite,
    check_suites,
    load_suite,
    suite_for,
    view_columns,
)
from featurekiln.settings import Settings
from featurekiln.definitions.loader import display_name, load_catalog, load_definitions

ROOT = Path(__file__).resolve().parents[2]
BROKEN = Path(__file__).parent / "broken"
SUITES = BROKEN / "suites"
DEFS = BROKEN / "defs"
KILN = Path(sys.executable).parent / "kiln"
GX = "Great Expectations 1.24.1"
BAD_COLUMN_COLUMNS = "(columns: user_id, ds, feature_ts, purchases_7d, spend_30d)"

# suite file -> [(line, field, message)]: every problem of the file on its own, exactly.
EXPECTED: dict[str, list[tuple[int | None, str, str]]] = {
    "malformed.json": [(5, "", "invalid JSON at column 5: expecting ',' delimiter")],
    "unknown_type.json": [
        (5, "expectations[1].type", f"unknown expectation type 'expect_column_values_to_be_betwen' ({GX}); "
         "did you mean 'expect_column_values_to_be_between'?"),
        (6, "expectations[2].type", f"unknown expectation type 'expect_column_to_be_awesome' ({GX})"),
    ],
    "bad_kwargs.json": [
        (6, "expectations[0].kwargs.min_value", "value is not a valid float (got 'zero')"),
        (10, "expectations[1].kwargs.value_set", "is required by expect_column_values_to_be_in_set"),
        (10, "expectations[1].kwargs.values", "unknown argument of expect_column_values_to_be_in_set; allowed: "
         "column, mostly, row_condition, condition_parser, value_set, result_format, catch_exceptions"),
        (14, "expectations[2].kwargs.column", "is required by expect_column_values_to_not_be_null"),
    ],
    "bad_severity.json": [
        (5, "expectations[1].meta.severity", "'fatal' is not a severity; use error or warn"),
        (6, "expectations[2].severity", "'blocker' is not a severity; use critical, warning or info"),
    ],
    "unknown_column.json": [],  # fine on its own: only the view that uses it lacks the columns
}
# problems of a view's use of a suite
UNKNOWN_COLUMNS = [
    (4, "expectations[0].kwargs.column", f"'spend_7d' is not a column of view bad_column {BAD_COLUMN_COLUMNS}"),
    (5, "expectations[1].kwargs.column_list[1]", f"'day' is not a column of view bad_column {BAD_COLUMN_COLUMNS}"),
]
MISSING_SUITE = f"suite 'no_such_suite' does not exist: there is no {display_name(SUITES / 'no_such_suite.json')}"


def _triples(problems: list) -> list[tuple[int | None, str, str]]:
    return [(p.line, p.field, p.message) for p in problems]


def _settings() -> Settings:
    return Settings(defs_dir=DEFS, expectations_dir=SUITES)


def _broken_views() -> dict:
    return load_definitions(DEFS).views


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(p.name for p in SUITES.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_suite_reports_exact_problems(name: str) -> None:
    if not EXPECTED[name]:
        load_suite(SUITES / name)
        return
    with pytest.raises(SpecError) as raised:
        load_suite(SUITES / name)
    assert _triples(raised.value.items) == EXPECTED[name]
    assert all(Path(p.file) == Path(display_name(SUITES / name)) for p in raised.value.items)


def test_columns_the_view_does_not_produce() -> None:
    view = _broken_views()["bad_column"]
    with pytest.raises(SpecError) as raised:
        suite_for(view, _settings())
    assert _triples(raised.value.items) == UNKNOWN_COLUMNS
    assert str(raised.value.items[0]).startswith(f"{display_name(SUITES / 'unknown_column.json')}:4: expectations[0]")


def test_a_view_naming_a_missing_suite_points_at_its_expectations_line() -> None:
    view = _broken_views()["missing_suite"]
    with pytest.raises(SpecError) as raised:
        suite_for(view, _settings())
    [problem] = raised.value.items
    assert (problem.file, problem.line, problem.field, problem.message) == (
        display_name(DEFS / "missing_suite.yaml"), 11, "expectations", MISSING_SUITE
    )


def test_check_suites_reports_everything_at_once() -> None:
    result = load_definitions(DEFS)
    problems = check_suites(result.views, _settings(), result.files)
    by_file: dict[str, list] = {}
    for problem in problems:
        by_file.setdefault(Path(problem.file).name, []).append((problem.line, problem.field, problem.message))
    expected = {name: triples for name, triples in EXPECTED.items() if triples}
    expected["unknown_column.json"] = UNKNOWN_COLUMNS
    expected["missing_suite.yaml"] = [(11, "expectations", MISSING_SUITE)]
    assert by_file == expected


def test_kiln_validate_prints_every_problem_and_exits_1() -> None:
    command = [str(KILN), "--defs", str(DEFS), "--expectations", str(SUITES), "validate"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    definition = "bad_window.yaml:12: features[0].window: '7days' is not a whole number of days like '7d'"
    assert lines[0].endswith(definition)
    expected_count = 1 + 1 + len(UNKNOWN_COLUMNS) + sum(len(v) for v in EXPECTED.values())
    assert len(lines) == expected_count, done.stderr
    assert any(line.endswith(f"missing_suite.yaml:11: expectations: {MISSING_SUITE}") for line in lines)
    assert any("malformed.json:5: invalid JSON at column 5" in line for line in lines)


def test_kiln_validate_accepts_the_sample_suites() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KILN_")}  # make exports KILN_DEFS
    done = subprocess.run([str(KILN), "validate"], capture_output=True, text=True, cwd=ROOT, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert "3 definition(s) in feature_defs, 3 suite(s) in expectations" in done.stdout


def test_sample_suites_fit_the_sample_views() -> None:
    result = load_definitions(ROOT / "feature_defs")
    settings = Settings(defs_dir=ROOT / "feature_defs", expectations_dir=ROOT / "expectations")
    assert check_suites(result.views, settings, result.files) == []
    suites = {name: suite_for(view, settings) for name, view in result.views.items()}
    assert all(suite is not None and suite.name == name for name, suite in suites.items())
    warned = [(e.type, e.column) for s in suites.values() if s for e in s.expectations if e.severity == "warn"]
    assert warned == [("expect_column_values_to_be_between", "purchases_7d")]
    first = suites["user_purchases"].expectations[0]  # type: ignore[union-attr]
    assert (first.source, first.line) == (display_name(ROOT / "expectations" / "user_purchases.json"), 4)


def test_baseline_of_a_multi_key_view() -> None:
    view = load_catalog(ROOT / "feature_defs")["merchant_country_sales"]
    columns = ["merchant_id", "country", "ds", "feature_ts", "orders_1d", "unique_buyers_30d", "min_amount_7d",
               "first_category_30d", "spend_7d"]
    assert view_columns(view) == columns
    suite = baseline_suite(view)
    assert (suite.name, suite.file) == ("baseline", None)
    assert {(e.severity, e.source, json.dumps(e.meta)) for e in suite.expectations} == {
        ("error", "baseline", '{"kiln": "baseline"}')
    }
    counts = [
        (kind, {"column": feature, **extra})
        for feature in ("orders_1d", "unique_buyers_30d")
        for kind, extra in (
            ("expect_column_values_to_not_be_null", {}),
            ("expect_column_values_to_be_between", {"min_value": 0}),
            ("expect_column_values_to_be_of_type", {"type_": "LongType"}),
        )
    ]
    assert [(e.type, e.kwargs) for e in suite.expectations] == [
        ("expect_table_columns_to_match_ordered_list", {"column_list": columns}),
        ("expect_compound_columns_to_be_unique", {"column_list": ["merchant_id", "country", "ds"]}),
        *(("expect_column_values_to_not_be_null", {"column": c}) for c in [*view.keys, "ds", "feature_ts"]),
        *counts,
        ("unexpected_rows_expectation", {"unexpected_rows_query": FEATURE_TS_QUERY}),
    ]
    assert [e.column for e in suite.expectations[:3]] == ["", "merchant_id, country, ds", "merchant_id"]


def test_baseline_is_valid_for_great_expectations(tmp_path: Path) -> None:
    view = load_catalog(ROOT / "feature_defs")["user_clicks"]
    entries = [{"type": e.type, "kwargs": e.kwargs, "meta": e.meta} for e in baseline_suite(view).expectations]
    (tmp_path / "baseline.json").write_text(json.dumps({"name": "baseline", "expectations": entries}, indent=2))
    loaded = load_suite(tmp_path / "baseline.json")
    assert [(e.type, e.kwargs) for e in loaded.expectations] == [(e["type"], e["kwargs"]) for e in entries]


@pytest.mark.parametrize(
    ("entry", "severity"),
    [
        ({}, "error"),
        ({"meta": {"severity": "warn"}}, "warn"),
        ({"meta": {"severity": "Warning"}}, "warn"),
        ({"meta": {"severity": "critical"}}, "error"),
        ({"severity": "warning"}, "warn"),  # Great Expectations' own field
        ({"severity": "critical", "meta": {"severity": "warn"}}, "warn"),  # meta wins (GE exports write critical)
    ],
)
def test_severity(tmp_path: Path, entry: dict, severity: str) -> None:
    expectation = {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "user_id"}, **entry}
    (tmp_path / "s.json").write_text(json.dumps({"name": "s", "expectations": [expectation]}))
    [loaded] = load_suite(tmp_path / "s.json").expectations
    assert loaded.severity == severity


def test_suite_shape_problems(tmp_path: Path) -> None:
    text = """{
  "name": "other",
  "expectation": [],
  "expectations": [
    {"expectation_type": "expect_column_values_to_not_be_null", "kwargs": {"column": "user_id"}},
    "expect_column_values_to_not_be_null",
    {"type": "unexpected_rows_expectation", "kwargs": {"unexpected_rows_query": "SELECT * FROM t"}, "meta": []}
  ]
}"""
    (tmp_path / "shape.json").write_text(text)
    with pytest.raises(SpecError) as raised:
        load_suite(tmp_path / "shape.json")
    assert _triples(raised.value.items) == [
        (2, "name", "'other' differs from the file name shape.json; views name suites by file"),
        (3, "expectation", "unknown field; allowed fields here: name, expectations, meta, notes, id"),
        (5, "expectations[0].expectation_type", "is the Great Expectations 0.x name of the field; 1.x calls it 'type'"),
        (5, "expectations[0].type", "is required"),
        (6, "expectations[1]", "must be an object with type, kwargs and meta"),
        (7, "expectations[2].meta", "must be an object"),
    ]


def test_default_suite_is_the_view_name_and_none_without_one(tmp_path: Path) -> None:
    view = load_catalog(ROOT / "feature_defs")["user_clicks"]
    assert suite_for(view, Settings(expectations_dir=tmp_path)) is None
    assert suite_for(view, Settings(expectations_dir=tmp_path / "missing")) is None
    (tmp_path / "user_clicks.json").write_text('{"expectations": []}')
    assert suite_for(view, Settings(expectations_dir=tmp_path)).name == "user_clicks"  # type: ignore[union-attr]
    other = view.model_copy(update={"expectations": "shared.json"})
    (tmp_path / "shared.json").write_text('{"name": "shared", "expectations": []}')
    assert suite_for(other, Settings(expectations_dir=tmp_path)).name == "shared"  # type: ignore[union-attr]


def test_a_suite_name_cannot_leave_the_expectations_directory(tmp_path: Path) -> None:
    view = load_catalog(ROOT / "feature_defs")["user_clicks"].model_copy(update={"expectations": "../secrets"})
    problems = check_suites({"user_clicks": view}, Settings(defs_dir=ROOT / "feature_defs", expectations_dir=tmp_path))
    assert [(Path(p.file).name, p.field) for p in problems] == [("user_clicks.yaml", "expectations")]
    assert problems[0].message.startswith("'../secrets' is not a suite name")


@pytest.mark.parametrize(
    ("kwargs", "column"),
    [
        ({"column": "a"}, "a"),
        ({"column_A": "a", "column_B": "b"}, "a, b"),
        ({"column_list": ["a", "b"]}, "a, b"),
        ({}, ""),
    ],
)
def test_expectation_column(kwargs: dict, column: str) -> None:
    assert Expectation("expect_x", kwargs, {}, "error", "baseline").column == column
    assert Expectation("expect_table_columns_to_match_set", {"column_set": ["a"]}, {}, "error", "s").column == ""


def test_json_document_lines_and_duplicate_keys() -> None:
    document, problems = read_json_document('{\n "a": [\n  {"b": 1},\n  {"b": 2, "b": 3}\n ]\n}', "f.json")
    assert document is not None and document.line_of(("a", 1, "b")) == 4 and document.line_of(("a", 0)) == 3
    assert [(p.line, p.field, p.message) for p in problems] == [(4, "a[1].b", "is given twice")]


def test_no_great_expectations_import_without_suite_files(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from featurekiln.settings import Settings; "
        "from featurekiln.definitions.loader import load_definitions; from featurekiln.quality.suites import check_suites; "
        f"views = load_definitions({str(ROOT / 'feature_defs')!r}).views; "
        f"assert check_suites(views, Settings(expectations_dir=Path({str(tmp_path)!r}))) == []; "
        "print('great_expectations' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.strip() == "False"
