"""What the SQL of a definition may do: compute over its own source, and nothing else.

A definition is declarative: one source, a ``filter``, a ``query`` over that
source and ``expr`` expressions over its columns. This policy refuses SQL that
reads other data or runs code on the cluster. It is an allowlist:

- A ``query`` reads one relation, the temporary view ``source`` (directly, or
  through aliases, CTEs, subqueries and self-joins). Any other table, a path
  such as ``parquet.`/any/path```, a table-valued function or a ``VALUES`` list
  is refused. Inside it, all of Spark SQL's expressions are allowed: aggregates
  with ``FILTER (WHERE ...)``, ``IGNORE NULLS`` and ``WITHIN GROUP``, window
  functions, generators.
- ``filter`` and ``expr`` are row-level expressions over the source's columns:
  a ``filter`` keeps or drops each event on its own, and an ``expr`` gives one
  value per event, which the feature's ``agg`` aggregates. So they contain no
  subquery, no aggregate, window, generator or table-valued function (Spark's
  own kinds, :mod:`featurekiln.definitions.spark_functions`); any other
  expression is allowed, such as ``CASE``, casts, lambdas, ``v:a.b`` variant paths.
- Every function called is one of Spark's built-in functions
  (:mod:`featurekiln.definitions.spark_functions`), by its plain name, and not
  one of :data:`DENIED_FUNCTIONS`. User-defined, catalog-qualified and unknown
  functions are refused, so a function this module has never heard of (a new
  Spark release, a UDF in a shared catalog) cannot slip through.
- No ``${...}`` (Spark substitutes configuration values and Java system
  properties into SQL text) and no ``TRANSFORM ... USING`` (runs a script).

SQL is read with sqlglot's Spark dialect (:func:`tokenize`, :func:`parser`),
extended with Spark's ``column:path`` variant extraction. Function names are
the names as written: sqlglot records the position of the name token of every
ordinary call, and the calls that sqlglot parses with a special parser
(``CAST``, ``TRIM``, ``IF``, ...) are found by their token. Messages speak
Spark SQL, never sqlglot's class names. Pure: sqlglot only, no Spark.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from sqlglot import exp
from sqlglot.dialects.spark import Spark
from sqlglot.parser import Parser
from sqlglot.tokens import Token, TokenType

from featurekiln.definitions.spark_functions import (
    AGGREGATE_FUNCTIONS,
    GENERATOR_FUNCTIONS,
    SPARK_BUILTIN_FUNCTIONS,
    TABLE_FUNCTIONS,
    WINDOW_FUNCTIONS,
)

SOURCE_VIEW = "source"

_JVM = "calls a Java method on the cluster"
_PROTOBUF = "reads a descriptor file from a path"
_FILE_OPTION = "reads a file that its options name (avroSchemaUrl, rowValidationXSDPath)"
# Spark built-ins that a definition may not call, with the reason shown to the user.
DENIED_FUNCTIONS: dict[str, str] = {
    "reflect": _JVM,
    "java_method": _JVM,
    "try_reflect": _JVM,
    "from_protobuf": _PROTOBUF,
    "to_protobuf": _PROTOBUF,
    "from_avro": _FILE_OPTION,
    "to_avro": _FILE_OPTION,
    "schema_of_avro": _FILE_OPTION,
    "from_xml": _FILE_OPTION,
    "schema_of_xml": _FILE_OPTION,
    "python_worker_logs": "reads the logs of the Python workers",
}
# Spark syntax written like a call that SHOW SYSTEM FUNCTIONS does not list.
_SYNTAX_CALLS = frozenset({"try_cast", "timestampadd", "timestampdiff"})
ALLOWED_FUNCTIONS = (SPARK_BUILTIN_FUNCTIONS | _SYNTAX_CALLS) - DENIED_FUNCTIONS.keys()


class _SparkParser(Spark.parser_class):  # type: ignore[misc, name-defined]
    """Spark's parser in sqlglot, reading ``column:path`` as Spark 4 does (variant extraction)."""

    COLON_IS_VARIANT_EXTRACT = True


