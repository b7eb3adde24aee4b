"""Offline store: the Delta feature tables and their commit history."""
