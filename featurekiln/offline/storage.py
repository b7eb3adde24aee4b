"""What is on storage below a path, and deleting it: Hadoop's FileSystem of a Spark session
(:mod:`featurekiln.internals.hadoop`).

Maintenance measures tables and run leftovers as files and bytes, and deletes
leftover folders, on any file system Spark reaches (a local disk, ``s3a://``):
the same ``FileSystem`` Delta writes through, so the sizes are the ones Delta
sees. A missing path is empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

LOG_FOLDER = "_delta_log"


@dataclass(frozen=True)
class Usage:
    """Files below a path: how many, their bytes, and the newest modification time (epoch seconds, 0 if none)."""

    files: int = 0
    bytes: int = 0
    newest: float = 0.0


class Storage:
    """Listing, measuring and deleting paths through Hadoop's FileSystem of a Spark session."""

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark

    def _fs(self, path: str) -> tuple[Any, Any]:
        from featurekiln.internals.hadoop import file_system

        return file_system(self.spark, path)

    def usage(self, path: str, *, data_only: bool = False) -> Usage:
        """The files below ``path``; ``data_only`` leaves out a Delta table's ``_delta_log``."""
        fs, root = self._fs(path)
        if not fs.exists(root):
            return Usage()
        files, size, newest = 0, 0, 0.0
        found = fs.listFiles(root, True)
        while found.hasNext():
            status = found.next()
            if data_only and f"/{LOG_FOLDER}/" in status.getPath().toString():
                continue
            files, size = files + 1, size + status.getLen()
            newest = max(newest, status.getModificationTime() / 1000)
        return Usage(files, size, newest)

    def sizes(self, paths: list[str]) -> int:
        """The bytes of the files ``paths`` (missing ones count 0)."""
        total = 0
        for path in paths:
            fs, file = self._fs(path)
            if fs.exists(file):
                total += fs.getFileStatus(file).getLen()
        return total

    def children(self, path: str) -> list[tuple[str, bool]]:
        """The names directly below ``path`` and whether each is a folder (none when it does not exist)."""
        fs, root = self._fs(path)
        if not fs.exists(root):
            return []
        return [(s.getPath().getName(), bool(s.isDirectory())) for s in fs.listStatus(root)]

    def names(self, path: str) -> list[str]:
        """The names of the files directly in ``path``."""
        return [name for name, folder in self.children(path) if not folder]

    def delete(self, path: str) -> None:
        """Delete ``path`` and everything below it; a missing path is fine."""
        fs, target = self._fs(path)
        fs.delete(target, True)
