"""Parse a JSON file once and keep the line of every field, like the YAML loader does.

Python's :mod:`json` gives no positions for valid documents, so after
``json.loads`` succeeds a small walker over the (now known to be valid) text
records the 1-based line of every field path, and the keys given twice.
"""

from __future__ import annotations

import bisect
import json
import re

from featurekiln.errors import Problem
from featurekiln.definitions.loader import Document, FieldPath, format_path

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


class _Walker:
    """Maps offsets of a valid JSON text to field paths and lines."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.newlines = [i for i, char in enumerate(text) if char == "\n"]
        self.lines: dict[FieldPath, int] = {}
        self.dupes: list[tuple[FieldPath, int]] = []

    def line_at(self, offset: int) -> int:
        return bisect.bisect_left(self.newlines, offset) + 1

    def skip(self, offset: int) -> int:
        match = _WHITESPACE.match(self.text, offset)
        return match.end() if match else offset

    def value(self, offset: int, path: FieldPath) -> int:
        """Record ``path`` at the value starting at ``offset``; return the offset after it."""
        offset = self.skip(offset)
        self.lines.setdefault(path, self.line_at(offset))
        char = self.text[offset]
        if char == "{":
            return self.members(offset + 1, path)
        if char == "[":
            return self.items(offset + 1, path)
        _, end = _DECODER.raw_decode(self.text, offset)
        return end

    def members(self, offset: int, path: FieldPath) -> int:
        seen: set[str] = set()
        offset = self.skip(offset)
        while self.text[offset] != "}":
            key_line = self.line_at(offset)
            key, offset = json.decoder.scanstring(self.text, offset + 1)
            child = (*path, key)
            offset = self.skip(offset) + 1  # the ':'
            if key in seen:
                self.dupes.append((child, key_line))
                _, offset = _DECODER.raw_decode(self.text, self.skip(offset))
            else:
                seen.add(key)
                self.lines[child] = key_line
                offset = self.value(offset, child)
                self.lines[child] = key_line
            offset = self.skip(offset)
            if self.text[offset] == ",":
                offset = self.skip(offset + 1)
        return offset + 1

    def items(self, offset: int, path: FieldPath) -> int:
        index = 0
        offset = self.skip(offset)
        while self.text[offset] != "]":
            offset = self.skip(self.value(offset, (*path, index)))
            index += 1
            if self.text[offset] == ",":
                offset = self.skip(offset + 1)
        return offset + 1


def read_json_document(text: str, file: str) -> tuple[Document | None, list[Problem]]:
    """Parse JSON ``text`` into a :class:`Document` with the line of every field path.

    Returns:
        The document (None when the text is not valid JSON) and the problems:
        a syntax error with its line and column, or the keys given twice.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        message = error.msg[:1].lower() + error.msg[1:]
        return None, [Problem(file, error.lineno, "", f"invalid JSON at column {error.colno}: {message}")]
    walker = _Walker(text)
    walker.value(0, ())
    problems = [Problem(file, line, format_path(path), "is given twice") for path, line in walker.dupes]
    return Document(file, data, walker.lines), problems
