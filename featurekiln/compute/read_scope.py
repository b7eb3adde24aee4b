"""The runtime guard: a view's source DataFrame reads only files under its ``source.path``.

The static SQL policy (:mod:`featurekiln.definitions.sql_policy`) refuses
definitions that name other data; this guard checks what Spark actually
resolved, before anything is computed. It walks the analyzed plan, including
the plans of subqueries inside expressions (which ``DataFrame.inputFiles()``
leaves out), and requires every leaf to be either

- a file relation (parquet, csv, delta, ...) whose every file lies under the
  root, or
- a leaf that holds no data: the one empty row of ``SELECT 1``, or a
  reference to a CTE whose plan is walked where it is defined.

Anything else is refused: a catalog table that is no file relation, a JDBC
relation, rows that the driver holds (a temporary view over local data,
``VALUES``), ``range()``. Spark reads parquet and csv as file relations unless
``spark.sql.sources.useV1SourceList`` says otherwise; with V2 file sources
every read is refused, loudly. Paths compare as URIs: ``/w/raw``, ``file:/w/raw`` and ``file:///w/raw``
are the same place, ``s3a://bucket/raw`` keeps its scheme and bucket. A root
with glob characters (``raw/2025-*``) covers what lies under the part before
the first globbed directory. The walk talks to the JVM through py4j
(:func:`featurekiln.internals.catalyst.plan_leaves`), so it needs a classic Spark
session (what :func:`featurekiln.compute.session.get_spark` makes), not Spark Connect.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from featurekiln.errors import SourceError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

NO_DATA_LEAVES = frozenset({"OneRowRelation", "CTERelationRef"})
_GLOB = frozenset("*?[{")


def normalise_location(location: str, *, encoded: bool) -> str:
    """``location`` as ``scheme://authority/path`` with a normalised path and no trailing ``/``.

    Args:
        location: a local path or a URI (``file:/x``, ``file:///x``, ``s3a://bucket/x``).
        encoded: True for URIs that Spark reports (percent-encoded, like
            ``file:/a%20b``), False for paths as a definition or the settings give them.
    """
    parts = urlsplit(location)
    if len(parts.scheme) <= 1:  # no scheme (or a Windows drive letter): a local path
        scheme, authority, path = "file", "", location
    else:
        scheme, authority, path = parts.scheme.lower(), parts.netloc, parts.path
        if scheme == "file" and authority == "localhost":
            authority = ""
        if encoded:
            path = unquote(path)
    path = posixpath.normpath(path or "/")
    if path.startswith("//"):  # normpath keeps a leading '//'
        path = "/" + path.lstrip("/")
    return f"{scheme}://{authority}{path.rstrip('/') or '/'}"


def scope_root(path: str) -> str:
    """The normalised location that every file of a source given as ``path`` must lie under."""
    root = normalise_location(path, encoded=False)
    scheme_end = root.index("://") + 3
    head, _, tail = root[scheme_end:].partition("/")
    kept = []
    for part in tail.split("/"):
        if _GLOB & set(part):
            break
        kept.append(part)
    return root[:scheme_end] + head + "/" + "/".join(kept)


def is_within(file: str, root: str) -> bool:
    """Whether the normalised ``file`` is ``root`` itself or lies below it."""
    return file == root or file.startswith(root.rstrip("/") + "/")


class ReadScope:
    """What a view's source may read: the files under one root.

    Remembers the file relations it has already checked, so checking the
    source frame and then frames built on it lists the source's files once.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.root = scope_root(path)
        self._checked: list[Any] = []  # file indexes of internals.catalyst.plan_leaves

    def outside(self, frame: DataFrame) -> str | None:
        """What ``frame`` reads outside the root, in words (a file URI or a relation), or None if nothing."""
        from featurekiln.internals.catalyst import index_files, plan_leaves, same_index

        for node, index in plan_leaves(frame):
            if node in NO_DATA_LEAVES:
                continue
            if index is None:
                return f"a {node} relation, not files under source.path {self.path!r}"
            if any(same_index(index, seen) for seen in self._checked):
                continue
            for file in index_files(frame, index):
                if not is_within(normalise_location(file, encoded=True), self.root):
                    return f"{file!r}, outside source.path {self.path!r}"
            self._checked.append(index)
        return None

    def require(self, frame: DataFrame, what: str) -> None:
        """Raise unless ``frame`` reads only files under the root.

        Args:
            frame: the DataFrame to check; nothing of it is computed.
            what: who is reading, for the message, such as ``"user_clicks: source.query"``.

        Raises:
            SourceError: ``frame`` reads a file outside the root, or a relation that is no file source.
        """
        found = self.outside(frame)
        if found is not None:
            raise SourceError(
                f"{what}: reads {found}; a definition reads only its own source "
                "(to use another dataset, see docs/definitions.md)"
            )
