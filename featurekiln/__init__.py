"""featurekiln: YAML feature definitions -> Airflow DAGs -> Spark -> Delta -> online store."""

from __future__ import annotations

__version__ = "0.1.0"
