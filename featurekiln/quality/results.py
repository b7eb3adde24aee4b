"""What a data-quality check found, as plain JSON-able records (pure: no Spark, no GE).

A run validates one or more chunks; each chunk gives one :class:`ChunkValidation`
with one :class:`Outcome` per expectation, and the outcomes of the view's drift
monitors (:mod:`featurekiln.quality.monitors`). :class:`RunReport` is what a run
leaves behind: it is written as JSON next to the HTML report and summarised in
the run-history table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from featurekiln.quality.statistics import FeatureDayStats

Severity = Literal["error", "warn"]
Status = Literal["running", "success", "warned", "failed", "error", "unvalidated", "interrupted"]


@dataclass(frozen=True)
class Outcome:
    """The result of one expectation (or one drift monitor) on one chunk.

    Attributes:
        expectation: the Great Expectations type, such as ``expect_column_values_to_be_between``;
            ``monitor:<stat>`` for a drift monitor.
        column: the column(s) it checks, comma-separated ("" for table-level expectations); a monitor's feature.
        severity: ``error`` blocks publishing when it fails; ``warn`` is only reported.
        success: whether the data met the expectation.
        observed: the observed value (or unexpected-row summary), as text.
        expected: what the expectation asks for (its kwargs), as text.
        unexpected_count: how many rows broke it, for row-level expectations.
        sample: a few unexpected values (JSON-able), at most a handful.
        source: ``baseline`` for the built-in checks, else the suite file.
        exception: the error message when GE could not evaluate the expectation.
        day: the snapshot day (ISO) a monitor's outcome is about; None for the whole chunk.
        skipped: the monitor could not be checked (``observed`` says why), so it neither passed nor failed.
    """

    expectation: str
    column: str
    severity: Severity
    success: bool
    observed: str
    expected: str
    unexpected_count: int | None = None
    sample: list[Any] = field(default_factory=list)
    source: str = "baseline"
    exception: str | None = None
    day: str | None = None
    skipped: bool = False

    @property
    def blocking(self) -> bool:
        """Failed with severity ``error``: the chunk must not be published."""
        return not self.success and self.severity == "error"

    @property
    def label(self) -> str:
        """``expectation(column)`` (and ``on <day>`` for a day's outcome): how messages name this expectation."""
        name = f"{self.expectation}({self.column})" if self.column else self.expectation
        return f"{name} on {self.day}" if self.day else name

    def line(self) -> str:
        """One line for logs and errors: the expectation, what was observed and what was expected."""
        if self.skipped:
            return f"{self.label}: skipped: {self.observed}"
        unexpected = f", {self.unexpected_count} unexpected row(s)" if self.unexpected_count else ""
        problem = self.exception or f"observed {self.observed}{unexpected}; expected {self.expected}"
        return f"{self.label}: {problem}"


@dataclass(frozen=True)
class ChunkValidation:
    """The outcomes of one chunk: snapshot days ``start`` .. ``end`` (both included), and the statistics of
    every feature on each of its days (taken in the gate's pass, :mod:`featurekiln.quality.statistics`)."""

    start: date
    end: date
    rows: int
    suite: str | None
    outcomes: tuple[Outcome, ...]
    seconds: float  # of the gate: its scans of the chunk (and, where the chunk is cached, filling the cache)
    stats: list[FeatureDayStats] = field(default_factory=list)

    @property
    def failed(self) -> list[Outcome]:
        """The blocking failures."""
        return [o for o in self.outcomes if o.blocking]

    @property
    def warnings(self) -> list[Outcome]:
        """Failures of ``warn`` expectations (reported, not blocking)."""
        return [o for o in self.outcomes if not o.success and not o.blocking]

    @property
    def success(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["start"], data["end"] = self.start.isoformat(), self.end.isoformat()
        data["stats"] = [s.to_dict() for s in self.stats]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChunkValidation:
        return cls(
            start=date.fromisoformat(data["start"]),
            end=date.fromisoformat(data["end"]),
            rows=int(data["rows"]),
            suite=data.get("suite"),
            outcomes=tuple(Outcome(**o) for o in data["outcomes"]),
            seconds=float(data["seconds"]),
            stats=[FeatureDayStats.from_dict(s) for s in data.get("stats") or []],
        )


@dataclass
class RunReport:
    """What one run of one view did: the days, the chunks' validations and the outcome.

    Attributes:
        view: the view.
        run_id: the run (a CLI run id, or the Airflow run id).
        trigger: ``cli``, ``nightly``, ``backfill`` (Airflow) or ``spark-submit``.
        start, end: the snapshot days of the run (both included).
        status: ``success``, ``warned`` (published with warnings), ``failed`` (an
            expectation blocked publishing), ``error`` (the run broke otherwise),
            ``unvalidated`` (published with validation switched off), ``running``
            (started, not finished) or ``interrupted`` (started and never finished: killed).
        rows: rows published.
        chunks: one validation per validated chunk, in order.
        published: the ``[start, end]`` day ranges (ISO, inclusive) that were published.
        quarantine: where the failing chunk was kept, if any.
        report: the HTML report's path, once written.
        error: the error message of a run that broke.
    """

    view: str
    run_id: str
    trigger: str
    start: date
    end: date
    started_at: datetime
    finished_at: datetime | None = None
    status: Status = "running"
    rows: int = 0
    chunks: list[ChunkValidation] = field(default_factory=list)
    published: list[tuple[str, str]] = field(default_factory=list)
    quarantine: str | None = None
    report: str | None = None
    error: str | None = None

    @property
    def validated(self) -> bool:
        return self.status != "unvalidated"

    @property
    def failed(self) -> list[Outcome]:
        return [o for c in self.chunks for o in c.failed]

    @property
    def warnings(self) -> list[Outcome]:
        return [o for c in self.chunks for o in c.warnings]

    @property
    def seconds(self) -> float:
        end = self.finished_at or self.started_at
        return (end - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        return {
            "view": self.view,
            "run_id": self.run_id,
            "trigger": self.trigger,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "status": self.status,
            "rows": self.rows,
            "chunks": [c.to_dict() for c in self.chunks],
            "published": [list(p) for p in self.published],
            "quarantine": self.quarantine,
            "report": self.report,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunReport:
        finished = data.get("finished_at")
        return cls(
            view=data["view"],
            run_id=data["run_id"],
            trigger=data["trigger"],
            start=date.fromisoformat(data["start"]),
            end=date.fromisoformat(data["end"]),
            started_at=datetime.fromisoformat(data["started_at"]),
            finished_at=datetime.fromisoformat(finished) if finished else None,
            status=data["status"],
            rows=int(data["rows"]),
            chunks=[ChunkValidation.from_dict(c) for c in data["chunks"]],
            published=[(p[0], p[1]) for p in data["published"]],
            quarantine=data.get("quarantine"),
            report=data.get("report"),
            error=data.get("error"),
        )
