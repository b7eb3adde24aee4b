"""Settings shared by the CLI, the jobs and the DAG factory (pure: no heavy imports)."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

DEFAULT_DEFS = "feature_defs"
DEFAULT_WAREHOUSE = "warehouse"
DEFAULT_CHUNK_DAYS = 30


@dataclass(frozen=True)
class Settings:
    """Where definitions live, where tables go and how Spark runs.

    Attributes:
        defs_dir: directory of ``<view>.yaml`` files (env ``KILN_DEFS``).
        warehouse: warehouse root, a local path or a URI such as ``s3a://bucket/wh``
            (env ``KILN_WAREHOUSE``). Relative source paths resolve against it.
        spark_master: Spark master URL (env ``KILN_SPARK_MASTER``, default ``local[*]``).
        chunk_days: days per atomic commit of a backfill (env ``KILN_CHUNK_DAYS``).
    """

    defs_dir: Path = Path(DEFAULT_DEFS)
    warehouse: str = DEFAULT_WAREHOUSE
    spark_master: str = "local[*]"
    chunk_days: int = DEFAULT_CHUNK_DAYS

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from the ``KILN_*`` environment variables, then ``overrides`` (None is ignored)."""
        settings = cls(
            defs_dir=Path(os.environ.get("KILN_DEFS", DEFAULT_DEFS)),
            warehouse=os.environ.get("KILN_WAREHOUSE", DEFAULT_WAREHOUSE),
            spark_master=os.environ.get("KILN_SPARK_MASTER", "local[*]"),
            chunk_days=int(os.environ.get("KILN_CHUNK_DAYS", DEFAULT_CHUNK_DAYS)),
        )
        given = {k: v for k, v in overrides.items() if v is not None}
        if "defs_dir" in given:
            given["defs_dir"] = Path(str(given["defs_dir"]))
        if "warehouse" in given:
            given["warehouse"] = str(given["warehouse"])
        return replace(settings, **given)

    def resolve(self, path: str) -> str:
        """Resolve a source path from a definition: absolute paths and URIs stay as they are."""
        if "://" in path or os.path.isabs(path):
            return path
        return self.warehouse_path(path)

    def warehouse_path(self, *parts: str) -> str:
        """A path below the warehouse root (absolute for local warehouses)."""
        root = self.warehouse.rstrip("/")
        if "://" not in root:
            root = os.path.abspath(root)
        return "/".join([root, *parts])
