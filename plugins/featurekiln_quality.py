"""The featurekiln data-quality plugin (featurekiln/orchestration/quality_plugin.py), for Airflow's plugins folder."""

from __future__ import annotations

from featurekiln.orchestration.quality_plugin import KilnQualityPlugin

__all__ = ["KilnQualityPlugin"]
