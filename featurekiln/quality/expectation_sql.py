"""What the gate's common expectations mean in Spark: each one a count of unexpected rows.

Most expectations of a chunk (the baseline's and the usual column checks of a
suite) are a count of the rows that meet a condition, and that count is all
Great Expectations needs to say whether they pass. :func:`translate` turns each
expectation it knows exactly into such a condition (a Spark column), answers
the column-list and type checks from the schema alone, and names the columns of
each compound-uniqueness check (counted by
:mod:`featurekiln.quality.repeated_rows`). :func:`results` turns the counts back
into Great Expectations' result shape.

Each condition counts rows the way the Great Expectations expectation does:
nulls are ignored by the value checks (and are what ``not_be_null`` counts),
bounds are inclusive, a column pair is compared only where both values are
present, and a value check's percentage is of its column's non-null values. An
expectation of another type, or with an argument this module does not know
(such as ``mostly``), is not translated: Great Expectations evaluates it.
``tests/quality/test_expectation_sql.py`` compares every translated case with
Great Expectations on real Spark.

The counts are named: :data:`ROWS` the rows of a chunk, ``COUNT_PREFIX + i`` the
unexpected rows of expectation ``i``, ``NONNULL_PREFIX + i`` the non-null values
of its column, and a uniqueness check's repeated rows its index ``i`` itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from featurekiln.quality.suites import Expectation

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

Result = dict[str, Any]
Counts = Mapping[str | int, int]

ROWS = "__kiln_rows"
COUNT_PREFIX, NONNULL_PREFIX = "_unexpected_", "_nonnull_"

_NUMBERS = frozenset({"ByteType", "ShortType", "IntegerType", "LongType", "FloatType", "DoubleType", "DecimalType"})


def is_number(value: object) -> bool:
    """Whether ``value`` is an int or a float (a bool is neither here)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _not_null(kwargs: Mapping[str, Any], types: Mapping[str, str]) -> Column | None:
    from pyspark.sql import functions as F

    return F.col(kwargs["column"]).isNull() if set(kwargs) == {"column"} and kwargs["column"] in types else None


def _between(kwargs: Mapping[str, Any], types: Mapping[str, str]) -> Column | None:
    from pyspark.sql import functions as F

    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    bounds = [b for b in (low, high) if b is not None]
    if set(kwargs) - {"column", "min_value", "max_value"} or not bounds or not all(map(is_number, bounds)):
        return None
    if types.get(kwargs["column"]) not in _NUMBERS:
        return None
    value = F.col(kwargs["column"])
    outside = F.lit(False)
    if low is not None:
        outside = outside | (value < F.lit(low))
    if high is not None:
        outside = outside | (value > F.lit(high))
    return value.isNotNull() & outside


def _in_set(kwargs: Mapping[str, Any], types: Mapping[str, str]) -> Column | None:
    from pyspark.sql import functions as F

    values = kwargs.get("value_set")
    if set(kwargs) != {"column", "value_set"} or not isinstance(values, list) or not values:
        return None
    kind = types.get(kwargs["column"])
    if not (kind == "StringType" and all(isinstance(v, str) for v in values)) and not (kind in _NUMBERS and all(map(is_number, values))):
        return None
    value = F.col(kwargs["column"])
    return value.isNotNull() & ~value.isin(values)


def _regex(kwargs: Mapping[str, Any], types: Mapping[str, str]) -> Column | None:
    from pyspark.sql import functions as F

    if set(kwargs) != {"column", "regex"} or types.get(kwargs["column"]) != "StringType" or not isinstance(kwargs["regex"], str):
        return None
    value = F.col(kwargs["column"])
    return value.isNotNull() & ~value.rlike(kwargs["regex"])


def _a_greater_than_b(kwargs: Mapping[str, Any], types: Mapping[str, str]) -> Column | None:
    from pyspark.sql import functions as F

    if set(kwargs) - {"column_A", "column_B", "or_equal", "ignore_row_if"} or kwargs.get("ignore_row_if") != "either_value_is_missing":
        return None
    if kwargs.get("or_equal") not in (None, True, False) or not {types.get(kwargs["column_A"]), types.get(kwargs["column_B"])} <= _NUMBERS:
        return None
    a, b = F.col(kwargs["column_A"]), F.col(kwargs["column_B"])
    smaller = a < b if kwargs.get("or_equal") else a <= b
    return a.isNotNull() & b.isNotNull() & smaller


def _unique(kwargs: Mapping[str, Any], types: Mapping[str, str]) -> list[str] | None:
    """The columns whose combinations must not repeat, or None for arguments not known here."""
    columns = kwargs.get("column_list")
    if set(kwargs) != {"column_list"} or not isinstance(columns, list) or not set(columns) <= set(types):
        return None
    return columns


_WHERE = re.compile(r"^\s*SELECT\s+\*\s+FROM\s+\{batch\}\s+WHERE\s+(?P<condition>.+?)\s*;?\s*$", re.IGNORECASE | re.DOTALL)


def _rows_query(kwargs: Mapping[str, Any]) -> Column | None:
    """``SELECT * FROM {batch} WHERE <condition>`` (the baseline's form): the condition, else None."""
    from pyspark.sql import functions as F

    query = kwargs.get("unexpected_rows_query")
    match = _WHERE.match(query) if set(kwargs) == {"unexpected_rows_query"} and isinstance(query, str) else None
    if match is None or re.search(r"\bselect\b|[{};]", match["condition"], re.IGNORECASE):
        return None
    return F.expr(match["condition"])


