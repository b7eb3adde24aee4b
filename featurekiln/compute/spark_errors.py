"""An error that Spark raised, as one line: Spark's error class and message, the file and the column.

A failure inside a Spark job reaches Python as a chain of Java throwables,
wrapped in a ``py4j.protocol.Py4JJavaError`` (``An error occurred while calling
o306.save.``) or in a ``pyspark.errors.PySparkException``. The useful link is
usually deep in the chain: ``Job aborted`` wraps ``[TASK_WRITE_FAILED]``, which
wraps ``[FAILED_READ_FILE.PARQUET_COLUMN_DATA_TYPE_MISMATCH]``, which names the
file and the column. :func:`spark_problem` walks the chain and keeps the deepest
link that has a Spark error class (its message parameters give the file and the
column), and the root cause's message when that link's message says nothing
more. :meth:`SparkProblem.line` renders it without py4j object ids or Java stack
frames.

Reading the chain calls the JVM through py4j (the public ``Throwable`` and
``SparkThrowable`` methods); if the JVM is gone, the Python text of the error
is parsed instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

# Message parameters that name a file or a column, as Spark's error classes call them.
_FILE_PARAMETERS = ("path", "filePath", "file")
_COLUMN_PARAMETERS = ("column", "colName", "columnName", "fieldName", "objectName")
_CONDITION = re.compile(r"\[([A-Z][A-Z0-9_]*(?:\.[A-Z0-9_]+)*)\] ?(.*)")
_SQLSTATE = re.compile(r"\s*SQLSTATE: \w+(?:; line \d+ pos \d+)?[.;]?")
_PY4J_CALL = re.compile(r"An error occurred while calling [\w.]+\.\s*")
_JAVA_CLASS = re.compile(r"^(?:[a-z_][\w$]*\.)+[A-Z][\w$]*(?:Exception|Error):\s*")
_MAX_CAUSES = 32


@dataclass(frozen=True)
class SparkProblem:
    """What Spark said about a failure.

    Attributes:
        condition: Spark's error class (``FAILED_READ_FILE.NO_HINT``), or None if
            no link of the chain has one.
        message: the message of that link (or of the root), one line, without
            the error class, the SQLSTATE and Java class names.
        cause: the root cause's message when it adds to ``message``, else None.
        parameters: the link's message parameters (``path``, ``column``, ...).
    """

    condition: str | None
    message: str
    cause: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)

    @property
    def file(self) -> str | None:
        """The file Spark named, if it named one."""
        return next((self.parameters[k] for k in _FILE_PARAMETERS if self.parameters.get(k)), None)

    @property
    def column(self) -> str | None:
        """The column Spark named, if it named one (as Spark quotes it, e.g. ``[amount]`` or ```amount```)."""
        return next((self.parameters[k] for k in _COLUMN_PARAMETERS if self.parameters.get(k)), None)

    @property
    def text(self) -> str:
        """Spark's error class and message, its cause, and the file and the column if the message does not name them."""
        text = f"[{self.condition}] {self.message}" if self.condition else self.message
        if self.cause:
            text = f"{text.rstrip('.')}: {self.cause}"
        named = [
            f"{what} {value}"
            for what, value in (("file", self.file), ("column", self.column))
            if value and value not in text
        ]
        return text + (f" ({', '.join(named)})" if named else "")

    def line(self, view: str | None = None) -> str:
        """One line for a person: ``<view>: Spark failed: <text>``."""
        return f"{view}: Spark failed: {self.text}" if view else f"Spark failed: {self.text}"


@dataclass(frozen=True)
class _Link:
    condition: str | None
    message: str
    parameters: dict[str, str]


def _one_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").strip().splitlines() if line.strip()]
    first = lines[0] if lines else ""
    first = _SQLSTATE.sub("", _PY4J_CALL.sub("", first)).strip()
    return _JAVA_CLASS.sub("", first).strip()


