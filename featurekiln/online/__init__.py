"""The online store: the latest pushed snapshot of each online view, read by key.

``get_features("user_purchases", [{"user_id": 42}])`` reads; ``push_view`` (in
:mod:`featurekiln.online.push`, imported lazily because it needs Spark) writes.
Backends: SQLite (default), Redis, DynamoDB; see ``docs/online.md``.
"""

from __future__ import annotations

from featurekiln.online.config import OnlineStoreConfig, online_store_config, open_store, parse_store_url
from featurekiln.online.errors import (
    MissingClientError,
    OnlineConfigError,
    OnlineKeyError,
    StoreUnavailableError,
    ViewNotOnlineError,
)
from featurekiln.online.protocol import Column, OnlineStore, OnlineTable, ReadResult, online_table
from featurekiln.online.read import close_stores, get_features

__all__ = [
    "Column",
    "MissingClientError",
    "OnlineConfigError",
    "OnlineKeyError",
    "OnlineStore",
    "OnlineStoreConfig",
    "OnlineTable",
    "ReadResult",
    "StoreUnavailableError",
    "ViewNotOnlineError",
    "close_stores",
    "get_features",
    "online_store_config",
    "online_table",
    "open_store",
    "parse_store_url",
]
