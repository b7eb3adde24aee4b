"""featurekiln: YAML feature definitions -> Airflow DAGs -> Spark -> Delta -> online store."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["training_set"]


def __getattr__(name: str) -> Any:
    """``featurekiln.training_set`` is imported on first use: ``import featurekiln`` stays light."""
    if name == "training_set":
        from featurekiln.training import training_set

        return training_set
    raise AttributeError(f"module 'featurekiln' has no attribute {name!r}")
