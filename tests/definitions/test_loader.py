"""The loader: every kind of broken definition gives one exact message with its line and field."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml

from featurekiln.errors import SpecError
from featurekiln.definitions import FeatureView, load_catalog, load_definitions
from featurekiln.definitions.loader import load_file

ROOT = Path(__file__).resolve().parents[2]
BROKEN = Path(__file__).parent / "broken"

# file -> [(line, field, message)]: every problem the loader must report, exactly.
EXPECTED: dict[str, list[tuple[int | None, str, str]]] = {
    "unknown_field.yaml": [
        (10, "colour", "unknown field; allowed fields here: name, description, owner, tags, entity, source, start, "
         "schedule, ttl, lookback, features, online, expectations, on_change, monitors"),
    ],
    "bad_name.yaml": [
        (1, "name", "'GoodView' is not a valid name: lowercase letters, digits and '_', starting with a letter, "
         "at most 63 characters"),
    ],
    "duplicate_feature.yaml": [(12, "features[1].name", "duplicate feature name 'events_7d' (also features[0])")],
    "unknown_aggregation.yaml": [
        (12, "features[1].agg", "unknown aggregation 'median'; use one of count, sum, avg, min, max, last, first, "
         "count_distinct"),
    ],
    "bad_window.yaml": [(12, "features[1].window", "'7days' is not a whole number of days like '7d'")],
    "missing_expr.yaml": [(12, "features[1].expr", "aggregation 'sum' needs an expr")],
    "no_keys.yaml": [(4, "entity.keys", "give at least one key column")],
    "no_ttl.yaml": [(1, "ttl", "is required when no feature has a window")],
    "bad_filter.yaml": [(9, "source.filter", "must be a single Spark SQL expression, not several statements")],
    "bad_expr.yaml": [(12, "features[1].expr", "not a valid Spark SQL expression: syntax error at column 8 near 'amount +'")],
    "bad_query.yaml": [(9, "source.query", "must be a SELECT statement, not DELETE")],
    "two_queries.yaml": [(9, "source.query", "must be a single SELECT statement, found 2 statements")],
    "invalid_yaml.yaml": [(5, "", "invalid YAML: did not find expected ',' or ']'")],
    "duplicate_key.yaml": [(10, "start", "is given twice")],
    "missing_timestamp.yaml": [(5, "source.timestamp", "is required")],
    "bad_format.yaml": [(7, "source.format", "input should be 'parquet', 'delta' or 'csv'")],
    "bad_start.yaml": [(9, "start", "'yesterday' is not a date like 2025-01-01")],
    "reserved_name.yaml": [(11, "features[0].name", "'ds' clashes with a key column or a reserved column (ds, feature_ts)")],
    "query_reads_path.yaml": [
        (9, "source.query", "reads parquet.`/any/path`; a query may read only `source` (to use another dataset, see "
         "docs/definitions.md)"),
    ],
    "query_joins_table.yaml": [
        (9, "source.query", "reads delta.`/warehouse/features/user_clicks`; a query may read only `source` (to use "
         "another dataset, see docs/definitions.md)"),
    ],
    "expr_reflect.yaml": [(12, "features[1].expr", "reflect() calls a Java method on the cluster; a definition may not call it")],
    "filter_java_method.yaml": [
        (9, "source.filter", "java_method() calls a Java method on the cluster; a definition may not call it"),
    ],
    "monitor_unknown_feature.yaml": [
        (15, "monitors[1].feature", "unknown feature 'spend_30d'; the view's features: events_7d, spend_7d"),
    ],
    "monitor_bad_stat.yaml": [
        (15, "monitors[1].stat", "input should be 'rows', 'null_fraction', 'mean', 'stddev', 'p50', 'p95' or 'distinct'"),
    ],
    "monitor_two_rules.yaml": [(15, "monitors[1].max", "give either max_change (with baseline) or min/max, not both")],
    "monitor_no_rule.yaml": [(15, "monitors[1]", "give max_change (with baseline, such as 28d) or min and/or max")],
    "monitor_no_baseline.yaml": [(15, "monitors[1].baseline", "is required with max_change: the days before, such as 28d")],
    "monitor_baseline_with_bounds.yaml": [
        (18, "monitors[1].baseline", "applies only to max_change (min and max are absolute bounds)"),
    ],
    "monitor_min_above_max.yaml": [(15, "monitors[1].min", "min 100 is above max 10")],
    "monitor_bad_baseline.yaml": [(15, "monitors[1].baseline", "'4 weeks' is not a whole number of days like '7d'")],
    "monitor_bad_values.yaml": [
        (15, "monitors[1].max_change", "input should be greater than or equal to 0"),
        (15, "monitors[1].severity", "input should be 'warn' or 'fail'"),
    ],
}


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(p.name for p in BROKEN.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_definition_reports_exact_problem(name: str) -> None:
    view, _, problems = load_file(BROKEN / name)
    assert view is None
    assert [(p.line, p.field, p.message) for p in problems] == EXPECTED[name]
    assert all(str(p).startswith(f"{p.file}:{p.line}") for p in problems)


def test_problem_renders_as_file_line_field_message() -> None:
    _, _, problems = load_file(BROKEN / "bad_window.yaml")
    assert str(problems[0]).endswith("bad_window.yaml:12: features[1].window: '7days' is not a whole number of days like '7d'")


def test_all_problems_of_a_file_are_reported_at_once(tmp_path: Path) -> None:
    text = (BROKEN / "bad_window.yaml").read_text().replace("name: good_view", "name: Bad-Name")
    text += "  - {name: x, agg: median}\n"
    (tmp_path / "many.yaml").write_text(text)
    _, _, problems = load_file(tmp_path / "many.yaml")
    assert [(p.line, p.field) for p in problems] == [(1, "name"), (12, "features[1].window"), (13, "features[2].agg")]


def test_broken_files_do_not_hide_good_ones(tmp_path: Path) -> None:
    for name in ("bad_window.yaml", "no_ttl.yaml"):
        shutil.copy(BROKEN / name, tmp_path / name)
    good = yaml.safe_load((BROKEN / "bad_window.yaml").read_text())
    good["features"] = good["features"][:1]
    (tmp_path / "good.yaml").write_text(yaml.safe_dump(good))
    result = load_definitions(tmp_path)
    assert list(result.views) == ["good_view"]
    assert sorted(Path(f).name for f in result.problems_by_file) == ["bad_window.yaml", "no_ttl.yaml"]
    with pytest.raises(SpecError) as raised:
        load_catalog(tmp_path)
    assert len(raised.value.problems) == 2


def test_duplicate_view_names_across_files(tmp_path: Path) -> None:
    text = (ROOT / "feature_defs" / "user_clicks.yaml").read_text()
    (tmp_path / "a.yaml").write_text(text)
    (tmp_path / "b.yaml").write_text("# a copy\n" + text)
    result = load_definitions(tmp_path)
    assert list(result.views) == ["user_clicks"]
    [problem] = result.problems
    assert (Path(problem.file).name, problem.line, problem.field) == ("b.yaml", 3, "name")
    assert problem.message.startswith("duplicate view name 'user_clicks' (also in ")


def test_missing_directory_is_a_problem(tmp_path: Path) -> None:
    result = load_definitions(tmp_path / "nope")
    assert [p.message for p in result.problems] == ["definitions directory does not exist"]


def test_sample_definitions_load_with_defaults() -> None:
    views = load_catalog(ROOT / "feature_defs")
    assert sorted(views) == ["merchant_country_sales", "user_clicks", "user_purchases"]
    purchases = views["user_purchases"]
    assert purchases.ttl_days == 90 and purchases.schedule == "@daily" and purchases.keys == ["user_id"]
    assert views["user_clicks"].window_days(views["user_clicks"].features[4]) == 14
    used = {f.agg for v in views.values() for f in v.features}
    assert used == {"count", "sum", "avg", "min", "max", "last", "first", "count_distinct"}
    assert any(len(v.keys) > 1 for v in views.values())
    assert any(v.source.filter for v in views.values()) and any(v.source.query for v in views.values())


SEMANTIC_CHANGES = [
    ("source", "path", "raw/clicks_v2"), ("source", "format", "delta"), ("source", "timestamp", "ts2"),
    ("source", "filter", "page IS NOT NULL"), ("source", "query", "SELECT * FROM source WHERE dwell_ms > 0"),
    ("entity", "keys", ["user_id", "page"]), (None, "ttl", "15d"),
    ("features", "window", "3d"), ("features", "expr", "dwell_ms * 2"), ("features", "agg", "max"),
    ("features", "name", "renamed"),
]
OTHER_CHANGES = [
    (None, "description", "other words"), (None, "owner", "someone"), (None, "tags", ["x"]),
    (None, "schedule", "@weekly"), (None, "online", True), (None, "expectations", "elsewhere"),
    (None, "lookback", "3d"), (None, "on_change", "rebuild"), ("entity", "name", "visitor"),
    ("source", "partition_by", "landed"), ("features", "description", "words"),
    (None, "monitors", [{"feature": "clicks_7d", "stat": "mean", "max_change": 0.5, "baseline": "28d"}]),
]


def _changed(raw: dict, where: str | None, field: str, value: object) -> FeatureView:
    data = copy.deepcopy(raw)
    if where is None:
        data[field] = value
    elif where == "features":
        data["features"][1][field] = value
    else:
        data[where][field] = value
    return FeatureView.model_validate(data)


@pytest.mark.parametrize(("where", "field", "value"), SEMANTIC_CHANGES)
def test_fingerprint_changes_with_every_field_that_changes_results(where: str | None, field: str, value: object) -> None:
    raw = yaml.safe_load((ROOT / "feature_defs" / "user_clicks.yaml").read_text())
    assert _changed(raw, where, field, value).fingerprint() != FeatureView.model_validate(raw).fingerprint()


@pytest.mark.parametrize(("where", "field", "value"), OTHER_CHANGES)
def test_fingerprint_ignores_fields_that_do_not_change_results(where: str | None, field: str, value: object) -> None:
    raw = yaml.safe_load((ROOT / "feature_defs" / "user_clicks.yaml").read_text())
    assert _changed(raw, where, field, value).fingerprint() == FeatureView.model_validate(raw).fingerprint()


@pytest.mark.parametrize(
    ("where", "field", "value", "changes"),
    [
        ("features", "agg", "max", True), ("features", "expr", "duration_s * 2", True),
        ("source", "filter", "duration_s > 0", True), ("source", "timestamp", "other_ts", True),
        ("entity", "keys", ["user_id", "page"], True),
        ("features", "name", "renamed", False), ("features", "window", "3d", False), (None, "ttl", "60d", False),
        ("features", "description", "words", False), ("source", "partition_by", "landed", False),
    ],
)
def test_partial_group_covers_what_a_tile_depends_on(where: str | None, field: str, value: object, changes: bool) -> None:
    raw = yaml.safe_load((ROOT / "feature_defs" / "user_clicks.yaml").read_text())
    before = FeatureView.model_validate(raw)
    after = _changed(raw, where, field, value)
    assert (after.partial_group(after.features[1]) != before.partial_group(before.features[1])) is changes


def test_monitors_load_with_their_defaults_and_lines(tmp_path: Path) -> None:
    text = (BROKEN / "monitor_unknown_feature.yaml").read_text().replace("spend_30d", "spend_7d")
    text += "  - feature: spend_7d\n    stat: null_fraction\n    max: 0.01\n    severity: fail\n"
    (tmp_path / "good_view.yaml").write_text(text)
    view, _, problems = load_file(tmp_path / "good_view.yaml")
    assert problems == [] and view is not None
    relative, same, bounded = view.monitors
    assert (relative.feature, relative.stat, relative.max_change, relative.baseline, relative.severity) == (
        "events_7d", "mean", 0.5, 28, "warn")
    assert (same.feature, same.stat) == ("spend_7d", "mean")
    assert (bounded.stat, bounded.min, bounded.max, bounded.baseline, bounded.severity) == (
        "null_fraction", None, 0.01, None, "fail")
    assert view.where("monitors[2]").endswith("good_view.yaml:16: monitors[2]")
    assert relative.rule == "|value / baseline - 1| <= 0.5 (baseline: median of the 28 days before)"
    assert bounded.rule == "null_fraction <= 0.01"


def test_json_schema_accepts_samples_and_rejects_broken() -> None:
    schema = FeatureView.model_json_schema()
    for path in sorted((ROOT / "feature_defs").glob("*.yaml")):
        data = json.loads(json.dumps(yaml.safe_load(path.read_text()), default=str))
        jsonschema.validate(data, schema)
    broken = json.loads(json.dumps(yaml.safe_load((BROKEN / "bad_window.yaml").read_text()), default=str))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