_DIALECT = Spark()
_SPECIAL_CALLS = frozenset(_SparkParser.FUNCTION_PARSERS) | frozenset(_SparkParser.NO_PAREN_FUNCTION_PARSERS)
_ONLY_SOURCE = f"a query may read only `{SOURCE_VIEW}` (to use another dataset, see docs/definitions.md)"
# Why a row-level field cannot hold a function that works over many rows, by field.
_ROW_LEVEL = {
    "expr": "an `expr` gives one value per event, which `agg` aggregates",
    "filter": "a `filter` keeps or drops each event on its own",
}


def tokenize(text: str) -> list[Token]:
    """The Spark SQL tokens of ``text``.

    Raises:
        sqlglot.errors.TokenError: ``text`` cannot be tokenized (an unclosed string, ...).
    """
    return _DIALECT.tokenize(text)


def parser() -> Parser:
    """A new sqlglot parser for Spark SQL, with Spark's ``column:path`` variant extraction."""
    return _SparkParser(dialect=_DIALECT)


def statement_keyword(tokens: list[Token]) -> str:
    """The keyword that names the statement ``tokens`` start (``SELECT``, ``DROP``, ...), as SQL writes it."""
    for token in tokens:
        if token.token_type in _SparkParser.STATEMENT_PARSERS and token.token_type != TokenType.WITH:
            return token.text.upper()
    return tokens[0].text.upper() if tokens else "empty"


def _call_problem(name: str) -> str | None:
    key = name.lower()
    if key in DENIED_FUNCTIONS:
        return f"{key}() {DENIED_FUNCTIONS[key]}; a definition may not call it"
    if key not in ALLOWED_FUNCTIONS:
        return f"{key}() is not a Spark built-in function; a definition may call only those (no UDFs)"
    return None


def _is_column_reference(node: exp.Func, name: str) -> bool:
    """``IDENTIFIER('column')``: Spark's clause that names a column by a string constant."""
    args = list(node.iter_expressions())
    return name.lower() == "identifier" and len(args) == 1 and isinstance(args[0], exp.Literal) and args[0].is_string


class _Call(NamedTuple):
    name: str  # as written; ``db.fn`` when qualified
    node: exp.Expression | None  # None for calls that sqlglot parses without a position
    qualified: bool = False


def _calls(tree: exp.Expression, tokens: list[Token]) -> Iterator[_Call]:
    """Every function ``tree`` calls, except table-valued functions in FROM and ``IDENTIFIER('column')``."""
    at = {token.start: token for token in tokens}
    for node in tree.find_all(exp.Func):
        parent = node.parent
        if isinstance(parent, exp.Table) and parent.this is node:
            continue  # a table-valued function: reported as a relation
        if isinstance(parent, exp.Dot) and parent.expression is node:
            yield _Call(parent.sql(dialect="spark").split("(")[0], node, qualified=True)
            continue
        token = at.get(node.meta.get("start", -1))
        if token is not None and not _is_column_reference(node, token.text):
            yield _Call(token.text, node)
    for before, token, after in zip([None, *tokens], tokens, [*tokens[1:], None]):
        special = token.text.upper() in _SPECIAL_CALLS and token.token_type != TokenType.IDENTIFIER
        called = after is not None and after.token_type == TokenType.L_PAREN
        if special and called and (before is None or before.token_type != TokenType.DOT):
            yield _Call(token.text, None)


def _function_problems(calls: list[_Call]) -> Iterator[str]:
    for name, _, qualified in calls:
        if qualified:
            yield f"{name}() names a function in a catalog; call Spark built-in functions by their plain name"
            continue
        problem = _call_problem(name)
        if problem:
            yield problem


