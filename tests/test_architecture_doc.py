"""docs/architecture.md's module map names only modules that exist, where they exist (pure).

The map is the code block under "## Modules": a line indented at most six
spaces starts with a file or directory name (several, comma-separated), under
the directory above it with less indentation; the description column may name
more files. Paths the rest of the document quotes (`featurekiln/...`,
`tests/...`, `docs/...`, `bench/...`, `scripts/...`, `jobs/...`) exist too.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
# One or more comma-separated names at the start of a map line: files (with a suffix) or directories (a slash).
_NAME = r"[\w-]+(?:/[\w-]+)*(?:\.\w+|/)"
HEAD = re.compile(rf"({_NAME}(?:, {_NAME})*)(?:\s|$)")
FILE = re.compile(r"\b[\w/]+\.(?:py|java|md|properties)\b")
QUOTED = re.compile(r"`((?:featurekiln|tests|docs|bench|scripts|jobs|dags)/[\w./-]+)`")
NAME_COLUMN = 6


def _module_map() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("\n## Modules\n", 1)[1]
    return section.split("```", 2)[1].splitlines()[1:]


def _entries() -> tuple[list[Path], list[tuple[Path, str]]]:
    """The paths the map's name column places, and (directory, name) for files named in descriptions."""
    placed: list[Path] = []
    described: list[tuple[Path, str]] = []
    parents: list[tuple[int, Path]] = []
    for line in _module_map():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        parents = [(i, p) for i, p in parents if i < indent]
        base = parents[-1][1] if parents else ROOT
        if indent <= NAME_COLUMN:
            head = HEAD.match(line.strip())
            assert head, f"no module name at the start of a map line: {line.strip()!r}"
            names = [n.strip() for n in head.group(1).split(",")]
            description = line.strip()[head.end():]
            for name in names:
                placed.append(base / name.rstrip("/"))
                if name.endswith("/"):
                    parents.append((indent, base / name.rstrip("/")))
            rest = description
            here = parents[-1][1] if parents and parents[-1][0] == indent else base
        else:
            rest = line
            here = base
        described.extend((here, found) for found in FILE.findall(rest))
    return placed, described


def test_every_module_the_map_places_exists_there() -> None:
    placed, _ = _entries()
    assert len(placed) > 50, "the module map was not parsed"
    missing = [str(path.relative_to(ROOT)) for path in placed if not path.exists()]
    assert not missing, f"docs/architecture.md's module map names what does not exist: {missing}"


def test_every_file_a_description_names_exists() -> None:
    _, described = _entries()
    missing = [
        f"{name} (under {here.relative_to(ROOT)})"
        for here, name in described
        if not any((base / name).exists() for base in (here, ROOT, ROOT / "featurekiln"))
    ]
    assert not missing, f"docs/architecture.md's module map describes files that do not exist: {missing}"


def test_every_quoted_path_exists() -> None:
    quoted = QUOTED.findall(DOC.read_text(encoding="utf-8"))
    missing = sorted({path for path in quoted if not (ROOT / path.split("::")[0]).exists()})
    assert not missing, f"docs/architecture.md quotes paths that do not exist: {missing}"
