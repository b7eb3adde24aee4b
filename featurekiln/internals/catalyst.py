"""Spark's JVM side through py4j: featurekiln's Catalyst aggregates as Columns, and a DataFrame's analyzed plan.

pyspark has no public way to use an aggregate function written in Java over
Catalyst's classes, nor to see a frame's analyzed plan with the relations it
reads; both go through the py4j gateway of a classic session (not Spark
Connect). What each call relies on, and how to check it after an upgrade, is in
featurekiln/internals/README.md.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from py4j.java_gateway import JavaObject
    from pyspark.sql import Column, DataFrame

log = logging.getLogger(__name__)

_FILE_RELATION = "org.apache.spark.sql.execution.datasources.HadoopFsRelation"
_told: set[str] = set()


def jvm_class(name: str, *, fallback: str = ""):  # noqa: ANN201 (a py4j class)
    """The class ``name`` in the active session's JVM, or None without a session, where it is not there
    or where ``KILN_JAVA_CLASSES`` is off.

    Args:
        fallback: what runs instead when there is no class; given, that is logged at INFO once per process.
    """
    from py4j.java_gateway import JavaClass
    from pyspark.sql import SparkSession

    from featurekiln.settings import java_classes_enabled

    spark = SparkSession.getActiveSession()
    if spark is None:
        return None
    found = None
    if java_classes_enabled():
        found = spark._jvm  # noqa: SLF001 - py4j's view of the JVM's packages
        for part in name.split("."):
            found = getattr(found, part)
        found = found if isinstance(found, JavaClass) else None
    if found is None and fallback and name not in _told:
        _told.add(name)
        log.info("featurekiln's %s is not in this session's JVM: %s", name, fallback)
    return found


def jvm_aggregate(aggregate, *children: Column, constants: Sequence[object] = ()) -> Column:  # noqa: ANN001
    """featurekiln's JVM ``aggregate`` class (a Catalyst aggregate function) over ``children``, its
    constructor given ``constants`` after them."""
    from pyspark.sql import SparkSession
    from pyspark.sql.column import Column

    utils = SparkSession.getActiveSession()._jvm.org.apache.spark.sql.classic.ExpressionUtils  # noqa: SLF001
    made = aggregate(*(utils.expression(child._jc) for child in children), *constants)  # noqa: SLF001
    return Column(utils.column(made.toAggregateExpression()))


def plan_leaves(frame: DataFrame) -> Iterator[tuple[str, Any]]:
    """The leaves of ``frame``'s analyzed plan, subqueries inside expressions included: each leaf's node
    name and, for a file relation, its file index (an opaque JVM object for :func:`same_index` and
    :func:`index_files`), else None. Nothing of ``frame`` is computed."""
    jvm = frame.sparkSession.sparkContext._jvm  # noqa: SLF001 - py4j's gateway to the JVM
    file_relation = jvm.java.lang.Class.forName(_FILE_RELATION)
    pending = [frame._jdf.queryExecution().analyzed()]  # noqa: SLF001 - the Java Dataset behind the frame
    while pending:
        plan = pending.pop()
        below = _children(plan)
        pending += below
        if below:
            continue
        relation = plan.relation() if plan.nodeName() == "LogicalRelation" else None
        index = relation.location() if relation is not None and file_relation.isInstance(relation) else None
        yield plan.nodeName(), index


def same_index(index: Any, other: Any) -> bool:  # noqa: ANN401 - JVM objects
    """Whether two file indexes of :func:`plan_leaves` are the same (Java's ``equals``)."""
    return bool(index.equals(other))


def index_files(frame: DataFrame, index: Any) -> list[str]:  # noqa: ANN401 - a JVM object
    """The files (URI-encoded) of a file index of :func:`plan_leaves`."""
    jvm = frame.sparkSession.sparkContext._jvm  # noqa: SLF001 - py4j's gateway to the JVM
    # One JSON string instead of one py4j round trip per file (a source may have 100k files).
    return json.loads(jvm.com.fasterxml.jackson.databind.ObjectMapper().writeValueAsString(index.inputFiles()))


def _children(plan: JavaObject) -> list[JavaObject]:
    nodes = []
    for seq in (plan.children(), plan.subqueries()):
        nodes += [seq.apply(i) for i in range(seq.length())]
    return nodes

