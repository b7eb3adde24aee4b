"""Small multiples of per-day feature statistics as inline SVG, for the run reports (pure: no Spark, no network).

One row of plots per feature over the last :data:`PLOT_DAYS` days up to the run's
last day (from the first of them with statistics): its null fraction, mean, the
p50-p95 band and the distinct count, after one plot of the rows per day (the
same for every feature). The run's days are
shaded blue; a day a monitor or an expectation flagged is a red (failing) or
yellow (warning) band across the feature's plots, its value a larger dot.
Every point of the run's and the flagged days carries a ``<title>`` (the day and
the value) that a browser shows on hover, with no script. Days without
statistics are gaps in the lines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta
from html import escape

from featurekiln.quality.monitors import PREFIX, is_monitor
from featurekiln.quality.results import ChunkValidation
from featurekiln.quality.statistics import FeatureDayStats

PLOT_DAYS = 90
WIDTH, HEIGHT = 260, 96
LEFT, RIGHT, TOP, BOTTOM = 46, 6, 18, 16  # the margins around the plotting area, in pixels
RUN_FILL, WARN_FILL, FAIL_FILL = "#ddf4ff", "#fff1a8", "#ffcecb"
LINE, BAND, WARN_DOT, FAIL_DOT = "#0969da", "#b6e3ff", "#9a6700", "#cf222e"
ROWS = "rows"  # the data-feature of the rows plot, shared by every feature

# Per panel: its title and how to read its values (a line, or a band's low and high) from a day's statistics.
Reader = Callable[[FeatureDayStats], float | None]
PANELS: tuple[tuple[str, str, Reader, Reader | None], ...] = (
    ("null_fraction", "null fraction", lambda s: s.value("null_fraction"), None),
    ("mean", "mean", lambda s: s.value("mean"), None),
    ("p50_p95", "p50 – p95", lambda s: s.value("p50"), lambda s: s.value("p95")),
    ("distinct", "distinct (approx.)", lambda s: s.value("distinct"), None),
)


def window(last: date, days: int = PLOT_DAYS) -> list[date]:
    """The ``days`` days up to ``last`` (included), oldest first."""
    return [last - timedelta(days=days - 1 - n) for n in range(days)]


def _short(value: float) -> str:
    return f"{value:.4g}"


class _Frame:
    """Where a day and a value land in one plot."""

    def __init__(self, days: Sequence[date], values: Sequence[float], floor: float | None) -> None:
        self.first, self.count = days[0], len(days)
        low, high = min(values, default=0.0), max(values, default=1.0)
        if floor is not None:
            low = min(low, floor)
        if high == low:
            pad = abs(high) * 0.1 or 1.0
            low, high = (low if floor is not None and low == floor else low - pad), high + pad
        self.low, self.high = low, high
        self.step = (WIDTH - LEFT - RIGHT) / max(self.count - 1, 1)

    def x(self, day: date) -> float:
        return LEFT + (day - self.first).days * self.step

    def y(self, value: float) -> float:
        return TOP + (self.high - value) / (self.high - self.low) * (HEIGHT - TOP - BOTTOM)

    def column(self, day: date) -> tuple[float, float]:
        """The left edge and width of the day's band."""
        width = max(self.step, 3.0)
        return self.x(day) - width / 2, width


def _runs(points: Sequence[tuple[date, float]]) -> list[list[tuple[date, float]]]:
    """Points split where a day is missing (a gap in the line)."""
    runs: list[list[tuple[date, float]]] = []
    for day, value in points:
        if runs and (day - runs[-1][-1][0]).days == 1:
            runs[-1].append((day, value))
        else:
            runs.append([(day, value)])
    return runs


