"""What the SQL of a definition may do: compute over its own source, and nothing else.

A definition is declarative: one source, a ``filter``, a ``query`` over that
source and ``expr`` expressions over its columns. This policy refuses SQL that
reads other data or runs code on the cluster. It is an allowlist:

- A ``query`` reads one relation, the temporary view ``source`` (directly, or
  through aliases, CTEs, subqueries and self-joins). Any other table, a path
  such as ``parquet.`/any/path```, a table-valued function or a ``VALUES`` list
  is refused.
- ``filter`` and ``expr`` are expressions over the source's columns: no subquery.
- Every function called is one of Spark's built-in functions
  (:mod:`featurekiln.definitions.spark_functions`), by its plain name, and not
  one of :data:`DENIED_FUNCTIONS`. User-defined, catalog-qualified and unknown
  functions are refused, so a function this module has never heard of (a new
  Spark release, a UDF in a shared catalog) cannot slip through.
- No ``${...}`` (Spark substitutes configuration values and Java system
  properties into SQL text) and no ``TRANSFORM ... USING`` (runs a script).

Function names are the names as written: sqlglot records the position of the
name token of every ordinary call, and the calls that sqlglot parses with a
special parser (``CAST``, ``TRIM``, ``IF``, ...) are found by their token.
Pure: sqlglot only, no Spark.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlglot import exp
from sqlglot.dialects.spark import Spark
from sqlglot.tokens import Token, TokenType

from featurekiln.definitions.spark_functions import SPARK_BUILTIN_FUNCTIONS

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
_SYNTAX_CALLS = frozenset({"try_cast"})
ALLOWED_FUNCTIONS = (SPARK_BUILTIN_FUNCTIONS | _SYNTAX_CALLS) - DENIED_FUNCTIONS.keys()

# Names whose calls sqlglot parses without recording the name's position.
_PARSER = Spark.parser_class
_SPECIAL_CALLS = frozenset(_PARSER.FUNCTION_PARSERS) | frozenset(_PARSER.NO_PAREN_FUNCTION_PARSERS)
_ONLY_SOURCE = f"a query may read only `{SOURCE_VIEW}` (to use another dataset, see docs/definitions.md)"


def _call_problem(name: str) -> str | None:
    key = name.lower()
    if key in DENIED_FUNCTIONS:
        return f"{key}() {DENIED_FUNCTIONS[key]}; a definition may not call it"
    if key not in ALLOWED_FUNCTIONS:
        return f"{key}() is not a Spark built-in function; a definition may call only those (no UDFs)"
    return None


def _function_problems(tree: exp.Expression, tokens: list[Token]) -> Iterator[str]:
    at = {token.start: token for token in tokens}
    for node in tree.find_all(exp.Func):
        parent = node.parent
        if isinstance(parent, exp.Table) and parent.this is node:
            continue  # a table-valued function: reported as a relation
        if isinstance(parent, exp.Dot) and parent.expression is node:
            name = parent.sql(dialect="spark").split("(")[0]
            yield f"{name}() names a function in a catalog; call Spark built-in functions by their plain name"
            continue
        token = at.get(node.meta.get("start", -1))
        problem = _call_problem(token.text) if token is not None else None
        if problem:
            yield problem
    for before, token, after in zip([None, *tokens], tokens, [*tokens[1:], None]):
        special = token.text.upper() in _SPECIAL_CALLS and token.token_type != TokenType.IDENTIFIER
        if special and after is not None and after.token_type == TokenType.L_PAREN:
            if before is None or before.token_type != TokenType.DOT:
                problem = _call_problem(token.text)
                if problem:
                    yield problem


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


def expression_problems(tree: exp.Expression, tokens: list[Token], text: str) -> list[str]:
    """Why the parsed ``filter``/``expr`` expression ``tree`` breaks the policy (empty if it does not).

    Args:
        tree: the parsed expression.
        tokens: the Spark tokens of ``text`` that ``tree`` was parsed from.
        text: the expression as the definition gives it.
    """

    def found() -> Iterator[str]:
        yield from _text_problems(text)
        if tree.find(exp.Query, exp.Subquery, exp.Table):
            yield "may not contain a subquery: an expression uses only the source's columns"
        yield from _function_problems(tree, tokens)

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
        yield from _function_problems(tree, tokens)

    return _unique(found())