def _row_level_problems(tree: exp.Expression, calls: list[_Call], field: str) -> Iterator[str]:
    """Why ``tree``, a ``filter`` or an ``expr``, is not a row-level expression (in Spark's terms)."""
    row_level = _ROW_LEVEL[field]
    # A subquery, a denied or a qualified function is refused on its own: not a row-level problem too.
    subquery = tree.find(exp.Query) is not None
    windowed = any(w.find_ancestor(exp.Query) is None for w in tree.find_all(exp.Window))
    calls = [
        call
        for call in calls
        if not call.qualified
        and call.name.lower() not in DENIED_FUNCTIONS
        and (not subquery if call.node is None else call.node.find_ancestor(exp.Query) is None)
    ]
    if windowed or WINDOW_FUNCTIONS.intersection(call.name.lower() for call in calls):
        yield f"a window function is not allowed in `{field}`: {row_level}; use it in `source.query`"
    for name, node, _ in calls:
        key = name.lower()
        over = node.find_ancestor(exp.Window) is not None if node is not None else windowed
        if key in AGGREGATE_FUNCTIONS and not over:
            yield f"an aggregate function ({key}) is not allowed in `{field}`: {row_level}; use it in `source.query`"
        elif key in GENERATOR_FUNCTIONS:
            yield f"a generator function ({key}) is not allowed in `{field}`: {row_level}, and {key}() makes rows"
        elif key in TABLE_FUNCTIONS:
            yield f"{key}() is a table-valued function: Spark allows it only in FROM, not in `{field}`"


def _text_problems(text: str) -> Iterator[str]:
    if "${" in text:
        yield "'${' is not allowed: Spark replaces '${...}' with configuration values and system properties"


def _in_scope_ctes(table: exp.Table) -> set[str]:
    names: set[str] = set()
    node: exp.Expression | None = table
    while node is not None:
        if isinstance(node, exp.Query):
            names.update(cte.alias.lower() for cte in node.ctes)
        node = node.parent
    return names


def _relation_problems(tree: exp.Expression) -> Iterator[str]:
    for table in tree.find_all(exp.Table):
        if table.find_ancestor(exp.Hint):
            continue  # a join hint names a relation of the query, it reads nothing
        if isinstance(table.this, exp.Func):
            name = table.this.sql(dialect="spark").split("(")[0].lower()
            yield f"reads the table-valued function {name}(); {_ONLY_SOURCE}"
            continue
        reference = ".".join(part.sql(dialect="spark") for part in table.parts)
        plain = isinstance(table.this, exp.Identifier) and len(table.parts) == 1
        if not plain or table.name.lower() not in {SOURCE_VIEW} | _in_scope_ctes(table):
            yield f"reads {reference}; {_ONLY_SOURCE}"
    if tree.find(exp.Values):
        yield f"reads rows from VALUES; {_ONLY_SOURCE}"
    if tree.find(exp.QueryTransform):
        yield "TRANSFORM ... USING runs a script on the cluster; a definition may not use it"


def _unique(problems: Iterator[str]) -> list[str]:
    return list(dict.fromkeys(problems))


def expression_problems(tree: exp.Expression, tokens: list[Token], text: str, field: str = "expr") -> list[str]:
    """Why the parsed ``filter``/``expr`` expression ``tree`` breaks the policy (empty if it does not).

    Args:
        tree: the parsed expression.
        tokens: the Spark tokens of ``text`` that ``tree`` was parsed from.
        text: the expression as the definition gives it.
        field: ``"expr"`` or ``"filter"``, the field the messages name.
    """

    def found() -> Iterator[str]:
        yield from _text_problems(text)
        if tree.find(exp.Query, exp.Subquery, exp.Table):
            yield "may not contain a subquery: an expression uses only the source's columns"
        calls = list(_calls(tree, tokens))
        yield from _row_level_problems(tree, calls, field)
        yield from _function_problems(calls)

    return _unique(found())


def query_problems(tree: exp.Expression, tokens: list[Token], text: str) -> list[str]:
    """Why the parsed ``source.query`` ``tree`` breaks the policy (empty if it does not).

    Args:
        tree: the parsed SELECT statement.
        tokens: the Spark tokens of ``text`` that ``tree`` was parsed from.
        text: the query as the definition gives it.
    """

    def found() -> Iterator[str]:
        yield from _text_problems(text)
        yield from _relation_problems(tree)
        yield from _function_problems(list(_calls(tree, tokens)))

    return _unique(found())
