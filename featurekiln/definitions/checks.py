"""Checks that span fields of a definition, and SQL syntax checks.

Each check yields ``(path, message)`` where ``path`` is the field path as a tuple
such as ``("features", 2, "expr")``; the loader turns it into file and line.
SQL is parsed with sqlglot's Spark dialect, so no Spark session is needed; what
the SQL may do is :mod:`featurekiln.definitions.sql_policy`.
"""

from __future__ import annotations

from collections.abc import Iterator

import sqlglot
from sqlglot import exp
from sqlglot.tokens import Token

from featurekiln.definitions.sql_policy import expression_problems, parser, query_problems, statement_keyword, tokenize

Path = tuple[str | int, ...]
RESERVED_COLUMNS = ("ds", "feature_ts")
NEEDS_EXPR = frozenset({"sum", "avg", "min", "max", "last", "first", "count_distinct"})


def _where(error: sqlglot.errors.SqlglotError) -> str:
    details = getattr(error, "errors", None) or []
    if details and details[0].get("col"):
        item = details[0]
        near = (item.get("start_context", "") + item.get("highlight", "")).strip()
        return f"syntax error at column {item['col']}" + (f" near {near!r}" if near else "")
    return "syntax error"


def _statements(text: str, what: str) -> tuple[list[exp.Expression], list[Token], str | None]:
    try:
        tokens = tokenize(text)
        parsed = parser().parse(tokens, text)
    except sqlglot.errors.SqlglotError as error:
        return [], [], f"not a valid Spark SQL {what}: {_where(error)}"
    return [s for s in parsed if s is not None], tokens, None


def sql_expression_problems(text: str, field: str = "expr") -> list[str]:
    """Why ``text`` is not a single Spark SQL expression that a definition may use in ``field`` (empty if it is)."""
    statements, tokens, problem = _statements(text, "expression")
    if problem:
        return [problem]
    if len(statements) != 1:
        return ["must be a single Spark SQL expression, not several statements"]
    try:  # what Spark's expression parser reads: no statement (SELECT, DROP, SET, ...)
        node = parser().parse_into(exp.Expr, tokens, text)[0]
    except sqlglot.errors.ParseError:
        node = None
    if node is None:
        return [f"must be a single Spark SQL expression, not a {statement_keyword(tokens)} statement"]
    return expression_problems(node, tokens, text, field)


def sql_query_problems(text: str) -> list[str]:
    """Why ``text`` is not a single Spark SQL SELECT that a definition may use (empty if it is)."""
    statements, tokens, problem = _statements(text, "query")
    if problem:
        return [problem]
    if len(statements) != 1:
        return [f"must be a single SELECT statement, found {len(statements)} statements"]
    if not isinstance(statements[0], exp.Query):
        return [f"must be a SELECT statement, not {statement_keyword(tokens)}"]
    return query_problems(statements[0], tokens, text)


def _strings(value: object) -> list[tuple[int, str]]:
    return [(i, v) for i, v in enumerate(value) if isinstance(v, str)] if isinstance(value, list) else []


def _mapping(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def definition_problems(data: dict) -> Iterator[tuple[Path, str]]:
    """Yield every cross-field and SQL problem of a raw definition mapping.

    Runs on the raw YAML data (tolerating wrong types, which the models report),
    so that these problems are reported together with the models' own.
    """
    keys = [k for _, k in _strings(_mapping(data.get("entity")).get("keys"))]
    seen_keys: set[str] = set()
    for i, key in _strings(_mapping(data.get("entity")).get("keys")):
        if not key.strip():
            yield ("entity", "keys", i), "a key column name must not be empty"
        elif key in seen_keys:
            yield ("entity", "keys", i), f"key column {key!r} is listed twice"
        elif key in RESERVED_COLUMNS:
            yield ("entity", "keys", i), f"{key!r} is reserved for the feature table"
        seen_keys.add(key)

    features = data.get("features") if isinstance(data.get("features"), list) else []
    seen: dict[str, int] = {}
    for i, feature in enumerate(features):
        feature = _mapping(feature)
        name, agg, expr = feature.get("name"), feature.get("agg"), feature.get("expr")
        if isinstance(name, str):
            if name in seen:
                yield ("features", i, "name"), f"duplicate feature name {name!r} (also features[{seen[name]}])"
            else:
                seen[name] = i
            if name in RESERVED_COLUMNS or name in keys:
                yield ("features", i, "name"), f"{name!r} clashes with a key column or a reserved column (ds, feature_ts)"
        if agg in NEEDS_EXPR and expr is None:
            yield ("features", i, "expr"), f"aggregation {agg!r} needs an expr"
        if isinstance(expr, str):
            for problem in sql_expression_problems(expr):
                yield ("features", i, "expr"), problem

    if data.get("ttl") is None and features and all(_mapping(f).get("window") is None for f in features):
        yield ("ttl",), "is required when no feature has a window"

    yield from monitor_problems(data.get("monitors"), list(seen))

    source = _mapping(data.get("source"))
    if isinstance(source.get("filter"), str):
        for problem in sql_expression_problems(source["filter"], "filter"):
            yield ("source", "filter"), problem
    if isinstance(source.get("query"), str):
        for problem in sql_query_problems(source["query"]):
            yield ("source", "query"), problem


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def monitor_problems(monitors: object, features: list[str]) -> Iterator[tuple[Path, str]]:
    """Yield the problems of the ``monitors`` list that span fields: an unknown feature, and a monitor that is
    not exactly one of ``max_change`` (with ``baseline``) or ``min``/``max`` (types are the model's)."""
    for i, monitor in enumerate(monitors if isinstance(monitors, list) else []):
        if not isinstance(monitor, dict):
            continue
        feature = monitor.get("feature")
        if isinstance(feature, str) and feature and feature not in features:
            yield ("monitors", i, "feature"), f"unknown feature {feature!r}; the view's features: {', '.join(features)}"
        relative = monitor.get("max_change") is not None
        bounds = [k for k in ("min", "max") if monitor.get(k) is not None]
        if relative and bounds:
            yield ("monitors", i, bounds[0]), "give either max_change (with baseline) or min/max, not both"
        elif not relative and not bounds:
            yield ("monitors", i), "give max_change (with baseline, such as 28d) or min and/or max"
        if relative and monitor.get("baseline") is None:
            yield ("monitors", i, "baseline"), "is required with max_change: the days before, such as 28d"
        if not relative and monitor.get("baseline") is not None:
            yield ("monitors", i, "baseline"), "applies only to max_change (min and max are absolute bounds)"
        low, high = monitor.get("min"), monitor.get("max")
        if _number(low) and _number(high) and low > high:
            yield ("monitors", i, "min"), f"min {low} is above max {high}"