def plot_svg(
    name: str,
    title: str,
    days: Sequence[date],
    low: dict[date, float],
    high: dict[date, float] | None = None,
    *,
    run: tuple[date, date] | None = None,
    flags: dict[date, str] | None = None,
    floor: float | None = None,
) -> str:
    """One plot as an ``<svg>`` element: the values ``low`` per day (and the band up to ``high``) over ``days``.

    Args:
        name: the statistic (``data-stat``).
        title: the caption above the plot.
        run: the run's first and last day, shaded.
        flags: days to highlight, ``fail`` or ``warn``.
        floor: a value the vertical axis always includes (0 for counts and fractions).
    """
    flags = flags or {}
    shown = [v for v in [*low.values(), *(high or {}).values()] if v is not None]
    frame = _Frame(days, shown, floor)
    parts = [
        f'<svg class="plot" data-stat="{escape(name)}" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}"'
        f' role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="{LEFT}" y="11" font-size="11" fill="#57606a">{escape(title)}</text>',
    ]
    inside = [d for d in days if run and run[0] <= d <= run[1]]
    if inside:
        left = frame.x(inside[0]) - frame.step / 2
        parts.append(f'<rect class="run-days" x="{left:.1f}" y="{TOP}" width="{len(inside) * frame.step:.1f}" '
                     f'height="{HEIGHT - TOP - BOTTOM}" fill="{RUN_FILL}"/>')
    for day in sorted(d for d in flags if days[0] <= d <= days[-1]):
        left, width = frame.column(day)
        fill = FAIL_FILL if flags[day] == "fail" else WARN_FILL
        parts.append(f'<rect class="flag {flags[day]}" data-day="{day}" x="{left:.1f}" y="{TOP}" width="{width:.1f}" '
                     f'height="{HEIGHT - TOP - BOTTOM}" fill="{fill}"><title>{day}: {flags[day]}</title></rect>')
    bottom = HEIGHT - BOTTOM
    parts.append(f'<line x1="{LEFT}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}" stroke="#d0d7de"/>')
    if shown:
        parts.append(f'<text x="{LEFT - 4}" y="{TOP + 8}" font-size="10" text-anchor="end" fill="#57606a">'
                     f'{_short(frame.high)}</text>')
        parts.append(f'<text x="{LEFT - 4}" y="{bottom}" font-size="10" text-anchor="end" fill="#57606a">'
                     f'{_short(frame.low)}</text>')
    else:
        parts.append(f'<text class="empty" x="{(LEFT + WIDTH) / 2:.0f}" y="{(TOP + bottom) / 2 + 4:.0f}" '
                     f'font-size="11" text-anchor="middle" fill="#57606a">no values</text>')
    parts.append(f'<text x="{LEFT}" y="{HEIGHT - 3}" font-size="10" fill="#57606a">{days[0]}</text>')
    parts.append(f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 3}" font-size="10" text-anchor="end" fill="#57606a">'
                 f'{days[-1]}</text>')
    points = sorted((d, v) for d, v in low.items() if v is not None and days[0] <= d <= days[-1])
    if high is not None:
        for part in _runs([(d, v) for d, v in points if high.get(d) is not None]):
            upper = " ".join(f"{frame.x(d):.1f},{frame.y(high[d]):.1f}" for d, _ in part)
            lower = " ".join(f"{frame.x(d):.1f},{frame.y(v):.1f}" for d, v in reversed(part))
            parts.append(f'<polygon class="band" points="{upper} {lower}" fill="{BAND}" stroke="{LINE}" '
                         f'stroke-width="1"/>')
    else:
        for part in _runs(points):
            line = " ".join(f"{frame.x(d):.1f},{frame.y(v):.1f}" for d, v in part)
            parts.append(f'<polyline class="series" points="{line}" fill="none" stroke="{LINE}" stroke-width="1.5"/>')
    for day, value in points:
        flag = flags.get(day)
        if flag is None and not (run and run[0] <= day <= run[1]):
            continue
        radius, fill = (3.5, FAIL_DOT if flag == "fail" else WARN_DOT) if flag else (2.0, LINE)
        label = _short(value) + (f" – {_short(high[day])}" if high is not None and high.get(day) is not None else "")
        cy = frame.y(high[day]) if high is not None and high.get(day) is not None else frame.y(value)
        parts.append(f'<circle class="point{" " + flag if flag else ""}" data-day="{day}" cx="{frame.x(day):.1f}" '
                     f'cy="{cy:.1f}" r="{radius}" fill="{fill}"><title>{day}: {label}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)


def day_flags(chunks: Sequence[ChunkValidation]) -> dict[str, dict[date, str]]:
    """The days to highlight, per feature (and :data:`ROWS`): ``fail`` or ``warn`` (a failure wins).

    A monitor flags its feature on its day (a ``rows`` monitor also the rows plot);
    a failed expectation flags the days of its chunk for each feature among its
    columns, and the rows plot when it checks no single column.
    """
    flags: dict[str, dict[date, str]] = {}
    for chunk in chunks:
        every_day = [chunk.start + timedelta(days=n) for n in range((chunk.end - chunk.start).days + 1)]
        for outcome in chunk.outcomes:
            if outcome.success:
                continue
            if is_monitor(outcome) and outcome.day:
                features = [outcome.column] + ([ROWS] if outcome.expectation == PREFIX + "rows" else [])
                days = [date.fromisoformat(outcome.day)]
            else:
                features = [c.strip() for c in outcome.column.split(",") if c.strip()] or [ROWS]
                days = every_day
            level = "fail" if outcome.blocking else "warn"
            for feature in features:
                marked = flags.setdefault(feature, {})
                for day in days:
                    if marked.get(day) != "fail":
                        marked[day] = level
    return flags


def _series(stats: Sequence[FeatureDayStats], read: Reader) -> dict[date, float]:
    return {s.ds: v for s in stats if (v := read(s)) is not None}


def feature_plots(
    stats: Sequence[FeatureDayStats],
    run: tuple[date, date],
    flags: dict[str, dict[date, str]],
    days: int = PLOT_DAYS,
    order: Sequence[str] = (),
) -> str:
    """The plots section of a report: the rows per day, then one row of small multiples per feature.

    Args:
        stats: the statistics to plot (one per feature and day; the last of a ``(feature, ds)`` counts).
        run: the run's first and last day; the plots cover the ``days`` days up to the last, from the first of
            them that has statistics (or the run's first day), so a young view's plots are not mostly empty.
        flags: per feature (and :data:`ROWS` for the rows plot), the days to highlight: ``fail`` or ``warn``.
        order: the features to show first, in this order (the definition's); the others follow.

    Returns:
        An HTML fragment (a ``<section id="plots">``): features in ``order``, then in the order they first
        appear in ``stats``.
    """
    span = window(run[1], days)
    latest = {(s.feature, s.ds): s for s in stats if span[0] <= s.ds <= span[-1]}
    begin = min([run[0], *(d for _, d in latest)])
    span = [d for d in span if d >= begin]
    features = list(dict.fromkeys([*order, *(s.feature for s in stats)]))
    by_feature = {f: [s for (name, _), s in latest.items() if name == f] for f in features}
    rows = {d: float(s.rows) for (_, d), s in latest.items()}
    html = [
        '<section id="plots">',
        f"<h2>Feature statistics, last {days} days</h2>",
        '<p class="legend muted"><span class="key run"></span> the run\'s days '
        '<span class="key warn"></span> a warning <span class="key fail"></span> a failure '
        "(hover a dot for its day and value)</p>",
    ]
    if not latest:
        html.append(f'<p class="muted" id="no-stats">No statistics of the {days} days up to {run[1]}.</p>')
    else:
        html.append(f'<div class="feature" data-feature="{ROWS}"><h3>rows per day</h3><div class="multiples">')
        html.append(plot_svg("rows", "rows", span, rows, run=run, flags=flags.get(ROWS, {}), floor=0.0))
        html.append("</div></div>")
    for feature in features if latest else []:
        html.append(f'<div class="feature" data-feature="{escape(feature)}"><h3>{escape(feature)}</h3>'
                    '<div class="multiples">')
        for name, title, read, read_high in PANELS:
            low = _series(by_feature[feature], read)
            high = _series(by_feature[feature], read_high) if read_high else None
            floor = 0.0 if name in ("null_fraction", "distinct") else None
            html.append(plot_svg(name, title, span, low, high, run=run, flags=flags.get(feature, {}), floor=floor))
        html.append("</div></div>")
    html.append("</section>")
    return "\n".join(html)


# The look of the plots section (added to the report's style).
PLOT_STYLE = """.multiples { display: flex; flex-wrap: wrap; gap: 6px 12px; }
.feature h3 { font-size: 13px; margin: 14px 0 4px; font-family: ui-monospace, monospace; }
.legend .key { display: inline-block; width: 12px; height: 12px; vertical-align: -2px; margin-left: 8px;
  border: 1px solid #d0d7de; }
.key.run { background: #ddf4ff; } .key.warn { background: #fff1a8; } .key.fail { background: #ffcecb; }
svg.plot { background: #fff; border: 1px solid #eaeef2; }
"""
