"""Line charts as plain geometry for the SVG templates: no JavaScript, nothing fetched from the network.

A chart is computed here in pixels (paths, one circle per defined point, axis ticks, shaded bands); the
Jinja macro `chart` in `templates/_macros.html` draws it, escaping every label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 28


@dataclass(frozen=True)
class Line:
    """One series: x values (dates or datetimes), y values (None leaves a gap), a label per point."""

    name: str
    xs: list[date | datetime]
    ys: list[float | None]
    labels: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Band:
    """A shaded x range (a production period), labelled."""

    start: date | datetime
    end: date | datetime
    label: str


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    title: str


@dataclass(frozen=True)
class DrawnLine:
    name: str
    css: str
    path: str
    points: list[Point]


@dataclass(frozen=True)
class Chart:
    """What the template draws (pixels in a WIDTH x HEIGHT view box)."""

    key: str
    title: str
    width: int
    height: int
    lines: list[DrawnLine]
    x_ticks: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]
    bands: list[tuple[float, float, str]]
    zero: float | None
    empty: bool

    @property
    def point_count(self) -> int:
        return sum(len(line.points) for line in self.lines)


def _seconds(value: date | datetime) -> float:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    return datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp()


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    ticks = [round(first, 12)]
    while ticks[-1] < high:  # the last tick is at or above the highest value
        ticks.append(round(first + step * len(ticks), 12))
    return ticks


def _tick_label(value: float, step: float) -> str:
    """Enough decimals to tell ticks `step` apart (0.0025 needs four)."""
    decimals = 0
    while decimals < 8 and abs(round(step, decimals) - step) > step * 1e-6:
        decimals += 1
    return f"{value:.{decimals}f}"


def _date_label(seconds: float, span: float) -> str:
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%m-%d %H:%M") if span < 3 * 86400 else moment.strftime("%Y-%m-%d")


def line_chart(key: str, title: str, lines: list[Line], bands: list[Band] | None = None) -> Chart:
    """The geometry of `lines` on one time axis (shared y scale), with `bands` shaded behind them (the axis
    reaches to the end of the last band, so a production period that began after the last point shows)."""
    css = ["first", "second", "third", "fourth"]
    defined = [(_seconds(x), y) for line in lines for x, y in zip(line.xs, line.ys, strict=True) if y is not None]
    if not defined:
        return Chart(key, title, WIDTH, HEIGHT, [], [], [], [], None, True)
    edges = [_seconds(edge) for band in bands or [] for edge in (band.start, band.end)]
    x_low, x_high = min(x for x, _ in defined), max([x for x, _ in defined] + edges)
    if x_high == x_low:
        x_low, x_high = x_low - 86400, x_high + 86400
    y_ticks_values = _nice_ticks(min(0.0, *(y for _, y in defined)) if any(y < 0 for _, y in defined) else
                                 min(y for _, y in defined), max(y for _, y in defined))
    y_low, y_high = y_ticks_values[0], y_ticks_values[-1]
    if y_high == y_low:
        y_high = y_low + 1.0
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> float:
        return round(LEFT + (x - x_low) / (x_high - x_low) * inner_w, 2)

    def py(y: float) -> float:
        return round(TOP + (y_high - y) / (y_high - y_low) * inner_h, 2)

    drawn = []
    for index, line in enumerate(lines):
        segments: list[str] = []
        points: list[Point] = []
        pen_down = False
        for i, (x, y) in enumerate(zip(line.xs, line.ys, strict=True)):
            if y is None:
                pen_down = False
                continue
            cx, cy = px(_seconds(x)), py(y)
            segments.append(f"{'L' if pen_down else 'M'}{cx},{cy}")
            pen_down = True
            label = line.labels[i] if i < len(line.labels) else ""
            when = x.isoformat() if isinstance(x, date) and not isinstance(x, datetime) else f"{x:%Y-%m-%d %H:%M}"
            points.append(Point(cx, cy, f"{line.name} {label} {when}: {y:.4f}".replace("  ", " ")))
        drawn.append(DrawnLine(line.name, css[index % len(css)], " ".join(segments), points))
    step = y_ticks_values[1] - y_ticks_values[0] if len(y_ticks_values) > 1 else 1.0
    y_ticks = [(py(v), _tick_label(v, step)) for v in y_ticks_values]
    span = x_high - x_low
    x_ticks = [(px(x_low + span * k / 4), _date_label(x_low + span * k / 4, span)) for k in range(5)]
    shaded = []
    for band in bands or []:
        start, end = max(_seconds(band.start), x_low), min(_seconds(band.end), x_high)
        if end > start:
            shaded.append((px(start), round(px(end) - px(start), 2), band.label))
    zero = py(0.0) if y_low < 0 < y_high else None
    return Chart(key, title, WIDTH, HEIGHT, drawn, x_ticks, y_ticks, shaded, zero, False)
