"""What finished runs leave behind, and which of it is older than the retention.

Below the warehouse (:func:`featurekiln.layout.leftover_roots`) a run of a view
may leave a staging folder and a quarantine folder (one per run), a rebuild
folder (one per definition fingerprint) and its report (``<run>.html`` and
``.json``). A leftover is stale when its newest file is older than the cutoff
(now minus the retention), with two exceptions:

- a run's quarantine stays as long as its report does (the report points at it);
- the rebuild of the view's current definition is work in progress, never stale.

A run still going writes its files as it goes, so with runs shorter than the
retention no running run's folder is stale.
"""

from __future__ import annotations

from dataclasses import dataclass

from featurekiln.layout import leftover_roots
from featurekiln.offline.storage import Storage
from featurekiln.settings import Settings

_REPORT_SUFFIXES = (".html", ".json")


@dataclass(frozen=True)
class Leftover:
    """One stale leftover: its kind (staging, quarantine, rebuild, reports), what to delete, files and bytes."""

    kind: str
    paths: tuple[str, ...]
    files: int
    bytes: int


def _stem(name: str) -> str:
    return next((name[: -len(s)] for s in _REPORT_SUFFIXES if name.endswith(s)), name)


def stale_leftovers(storage: Storage, settings: Settings, view: str, fingerprint: str, cutoff: float) -> list[Leftover]:
    """The leftovers of ``view`` whose newest file is older than ``cutoff`` (epoch seconds), see the module.

    Args:
        fingerprint: the view's current definition fingerprint (its rebuild is kept).
    """
    roots = leftover_roots(settings, view)
    reports: dict[str, list[tuple[str, float, int]]] = {}
    for name in storage.names(roots["reports"]):
        path = f"{roots['reports']}/{name}"
        usage = storage.usage(path)
        reports.setdefault(_stem(name), []).append((path, usage.newest, usage.bytes))
    fresh_reports = {stem for stem, files in reports.items() if max(t for _, t, _ in files) >= cutoff}
    found: list[Leftover] = []
    for kind in ("staging", "quarantine", "rebuild"):
        for name, folder in storage.children(roots[kind]):
            path = f"{roots[kind]}/{name}"
            if (kind == "quarantine" and name in fresh_reports) or (kind == "rebuild" and name == fingerprint):
                continue
            usage = storage.usage(path)
            if usage.newest < cutoff:
                found.append(Leftover(kind, (path,), usage.files, usage.bytes))
    for stem, files in sorted(reports.items()):
        if stem not in fresh_reports:
            found.append(Leftover("reports", tuple(p for p, _, _ in files), len(files), sum(b for _, _, b in files)))
    return found


def remove_leftovers(storage: Storage, leftovers: list[Leftover]) -> None:
    """Delete ``leftovers``; a quarantine only after the report that names it (a kill in between keeps both or
    leaves the quarantine, which the next pass deletes)."""
    for item in sorted(leftovers, key=lambda item: item.kind != "reports"):
        for path in item.paths:
            storage.delete(path)