def _java_links(throwable: object) -> Iterator[_Link]:
    """The links of a Java throwable's cause chain, outermost first (py4j calls into the JVM)."""
    from py4j.java_gateway import is_instance_of
    from pyspark import SparkContext

    gateway = SparkContext._gateway  # noqa: SLF001 - whether the JVM is still there
    seen = 0
    while throwable is not None and seen < _MAX_CAUSES:
        seen += 1
        condition, parameters = None, {}
        if gateway is not None and is_instance_of(gateway, throwable, "org.apache.spark.SparkThrowable"):
            condition = throwable.getCondition()  # type: ignore[attr-defined]
            parameters = {str(k): str(v) for k, v in dict(throwable.getMessageParameters() or {}).items()}  # type: ignore[attr-defined]
        message = throwable.getMessage()  # type: ignore[attr-defined]
        if message is None:
            message = throwable.getClass().getSimpleName()  # type: ignore[attr-defined]
        yield _Link(condition, _strip_condition(condition, _one_line(message)), parameters)
        throwable = throwable.getCause()  # type: ignore[attr-defined]


def _strip_condition(condition: str | None, message: str) -> str:
    found = _CONDITION.match(message)
    return found.group(2).strip() if found and (condition is None or found.group(1) == condition) else message


def _text_links(text: str) -> Iterator[_Link]:
    """Links parsed from an error's text (a Java stack trace's ``Caused by:`` lines), for when the JVM is gone."""
    body = _PY4J_CALL.sub("", text.strip(), count=1).lstrip(": \n")
    heads = body.splitlines()[:1] + [
        line.split("Caused by:", 1)[1] for line in body.splitlines() if "Caused by:" in line
    ]
    for head in heads:
        message = _one_line(head)
        found = _CONDITION.search(message)
        condition = found.group(1) if found else None
        yield _Link(condition, found.group(2).strip() if found else message, {})


def _links(error: BaseException) -> list[_Link]:
    from py4j.protocol import Py4JError, Py4JJavaError

    # pyspark keeps the Java throwable of an error it converted in ``_origin`` (pyspark 4.2.0,
    # pyspark/errors/exceptions/captured.py) and offers no public way to its causes.
    java = error.java_exception if isinstance(error, Py4JJavaError) else getattr(error, "_origin", None)
    if java is not None:
        try:
            return list(_java_links(java))
        except (Py4JError, AttributeError):
            pass  # the JVM is gone: read what the error's text says
    return list(_text_links(str(error)))


def spark_error_types() -> tuple[type[Exception], ...]:
    """The Python types of the errors Spark raises: ``PySparkException``, and the ``Py4JJavaError`` of a
    failed job that pyspark does not convert (``An error occurred while calling o306.save.``)."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    return (PySparkException, Py4JJavaError)


def is_spark_error(error: BaseException) -> bool:
    """Whether ``error`` was raised by Spark (see :func:`spark_error_types`); False if pyspark is not loaded."""
    import sys

    return "pyspark" in sys.modules and isinstance(error, spark_error_types())


def spark_problem(error: BaseException) -> SparkProblem:
    """What Spark said about ``error`` (a ``PySparkException`` or a ``Py4JJavaError``).

    The deepest link of the Java cause chain that has an error class is kept,
    with its message parameters; the root cause's message is added when that
    link's parameters name nothing but a file. Without any error class in the
    chain, the root cause's message is the message.
    """
    links = _links(error)
    if not links:
        return SparkProblem(None, _one_line(str(error)) or type(error).__name__)
    classified = [i for i, link in enumerate(links) if link.condition]
    root = links[-1]
    if not classified:
        return SparkProblem(None, root.message or links[0].message)
    chosen = links[classified[-1]]
    # The root cause is added when Spark's message names nothing but a file (FAILED_READ_FILE.NO_HINT:
    # "Encountered error while reading file ..."); otherwise the message already says what went wrong.
    says_little = set(chosen.parameters) <= set(_FILE_PARAMETERS)
    cause = root.message if says_little and root is not chosen and root.message not in chosen.message else None
    return SparkProblem(chosen.condition, chosen.message, cause, chosen.parameters)


def spark_error_line(view: str, error: BaseException) -> str:
    """One line for a Spark error raised while ``view`` ran: see :meth:`SparkProblem.line`."""
    return spark_problem(error).line(view)
