"""Typed errors. Every error the library raises derives from :class:`KilnError`."""

from __future__ import annotations

from dataclasses import dataclass


class KilnError(Exception):
    """Root of every error featurekiln raises on purpose.

    ``problems`` holds one line per problem; the CLI prints each on its own line.
    """

    @property
    def problems(self) -> list[str]:
        return [str(self)]


@dataclass(frozen=True)
class Problem:
    """One problem found in a user file.

    Attributes:
        file: the file, as the user named it (relative where possible).
        line: 1-based line number, or None when the problem concerns the whole file.
        field: dotted field path such as ``features[2].window`` ("" for the whole file).
        message: what is wrong, in words a data engineer understands.
    """

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class SpecError(KilnError):
    """One or more feature definitions are invalid. Carries every problem at once."""

    def __init__(self, problems: list[Problem]) -> None:
        self.items = list(problems)
        super().__init__("\n".join(str(p) for p in self.items))

    @property
    def problems(self) -> list[str]:
        return [str(p) for p in self.items]


class UnknownViewError(KilnError):
    """A command named a view that no definition declares."""


class PlanError(KilnError):
    """A requested date range or plan is not valid for the view."""


class SourceError(KilnError):
    """A source could not be read or does not have the columns the definition needs."""


class TableError(KilnError):
    """A feature table is missing, or its schema does not match the definition."""


class StaleTableError(TableError):
    """The feature table holds days computed with another version of the definition.

    A run or a push would mix two semantics; the message names the days and the
    command that rebuilds them.
    """


class QualityError(KilnError):
    """Computed snapshots failed blocking expectations; nothing of them was published.

    ``lines`` holds one line per failed expectation (shown by the CLI), and
    ``report`` the path of the HTML report of the run, when one was written.
    """

    def __init__(self, message: str, lines: list[str], report: str | None = None) -> None:
        self.lines = list(lines)
        self.report = report
        super().__init__(message)

    @property
    def problems(self) -> list[str]:
        tail = [f"report: {self.report}"] if self.report else []
        return [str(self), *self.lines, *tail]


class TrainingSetError(KilnError):
    """A training set cannot be built as asked: spine columns, key types, or snapshot days."""


class OnlineStoreError(KilnError):
    """The online store is misconfigured, unreachable, or refused a push or a read."""
