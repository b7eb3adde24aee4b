"""Where a training set goes: parquet or Delta, with a JSON record of how it was built.

The record (versions of the feature tables read, the request, the report) is the
file ``_kiln_training_set.json`` inside the output directory; Spark and Delta
readers skip names that start with ``_``. Delta output also carries the record
as the commit's ``userMetadata``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

RECORD_FILE = "_kiln_training_set.json"
OutputFormat = Literal["parquet", "delta"]


def write_output(frame: DataFrame, path: str, output_format: OutputFormat, record: dict[str, Any]) -> None:
    """Write ``frame`` to ``path`` (replacing what is there), Delta output with ``record`` as commit metadata."""
    writer = frame.write.mode("overwrite")
    if output_format == "delta":
        writer = writer.format("delta").option("overwriteSchema", "true").option(
            "userMetadata", json.dumps(record, sort_keys=True, default=str)
        )
    else:
        writer = writer.format("parquet")
    writer.save(path)


def write_record(spark: SparkSession, path: str, record: dict[str, Any]) -> str:
    """Write ``record`` as ``<path>/_kiln_training_set.json`` (any Hadoop file system); return its path."""
    target = f"{path.rstrip('/')}/{RECORD_FILE}"
    from featurekiln.internals.hadoop import write_text

    write_text(spark, target, json.dumps(record, indent=2, sort_keys=True, default=str))
    return target