# Per expectation type: the condition its unexpected rows meet, or None when its
# arguments are not ones translated exactly.
CONDITIONS: dict[str, Callable[[Mapping[str, Any], Mapping[str, str]], Column | None]] = {
    "expect_column_values_to_not_be_null": _not_null,
    "expect_column_values_to_be_between": _between,
    "expect_column_values_to_be_in_set": _in_set,
    "expect_column_values_to_match_regex": _regex,
    "expect_column_pair_values_a_to_be_greater_than_b": _a_greater_than_b,
}

# Single-column expectations whose failures get their sample values here, as
# Great Expectations' ``partial_unexpected_list``; their percentage is of the
# column's non-null values, as Great Expectations gives it, except for not_null.
SAMPLED = frozenset({
    "expect_column_values_to_not_be_null", "expect_column_values_to_be_between",
    "expect_column_values_to_be_in_set", "expect_column_values_to_match_regex",
})


def column_types(frame: DataFrame) -> dict[str, str]:
    """Each column's Spark type, by name (``LongType``)."""
    return {f.name: type(f.dataType).__name__ for f in frame.schema.fields}


@dataclass(frozen=True)
class Checks:
    """The expectations of a chunk that the gate decides itself, by index.

    Attributes:
        from_schema: results that the schema alone gives (column list, column types).
        counted: the condition that each counted expectation's unexpected rows meet.
        aggregates: by name, every count a chunk's results need: each condition's
            (``COUNT_PREFIX + i``) and the non-null values of a sampled value
            check's column (``NONNULL_PREFIX + i``).
        grouped: the columns of each compound-uniqueness check.
    """

    from_schema: dict[int, Result] = field(default_factory=dict)
    counted: dict[int, Column] = field(default_factory=dict)
    aggregates: dict[str, Column] = field(default_factory=dict)
    grouped: dict[int, list[str]] = field(default_factory=dict)


def translate(frame: DataFrame, expectations: Mapping[int, Expectation]) -> Checks:
    """What of ``expectations`` (by index) the gate decides itself on chunks of ``frame``'s schema.

    An expectation in none of the returned maps is left to Great Expectations.
    """
    from pyspark.sql import functions as F

    from_schema: dict[int, Result] = {}
    counted: dict[int, Column] = {}
    aggregates: dict[str, Column] = {}
    grouped: dict[int, list[str]] = {}
    types = column_types(frame)
    for index, expectation in expectations.items():
        kwargs = expectation.kwargs
        if expectation.type == "expect_table_columns_to_match_ordered_list" and set(kwargs) == {"column_list"}:
            columns = list(frame.columns)
            from_schema[index] = {"success": columns == list(kwargs["column_list"]), "result": {"observed_value": columns}}
        elif expectation.type == "expect_column_values_to_be_of_type" and set(kwargs) == {"column", "type_"}:
            if kwargs["column"] in types:
                observed = types[kwargs["column"]]
                from_schema[index] = {"success": observed == kwargs["type_"], "result": {"observed_value": observed}}
        elif expectation.type == "expect_compound_columns_to_be_unique":
            columns = _unique(kwargs, types)
            if columns is not None:
                grouped[index] = columns
        elif expectation.type == "unexpected_rows_expectation":
            condition = _rows_query(kwargs)
            if condition is not None:
                counted[index] = condition
        elif expectation.type in CONDITIONS:
            condition = CONDITIONS[expectation.type](kwargs, types)
            if condition is not None:
                counted[index] = condition
                if expectation.type in SAMPLED - {"expect_column_values_to_not_be_null"}:
                    aggregates[f"{NONNULL_PREFIX}{index}"] = F.count(F.col(kwargs["column"]))
    aggregates.update({f"{COUNT_PREFIX}{index}": F.count_if(condition) for index, condition in counted.items()})
    return Checks(from_schema, counted, aggregates, grouped)


def _samples(frame: DataFrame, column: str, condition: Column, size: int) -> list[Any]:
    """Up to ``size`` values of ``column`` in the rows that meet ``condition`` (one small Spark job)."""
    return [row[0] for row in frame.where(condition).select(column).limit(size).collect()]


def results(
    frame: DataFrame, expectations: Mapping[int, Expectation], counted: Mapping[int, Column],
    grouped: Mapping[int, list[str]], counts: Counts, samples: int,
) -> dict[int, Result]:
    """The results, in Great Expectations' shape, of the ``counted`` and ``grouped`` checks of one chunk.

    Args:
        frame: the chunk's rows: a failed :data:`SAMPLED` check takes up to ``samples``
            of its unexpected values from them (one small Spark job each).
        counts: the chunk's counts, named as the module says (:data:`ROWS` included).
    """
    rows = counts[ROWS]
    out: dict[int, Result] = {}
    for index in [*counted, *grouped]:
        unexpected = counts[index if index in grouped else f"{COUNT_PREFIX}{index}"]
        expectation = expectations[index]
        if expectation.type == "unexpected_rows_expectation":
            out[index] = {"success": unexpected == 0, "result": {"observed_value": unexpected}}
            continue
        base = counts.get(f"{NONNULL_PREFIX}{index}", rows)
        result: Result = {"element_count": rows, "unexpected_count": unexpected,
                          "unexpected_percent": 100.0 * unexpected / base if base else None}
        if unexpected and expectation.type in SAMPLED:
            result["partial_unexpected_list"] = _samples(frame, expectation.kwargs["column"], counted[index], samples)
        out[index] = {"success": unexpected == 0, "result": result}
    return out


def label(expectation: Expectation) -> str:
    """``type(columns)``: how the gate's log lines name an expectation."""
    return f"{expectation.type}({expectation.column})" if expectation.column else expectation.type
