"""Keys as people type them: ``col=value`` pairs on a command line, or a file of many keys."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from featurekiln.online.errors import OnlineKeyError


def parse_key_pairs(pairs: Sequence[str]) -> dict[str, str]:
    """``["user_id=42", "country=DE"]`` -> ``{"user_id": "42", "country": "DE"}`` (values parsed later by kind).

    Raises:
        OnlineKeyError: a pair has no ``=`` or a column is given twice.
    """
    key: dict[str, str] = {}
    for pair in pairs:
        column, sep, value = pair.partition("=")
        if not sep or not column:
            raise OnlineKeyError(f"{pair!r} is not col=value (e.g. user_id=42)")
        if column in key:
            raise OnlineKeyError(f"key column {column} is given twice")
        key[column] = value
    return key


def read_keys_file(path: Path) -> list[dict[str, Any]]:
    """Keys from a file: CSV with a header row (``.csv``), else JSON: a list of objects or one object per line.

    Raises:
        OnlineKeyError: the file cannot be read or is not one of those shapes.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise OnlineKeyError(f"{path}: cannot be read: {error}") from None
    if path.suffix.lower() == ".csv":
        return [dict(row) for row in csv.DictReader(text.splitlines())]
    try:
        stripped = text.strip()
        keys = json.loads(stripped) if stripped.startswith("[") else [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as error:
        raise OnlineKeyError(f"{path}:{error.lineno}: not JSON: {error.msg}") from None
    if not all(isinstance(k, dict) for k in keys):
        raise OnlineKeyError(f"{path}: every key must be a JSON object such as {{\"user_id\": 42}}")
    return keys
