"""The SQL policy: definitions read only their source and call only Spark's built-in functions.

Pure tests (sqlglot, no Spark). Each refused text is checked through
:func:`definition_problems`, so the field that the user sees is part of the
assertion; the loader fixtures in ``broken/`` add the file and the line.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml
from sqlglot import exp

from featurekiln.definitions.checks import definition_problems
from featurekiln.definitions.loader import load_file
from featurekiln.definitions.spark_functions import (
    AGGREGATE_FUNCTIONS,
    GENERATOR_FUNCTIONS,
    TABLE_FUNCTIONS,
    WINDOW_FUNCTIONS,
)
from featurekiln.definitions.sql_policy import ALLOWED_FUNCTIONS, DENIED_FUNCTIONS
from tests.compute.test_semantics import DEFINITIONS

ROOT = Path(__file__).resolve().parents[2]
ONLY_SOURCE = "a query may read only `source` (to use another dataset, see docs/definitions.md)"
JVM = "calls a Java method on the cluster; a definition may not call it"
SUBQUERY = "may not contain a subquery: an expression uses only the source's columns"
NOT_BUILTIN = "is not a Spark built-in function; a definition may call only those (no UDFs)"
ROW_LEVEL = {
    "expr": "an `expr` gives one value per event, which `agg` aggregates",
    "filter": "a `filter` keeps or drops each event on its own",
}

BASE: dict = {
    "name": "v",
    "entity": {"name": "user", "keys": ["user_id"]},
    "source": {"path": "raw/events", "format": "parquet", "timestamp": "event_ts"},
    "start": "2025-01-01",
    "features": [{"name": "n_7d", "agg": "count", "window": "7d"}],
}


def problems_of(field: str, text: str) -> list[tuple[str, str]]:
    """The problems of BASE with ``field`` (query, filter or expr) set to ``text``, as (field path, message)."""
    data = copy.deepcopy(BASE)
    if field == "expr":
        data["features"].append({"name": "x_7d", "agg": "sum", "expr": text, "window": "7d"})
    else:
        data["source"][field] = text
    rendered = []
    for path, message in definition_problems(data):
        rendered.append((".".join(str(p) for p in path), message))
    return rendered


QUERY = "source.query"
FILTER = "source.filter"
EXPR = "features.1.expr"

REFUSED_QUERIES = {
    # the issue's examples
    "SELECT * FROM parquet.`/any/path` WHERE 1=1": [f"reads parquet.`/any/path`; {ONLY_SOURCE}"],
    "SELECT s.* FROM source s JOIN delta.`/w/features/user_clicks` c ON s.user_id = c.user_id": [
        f"reads delta.`/w/features/user_clicks`; {ONLY_SOURCE}"
    ],
    # upper case, comments, other formats
    "select * from PARQUET.`/any/path`": [f"reads PARQUET.`/any/path`; {ONLY_SOURCE}"],
    "SELECT * FROM /* source */ csv.`s3a://bucket/x` -- source\n": [f"reads csv.`s3a://bucket/x`; {ONLY_SOURCE}"],
    "SELECT * FROM json.`/p` AS source": [f"reads json.`/p`; {ONLY_SOURCE}"],
    # catalog tables, qualified names that are not the temporary view
    "SELECT * FROM source JOIN users u USING (user_id)": [f"reads users; {ONLY_SOURCE}"],
    "SELECT * FROM spark_catalog.default.source": [f"reads spark_catalog.default.source; {ONLY_SOURCE}"],
    "SELECT * FROM global_temp.source": [f"reads global_temp.source; {ONLY_SOURCE}"],
    "SELECT * FROM `/etc/passwd`": [f"reads `/etc/passwd`; {ONLY_SOURCE}"],
    "SELECT * FROM IDENTIFIER('source')": [f"reads the table-valued function identifier(); {ONLY_SOURCE}"],
    # nested subqueries, set operations, a CTE that reads a path, CTE names out of scope
    "SELECT a FROM (SELECT a FROM (SELECT * FROM parquet.`/p`) x) y": [f"reads parquet.`/p`; {ONLY_SOURCE}"],
    "SELECT * FROM source WHERE user_id IN (SELECT user_id FROM delta.`/vip`)": [f"reads delta.`/vip`; {ONLY_SOURCE}"],
    "SELECT * FROM source WHERE amount > (SELECT max(amount) FROM (SELECT * FROM orders))": [
        f"reads orders; {ONLY_SOURCE}"
    ],
    "SELECT * FROM source UNION ALL SELECT * FROM parquet.`/x`": [f"reads parquet.`/x`; {ONLY_SOURCE}"],
    "WITH other AS (SELECT * FROM parquet.`/p`) SELECT s.* FROM source s JOIN other o USING (user_id)": [
        f"reads parquet.`/p`; {ONLY_SOURCE}"
    ],
    "WITH source AS (SELECT * FROM delta.`/p`) SELECT * FROM source": [f"reads delta.`/p`; {ONLY_SOURCE}"],
    "SELECT * FROM (WITH x AS (SELECT * FROM source) SELECT 1 AS one) JOIN x": [f"reads x; {ONLY_SOURCE}"],
    "SELECT * FROM source s, LATERAL (SELECT * FROM parquet.`/p`) t": [f"reads parquet.`/p`; {ONLY_SOURCE}"],
    # table-valued functions and inline rows
    "SELECT * FROM range(10)": [f"reads the table-valued function range(); {ONLY_SOURCE}"],
    "SELECT * FROM read_files('/data')": [f"reads the table-valued function read_files(); {ONLY_SOURCE}"],
    "SELECT * FROM source CROSS JOIN explode(array(1, 2))": [
        f"reads the table-valued function explode(); {ONLY_SOURCE}"
    ],
    "SELECT * FROM source s JOIN LATERAL (SELECT * FROM range(3)) r": [
        f"reads the table-valued function range(); {ONLY_SOURCE}"
    ],
    "SELECT * FROM VALUES (1, 2) AS t(a, b)": [f"reads rows from VALUES; {ONLY_SOURCE}"],
    # functions that call the JVM, anywhere in the query: select list, window spec, named window, ORDER BY
    "SELECT reflect('java.lang.System', 'getProperty', 'user.home') AS user_id FROM source": [f"reflect() {JVM}"],
    "SELECT sum(amount) OVER (PARTITION BY REFLECT('a', 'b') ORDER BY event_ts) FROM source": [f"reflect() {JVM}"],
    "SELECT a, sum(b) OVER w FROM source WINDOW w AS (PARTITION BY Java_Method('x', 'y'))": [f"java_method() {JVM}"],
    "SELECT * FROM source ORDER BY try_reflect('a', 'b')": [f"try_reflect() {JVM}"],
    "SELECT `reflect`('a', 'b'), reflect /* c */ ('a', 'b') FROM source": [f"reflect() {JVM}"],
    "SELECT * FROM source WHERE user_id IN (SELECT user_id FROM source WHERE java_method('a', 'b') > 0)": [
        f"java_method() {JVM}"
    ],
    "SELECT * FROM source LATERAL VIEW explode(array(reflect('a', 'b'))) t AS x": [f"reflect() {JVM}"],
    "SELECT system.builtin.reflect('a', 'b') FROM source": [
        "system.builtin.reflect() names a function in a catalog; call Spark built-in functions by their plain name"
    ],
    "SELECT mydb.sum(amount) FROM source": [
        "mydb.sum() names a function in a catalog; call Spark built-in functions by their plain name"
    ],
    "SELECT IDENTIFIER('reflect')('a', 'b') FROM source": [
        "not a valid Spark SQL query: syntax error at column 32 near \"SELECT IDENTIFIER('reflect')('a'\""
    ],
    # unknown and user-defined functions, other dialects' readers, scripts and substitution
    "SELECT my_udf(amount) FROM source": [f"my_udf() {NOT_BUILTIN}"],
    "SELECT read_csv('/x'), secret('scope', 'key'), `my.fn`(a) FROM source": [
        f"read_csv() {NOT_BUILTIN}", f"secret() {NOT_BUILTIN}", f"my.fn() {NOT_BUILTIN}"
    ],
    "SELECT CONVERT(amount, int) FROM source": [f"convert() {NOT_BUILTIN}"],
    "SELECT from_protobuf(b, 'M', '/descriptors/m.desc') FROM source": [
        "from_protobuf() reads a descriptor file from a path; a definition may not call it"
    ],
    "SELECT TRANSFORM(user_id) USING 'cat' AS (x) FROM source": [
        "TRANSFORM ... USING runs a script on the cluster; a definition may not use it"
    ],
    "SELECT '${spark.hadoop.fs.s3a.secret.key}' AS user_id, event_ts FROM source": [
        "'${' is not allowed: Spark replaces '${...}' with configuration values and system properties"
    ],
    "SELECT * FROM ${other_table}": [
        "'${' is not allowed: Spark replaces '${...}' with configuration values and system properties",
        f"reads ${{other_table}}; {ONLY_SOURCE}",
    ],
}

REFUSED_EXPRESSIONS = {
    "reflect('java.lang.Thread', 'sleep', 1L)": [f"reflect() {JVM}"],
    "java_method('java.lang.System', 'getProperty', 'user.home') IS NOT NULL": [f"java_method() {JVM}"],
    "JAVA_METHOD('java.lang.System', 'getProperty', 'user.home') /* comment */ IS NOT NULL": [f"java_method() {JVM}"],
    "coalesce(amount, try_reflect('java.lang.Math', 'random'))": [f"try_reflect() {JVM}"],
    "sum(amount) OVER (PARTITION BY reflect('a', 'b'))": ["{window}", f"reflect() {JVM}"],
    "amount > (SELECT max(amount) FROM parquet.`/p`)": [SUBQUERY],
    "user_id IN (SELECT user_id FROM delta.`/vip`)": [SUBQUERY],
    "EXISTS (SELECT 1 FROM users)": [SUBQUERY],
    "my_udf(amount)": [f"my_udf() {NOT_BUILTIN}"],
    "status = '${system:user.home}'": [
        "'${' is not allowed: Spark replaces '${...}' with configuration values and system properties"
    ],
}


@pytest.mark.parametrize(("text", "messages"), sorted(REFUSED_QUERIES.items()))
def test_query_is_refused_with_the_field_named(text: str, messages: list[str]) -> None:
    assert problems_of("query", text) == [(QUERY, m) for m in messages]


@pytest.mark.parametrize(("text", "messages"), sorted(REFUSED_EXPRESSIONS.items()))
@pytest.mark.parametrize(("field", "path"), [("filter", FILTER), ("expr", EXPR)])
def test_expression_is_refused_with_the_field_named(field: str, path: str, text: str, messages: list[str]) -> None:
    window = f"a window function is not allowed in `{field}`: {ROW_LEVEL[field]}; use it in `source.query`"
    assert problems_of(field, text) == [(path, m.replace("{window}", window)) for m in messages]


ALLOWED_QUERIES = [
    "SELECT * FROM source",
    "select * from SOURCE where status <> 'refunded'",
    "SELECT * FROM `source` AS s /* the only relation */ -- trailing\n",
    "SELECT s.user_id, s.event_ts, o.amount FROM source s JOIN source o ON s.user_id = o.user_id",
    "WITH c AS (SELECT * FROM source WHERE amount > 0), d AS (SELECT * FROM c) SELECT * FROM d",
    ("WITH RECURSIVE r AS (SELECT user_id, event_ts FROM source UNION ALL SELECT user_id, event_ts FROM r) "
    "SELECT * FROM r"),
    "SELECT * FROM (SELECT * FROM (SELECT * FROM source) a) b",
    "SELECT * FROM source WHERE amount > (SELECT avg(amount) FROM source)",
    "SELECT * FROM source WHERE user_id IN (SELECT user_id FROM source WHERE amount > 100)",
    "SELECT user_id, event_ts, sum(amount) OVER (PARTITION BY user_id ORDER BY event_ts) AS running FROM source",
    "SELECT user_id, event_ts, x FROM source LATERAL VIEW OUTER explode(split(tags, ',')) t AS x",
    "SELECT /*+ BROADCAST(o) */ s.* FROM source s JOIN source o USING (user_id)",
    "SELECT user_id, event_ts, CAST(amount AS decimal(10, 2)) AS amount, try_cast(qty AS int) AS qty FROM source",
    "SELECT user_id, event_ts, CASE WHEN amount > 1 THEN 'big' ELSE 'small' END AS size FROM source",
    "SELECT * FROM source PIVOT (sum(amount) FOR status IN ('ok', 'refunded'))",
]

ALLOWED_EXPRESSIONS = [
    "amount",
    "status = 'completed' AND (amount > 0 OR refunded IS NULL)",
    "CASE WHEN amount > 1 THEN cast(amount AS int) ELSE if(qty > 0, 1, 2) END",
    "trim(page) || substring(page, 1, 2) || extract(YEAR FROM event_ts)",
    "transform(items, x -> x.price * x.qty)",
    "aggregate(items, 0D, (acc, x) -> acc + x.price)",
    "date_trunc('DAY', event_ts) + INTERVAL 1 DAY",
    "coalesce(nvl(amount, 0), 0) * 100 DIV 3",
    "`amount` / 100",
    "isnull(amount) OR bround(amount, 2) > 1",
    "get_json_object(payload, '$.a.b')",
    "xxhash64(user_id) % 10 = 0",
    "input_file_name() IS NOT NULL",
]


@pytest.mark.parametrize("text", ALLOWED_QUERIES)
def test_query_over_source_passes(text: str) -> None:
    assert problems_of("query", text) == []


@pytest.mark.parametrize("text", ALLOWED_EXPRESSIONS)
@pytest.mark.parametrize("field", ["filter", "expr"])
def test_expression_over_columns_passes(field: str, text: str) -> None:
    assert problems_of(field, text) == []


def _first_call_that_parses(name: str, field: str = "expr") -> tuple[str, list[tuple[str, str]]]:
    for args in ("a, b", "a", "", "a, b, c", "a, x -> x", "a, 0, (acc, x) -> acc + x"):
        call = f"{name}({args})"
        found = problems_of(field, f"SELECT {call} FROM source" if field == "query" else call)
        if not any(m.startswith(("not a valid", "must be a single")) for _, m in found):
            return call, found
    return f"{name}(...)", []


MANY_ROWS = AGGREGATE_FUNCTIONS | WINDOW_FUNCTIONS | GENERATOR_FUNCTIONS | TABLE_FUNCTIONS


def test_every_allowed_row_level_built_in_is_accepted_as_a_call() -> None:
    # Calls that are syntax rather than calls (CASE, CAST, BETWEEN, ...) never parse as name(args): skipped.
    refused = {}
    for name in sorted(ALLOWED_FUNCTIONS - MANY_ROWS):
        call, found = _first_call_that_parses(name)
        if found:
            refused[call] = found
    assert refused == {}


def test_every_aggregate_window_and_generator_is_accepted_in_a_query() -> None:
    refused = {}
    for name in sorted((AGGREGATE_FUNCTIONS | WINDOW_FUNCTIONS | GENERATOR_FUNCTIONS) & ALLOWED_FUNCTIONS):
        call, found = _first_call_that_parses(name, "query")
        if found:
            refused[call] = found
    assert refused == {}


@pytest.mark.parametrize("field", ["filter", "expr"])
def test_every_function_over_many_rows_is_refused_in_a_row_level_field_in_sparks_terms(field: str) -> None:
    row_level, path = ROW_LEVEL[field], {"filter": FILTER, "expr": EXPR}[field]
    expected = {
        **{n: f"an aggregate function ({n}) is not allowed in `{field}`: {row_level}; use it in `source.query`"
           for n in AGGREGATE_FUNCTIONS},
        **{n: f"a window function is not allowed in `{field}`: {row_level}; use it in `source.query`"
           for n in WINDOW_FUNCTIONS},
        **{n: f"a generator function ({n}) is not allowed in `{field}`: {row_level}, and {n}() makes rows"
           for n in GENERATOR_FUNCTIONS},
        **{n: f"{n}() is a table-valued function: Spark allows it only in FROM, not in `{field}`"
           for n in TABLE_FUNCTIONS - DENIED_FUNCTIONS.keys()},
    }
    wrong = {}
    for name, message in sorted(expected.items()):
        for args in ("a", "a, b", ""):
            found = problems_of(field, f"{name}({args})")
            if not any(m.startswith(("not a valid", "must be a single")) for _, m in found):
                break
        if found != [(path, message)]:
            wrong[name] = found
    assert wrong == {}


@pytest.mark.parametrize("name", sorted(DENIED_FUNCTIONS))
def test_every_denied_function_is_refused_however_written(name: str) -> None:
    expected = f"{name}() {DENIED_FUNCTIONS[name]}; a definition may not call it"
    for written in (name, name.upper(), f"`{name}`", f"{name} /* c */ "):
        assert problems_of("expr", f"{written}('a', 'b')") == [(EXPR, expected)]


def test_issue_examples_are_reported_with_file_line_and_field() -> None:
    broken = Path(__file__).parent / "broken"
    for name, field in [("query_reads_path", QUERY), ("query_joins_table", QUERY),
                        ("expr_reflect", "features[1].expr"), ("filter_java_method", FILTER)]:
        _, _, problems = load_file(broken / f"{name}.yaml")
        assert [p.field for p in problems] == [field.replace("features.1.expr", "features[1].expr")]
        assert str(problems[0]).startswith(f"{problems[0].file}:{problems[0].line}: {problems[0].field}: ")


def _definition_texts(data: dict) -> list[tuple[str, str]]:
    source = data.get("source", {})
    texts = [(f, source[f]) for f in ("filter", "query") if isinstance(source.get(f), str)]
    return texts + [("expr", f["expr"]) for f in data.get("features", []) if isinstance(f.get("expr"), str)]


def test_sample_views_and_test_definitions_pass() -> None:
    files = sorted((ROOT / "feature_defs").glob("*.yaml")) + sorted((ROOT / "tests" / "quality").rglob("*.yaml"))
    documents = [yaml.safe_load(path.read_text()) for path in files]
    documents += [copy.deepcopy(d) for d in DEFINITIONS.values()]
    checked = [(field, text) for data in documents for field, text in _definition_texts(data)]
    assert any(field == "query" for field, _ in checked) and any(field == "filter" for field, _ in checked)
    assert [(field, text, problems_of(field, text)) for field, text in checked] == [
        (field, text, []) for field, text in checked
    ]


# Row-level expressions as Spark's SQL reference shows them (built-in functions by group, CASE, casts,
# literals, lambdas, variant paths), written over the columns of tests/compute/test_sql_policy_in_spark.py,
# which runs every one of them through Spark.
ROW_LEVEL_EXPRESSIONS = [
    # the issue's examples
    "from_utc_timestamp(event_ts, 'America/New_York')",
    "v:device.os",
    # string
    "upper(trim(status))",
    "concat_ws('-', status, page)",
    "substring(page, 1, 3)",
    "substring(page FROM 1 FOR 2)",
    "regexp_extract(page, '^/([a-z]+)', 1)",
    "regexp_replace(page, '[0-9]+', '#')",
    "split_part(page, '/', 2)",
    "lpad(cast(qty AS string), 5, '0')",
    "length(page) > 3",
    "page LIKE '/home%'",
    "page ILIKE '/HOME%'",
    "status RLIKE '^comp'",
    "initcap(lower(status))",
    "format_string('%s-%d', status, qty)",
    "left(page, 2) || right(page, 2)",
    "trim(BOTH '/' FROM page)",
    "position('h' IN page)",
    "overlay(page PLACING 'x' FROM 2)",
    "startswith(page, '/home')",
    # date and time
    "to_utc_timestamp(event_ts, 'Europe/Paris')",
    "date_format(event_ts, 'yyyy-MM')",
    "hour(event_ts) BETWEEN 9 AND 17",
    "dayofweek(event_ts) IN (1, 7)",
    "datediff(current_date(), to_date(event_ts))",
    "date_trunc('HOUR', event_ts)",
    "event_ts + INTERVAL 2 HOURS",
    "event_ts - INTERVAL '1' DAY",
    "timestampadd(HOUR, 1, event_ts)",
    "timestampdiff(MINUTE, event_ts, current_timestamp())",
    "dateadd(HOUR, 1, event_ts)",
    "date_diff(DAY, event_ts, current_timestamp())",
    "extract(DOW FROM event_ts)",
    "date_part('week', event_ts)",
    "unix_timestamp(event_ts)",
    "make_date(year(event_ts), month(event_ts), 1)",
    "convert_timezone('UTC', 'Asia/Tokyo', event_ts)",
    "to_timestamp('2025-01-01 10:00', 'yyyy-MM-dd HH:mm')",
    "months_between(current_date(), event_ts)",
    # math
    "round(amount * 1.2, 2)",
    "log10(amount + 1)",
    "pow(qty, 2) + sqrt(abs(amount))",
    "greatest(amount, 0) - least(amount, 100)",
    "amount % 10",
    "pmod(user_id, 16)",
    "try_divide(amount, qty)",
    "qty DIV 2",
    "ceil(amount / qty)",
    "width_bucket(amount, 0, 100, 10)",
    "qty & 1 = 1",
    # conditional
    "CASE status WHEN 'completed' THEN 1 WHEN 'refunded' THEN -1 ELSE 0 END",
    "CASE WHEN amount > 100 THEN 'big' ELSE 'small' END",
    "if(qty > 0, amount / qty, NULL)",
    "coalesce(amount, 0D)",
    "nvl2(amount, 1, 0)",
    "nullif(qty, 0)",
    "amount IS NOT NULL AND status IS DISTINCT FROM 'refunded'",
    "amount <=> NULL",
    "NOT (status = 'refunded')",
    # cast
    "CAST(qty AS DECIMAL(10, 2))",
    "try_cast(page AS INT)",
    "qty::double",
    "cast(event_ts AS date)",
    "cast(payload AS variant)",
    # json and variant
    "parse_json(payload):device.os",
    "v:device.os::string = 'ios'",
    "v:['device']['os']",
    "variant_get(parse_json(payload), '$.device.os', 'string')",
    "try_variant_get(v, '$.device.os', 'int')",
    "is_variant_null(v:missing)",
    "get_json_object(payload, '$.device.os')",
    "from_json(payload, 'device STRUCT<os: STRING>').device.os",
    "json_array_length(get_json_object(payload, '$.n'))",
    "to_json(named_struct('amount', amount, 'qty', qty))",
    # array, map, struct, lambdas
    "size(items)",
    "array_contains(split(tags, ','), 'sale')",
    "transform(items, x -> x.price * x.qty)",
    "aggregate(items, 0D, (acc, x) -> acc + x.price)",
    "filter(items, x -> x.qty > 1)",
    "exists(items, x -> x.price > 10)",
    "element_at(attrs, 'country')",
    "attrs['country']",
    "map_keys(attrs)",
    "array_sort(array_distinct(split(tags, ',')))",
    "items[0].price",
    "struct(amount, qty).amount",
    # hash and misc
    "xxhash64(user_id) % 100",
    "sha2(cast(user_id AS string), 256)",
    "typeof(amount)",
    "IDENTIFIER('amount') + 1",
]

# Aggregate and window clauses where Spark allows them: in a query.
AGGREGATE_QUERIES = [
    "SELECT user_id, max(event_ts) AS event_ts, first(amount) IGNORE NULLS AS amount FROM source GROUP BY user_id",
    ("SELECT user_id, max(event_ts) AS event_ts, sum(amount) FILTER (WHERE status = 'completed') AS amount "
    "FROM source GROUP BY user_id"),
    ("SELECT user_id, max(event_ts) AS event_ts, percentile_cont(0.5) WITHIN GROUP (ORDER BY amount) AS amount "
    "FROM source GROUP BY user_id"),
    ("SELECT user_id, max(event_ts) AS event_ts, last(amount, true) AS amount, count(DISTINCT page) AS pages "
    "FROM source GROUP BY user_id"),
    ("SELECT user_id, max(event_ts) AS event_ts, collect_set(page) AS pages, max_by(amount, event_ts) AS amount, "
    "any_value(status) AS status FROM source GROUP BY ALL"),
    ("SELECT user_id, max(event_ts) AS event_ts, mode() WITHIN GROUP (ORDER BY status) AS status "
    "FROM source GROUP BY user_id"),
    ("SELECT user_id, max(event_ts) AS event_ts, listagg(page, ',') WITHIN GROUP (ORDER BY page) AS pages "
    "FROM source GROUP BY user_id"),
    ("SELECT user_id, max(event_ts) AS event_ts, string_agg(DISTINCT page, ',') AS pages FROM source "
    "GROUP BY user_id HAVING count(*) > 0"),
    ("SELECT user_id, max(event_ts) AS event_ts, count_if(qty > 1) AS n, bool_or(amount > 10) AS big "
    "FROM source GROUP BY user_id"),
    "SELECT user_id, event_ts, lag(amount) OVER (PARTITION BY user_id ORDER BY event_ts) AS previous FROM source",
    ("SELECT user_id, event_ts, nth_value(amount, 2) IGNORE NULLS OVER (PARTITION BY user_id ORDER BY event_ts) "
    "AS second FROM source"),
    ("SELECT user_id, event_ts, first_value(amount) IGNORE NULLS OVER (PARTITION BY user_id ORDER BY event_ts) "
    "AS first FROM source"),
    ("SELECT user_id, event_ts, sum(amount) OVER (PARTITION BY user_id ORDER BY event_ts "
    "ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS s FROM source"),
    ("SELECT user_id, event_ts, count(*) OVER (PARTITION BY user_id ORDER BY event_ts "
    "RANGE BETWEEN INTERVAL 7 DAYS PRECEDING AND CURRENT ROW) AS n FROM source"),
    "SELECT user_id, event_ts, sum(amount) FILTER (WHERE qty > 1) OVER (PARTITION BY user_id) AS s FROM source",
    "SELECT user_id, event_ts, avg(amount) OVER w AS a FROM source WINDOW w AS (PARTITION BY user_id ORDER BY event_ts)",
    "SELECT user_id, event_ts, v:device.os::string AS os, explode(items) AS item FROM source",
    "SELECT * FROM source QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY event_ts DESC) = 1",
]


@pytest.mark.parametrize("text", ROW_LEVEL_EXPRESSIONS)
@pytest.mark.parametrize("field", ["filter", "expr"])
def test_row_level_spark_sql_is_accepted(field: str, text: str) -> None:
    assert problems_of(field, text) == []


@pytest.mark.parametrize("text", AGGREGATE_QUERIES)
def test_aggregate_and_window_clauses_are_accepted_in_a_query(text: str) -> None:
    assert problems_of("query", text) == []


def test_the_lists_cover_what_the_issue_asks() -> None:
    assert len(ROW_LEVEL_EXPRESSIONS) >= 30 and len(set(ROW_LEVEL_EXPRESSIONS)) == len(ROW_LEVEL_EXPRESSIONS)
    queries = " ".join(AGGREGATE_QUERIES)
    assert all(clause in queries for clause in ("IGNORE NULLS", "FILTER (WHERE", "WITHIN GROUP", "OVER"))


@pytest.mark.parametrize("field", ["filter", "expr"])
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sum(amount) OVER (PARTITION BY user_id)", ("a window function is not allowed in `{field}`: {row_level}; "
         "use it in `source.query`")),
        ("row_number()", "a window function is not allowed in `{field}`: {row_level}; use it in `source.query`"),
        ("first(amount) IGNORE NULLS", ("an aggregate function (first) is not allowed in `{field}`: {row_level}; "
         "use it in `source.query`")),
        ("sum(amount) FILTER (WHERE qty > 1) > 0", ("an aggregate function (sum) is not allowed in `{field}`: "
         "{row_level}; use it in `source.query`")),
        ("percentile_cont(0.5) WITHIN GROUP (ORDER BY amount)", ("an aggregate function (percentile_cont) is not "
         "allowed in `{field}`: {row_level}; use it in `source.query`")),
        ("explode(items)", ("a generator function (explode) is not allowed in `{field}`: {row_level}, and explode() "
         "makes rows")),
        ("range(3)", "range() is a table-valued function: Spark allows it only in FROM, not in `{field}`"),
        ("SELECT amount FROM source", "must be a single Spark SQL expression, not a SELECT statement"),
        ("DROP TABLE users", "must be a single Spark SQL expression, not a DROP statement"),
        ("SET spark.sql.ansi.enabled = false", "must be a single Spark SQL expression, not a SET statement"),
    ],
)
def test_row_level_refusals_speak_spark_sql(field: str, text: str, message: str) -> None:
    expected = message.format(field=field, row_level=ROW_LEVEL[field])
    assert problems_of(field, text) == [({"filter": FILTER, "expr": EXPR}[field], expected)]


def _sqlglot_class_names() -> set[str]:
    found, todo = set(), [exp.Expression]
    while todo:
        cls = todo.pop()
        found.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return {name for name in found if len(name) > 2 and name != name.upper() and name != name.capitalize()}


def test_no_message_names_a_sqlglot_class() -> None:
    texts = [(f, t) for f in ("filter", "expr") for t in [*REFUSED_EXPRESSIONS, "first(a) IGNORE NULLS", "x AT TIME",
                                                         "v:a.b OVER ()", "a; b", "SHOW TABLES", "INSERT INTO t VALUES 1"]]
    texts += [("query", t) for t in [*REFUSED_QUERIES, "SHOW TABLES", "DESCRIBE source", "CACHE TABLE source"]]
    classes = _sqlglot_class_names()
    messages = [m for field, text in texts for _, m in problems_of(field, text)]
    assert messages and not [(m, c) for m in messages for c in classes if re.search(rf"\b{c}\b", m)]
