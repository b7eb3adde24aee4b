"""Feature definitions: pydantic models, checks and the YAML loader. Pure: no pyspark."""

from __future__ import annotations

from featurekiln.definitions.loader import load_catalog, load_definitions, parse_view
from featurekiln.definitions.models import AGGREGATIONS, Entity, Feature, FeatureView, Source

__all__ = [
    "AGGREGATIONS",
    "Entity",
    "Feature",
    "FeatureView",
    "Source",
    "load_catalog",
    "load_definitions",
    "parse_view",
]
