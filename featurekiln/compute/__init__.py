"""Spark compute: sessions, source readers, daily tiles and windowed snapshots."""
