"""The Airflow Asset of each feature table, for downstream DAGs to schedule on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from featurekiln.settings import Settings

if TYPE_CHECKING:
    from airflow.sdk import Asset

ASSET_GROUP = "featurekiln"


def table_uri(view_name: str, settings: Settings) -> str:
    """Where the feature table of ``view_name`` lives, as a URI (``file://`` for local paths)."""
    path = settings.warehouse_path("features", view_name)
    return path if "://" in path else f"file://{path}"


def feature_asset(view_name: str, settings: Settings | None = None) -> Asset:
    """The Asset that the ``publish`` task of ``kiln_<view_name>`` updates.

    Schedule a downstream DAG on it with ``schedule=[feature_asset("user_purchases")]``.
    Each event's ``extra`` holds the ``start`` and ``end`` days (both included)
    the run published. The Asset's name is its URI (the table location): Airflow
    deactivates an Asset whose name is reused with another URI, so a name that
    did not include the location would break ``publish`` after the warehouse moves.
    """
    from airflow.sdk import Asset

    settings = settings or Settings.from_env()
    uri = table_uri(view_name, settings)
    return Asset(
        name=uri,
        uri=uri,
        group=ASSET_GROUP,
        extra={"view": view_name, "format": "delta", "partitioned_by": "ds"},
    )
