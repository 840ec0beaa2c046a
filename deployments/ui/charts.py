"""Line charts as plain geometry for the SVG templates: no JavaScript, nothing fetched from the network.

A chart is computed here in pixels (paths, one circle per defined point, axis ticks, shaded bands); the
Jinja macro `chart` in `templates/_macros.html` draws it, escaping every label.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from deployments.ui.numbers import number

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 28
CSS = ("first", "second", "third", "fourth")


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
class DrawnBand:
    """A shaded production period in pixels, its label (the version) and its shade (alternating, so two
    consecutive periods read as two)."""

    x: float
    width: float
    label: str
    css: str


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
    bands: list[DrawnBand]
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
    """Round tick values covering [low, high] (finite values of moderate magnitude: see `_scale`)."""
    if not high - low > 1e-9 * max(abs(low), abs(high), 1e-12):  # flat (or nearly): a unit band around it
        low, high = (low + high) / 2 - 0.5, (low + high) / 2 + 0.5
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    ticks = [first]
    while ticks[-1] < high and len(ticks) <= 2 * count:  # the last tick is at or above the highest value
        ticks.append(first + step * len(ticks))
    return ticks


def _scale(values: list[float]) -> float:
    """A power of ten that brings `values` near 1 when they are huge or tiny (the axis is computed on the
    scaled values, so no difference overflows and no step underflows); 1 otherwise."""
    largest = max(abs(v) for v in values)
    if largest == 0:
        return 1.0
    exponent = math.floor(math.log10(largest))
    return 10.0 ** max(-300, min(300, exponent)) if abs(exponent) > 6 else 1.0


def _tick_label(value: float, step: float) -> str:
    """Enough decimals to tell ticks `step` apart (0.0025 needs four); huge or tiny ticks in e-notation."""
    if value != 0 and (abs(value) >= 1e7 or abs(step) < 1e-7):
        return f"{value:.3g}"
    decimals = 0
    while decimals < 8 and abs(round(step, decimals) - step) > step * 1e-6:
        decimals += 1
    return f"{value:.{decimals}f}"


def _date_label(seconds: float, span: float) -> str:
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%m-%d %H:%M") if span < 3 * 86400 else moment.strftime("%Y-%m-%d")


def _defined(lines: list[Line], scale: float = 1.0) -> list[tuple[float, float]]:
    """Every drawable (x seconds, y / scale) point: finite values only (None, NaN or ±inf leave a gap)."""
    return [(_seconds(x), y / scale) for line in lines for x, y in zip(line.xs, line.ys, strict=True)
            if y is not None and math.isfinite(y)]


def line_chart(key: str, title: str, lines: list[Line], bands: list[Band] | None = None) -> Chart:
    """The geometry of `lines` on one time axis (shared y scale) from the first to the last point, with `bands`
    shaded behind them (clipped to the axis), each labelled."""
    raw = _defined(lines)
    if not raw:
        return Chart(key, title, WIDTH, HEIGHT, [], [], [], [], None, True)
    scale = _scale([y for _, y in raw])
    defined = _defined(lines, scale)
    x_low, x_high = min(x for x, _ in defined), max(x for x, _ in defined)
    if x_high == x_low:
        x_low, x_high = x_low - 86400, x_high + 86400
    ys = [y for _, y in defined]
    ticks = _nice_ticks(min(0.0, *ys) if min(ys) < 0 else min(ys), max(ys))
    y_low, y_high = ticks[0], ticks[-1]
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> float:
        return round(LEFT + (x - x_low) / (x_high - x_low) * inner_w, 2)

    def py(y: float) -> float:
        return round(TOP + (y_high - y) / (y_high - y_low) * inner_h, 2)

    drawn = [_draw(line, CSS[index % len(CSS)], px, lambda y: py(y / scale)) for index, line in enumerate(lines)]
    step = (ticks[1] - ticks[0]) * scale if len(ticks) > 1 else scale
    y_ticks = [(py(v), _tick_label(v * scale, step)) for v in ticks]
    span = x_high - x_low
    x_ticks = [(px(x_low + span * k / 4), _date_label(x_low + span * k / 4, span)) for k in range(5)]
    shaded = [drawn_band for index, band in enumerate(bands or [])
              if (drawn_band := _shade(band, index, x_low, x_high, px)) is not None]
    zero = py(0.0) if y_low < 0 < y_high else None
    return Chart(key, title, WIDTH, HEIGHT, drawn, x_ticks, y_ticks, shaded, zero, False)


MARKER = 3.0  # px: a period that began after the last point, shown at the right edge


def _shade(band: Band, index: int, x_low: float, x_high: float, px: Callable[[float], float]) -> DrawnBand | None:
    """A production period clipped to the axis; one that began after the last point is a marker at its end."""
    start, end = _seconds(band.start), _seconds(band.end)
    if end < x_low or end <= start:
        return None
    if start >= x_high:
        left, width = px(x_high) - MARKER, MARKER
    else:
        left = px(max(start, x_low))
        width = round(px(min(end, x_high)) - left, 2)
    return DrawnBand(round(left, 2), width, band.label, f"band-{index % 2}") if width > 0 else None


def _draw(line: Line, css: str, px: Callable[[float], float], py: Callable[[float], float]) -> DrawnLine:
    segments: list[str] = []
    points: list[Point] = []
    pen_down = False
    for i, (x, y) in enumerate(zip(line.xs, line.ys, strict=True)):
        if y is None or not math.isfinite(y):
            pen_down = False
            continue
        cx, cy = px(_seconds(x)), py(y)
        segments.append(f"{'L' if pen_down else 'M'}{cx},{cy}")
        pen_down = True
        label = line.labels[i] if i < len(line.labels) else ""
        when = x.isoformat() if isinstance(x, date) and not isinstance(x, datetime) else f"{x:%Y-%m-%d %H:%M}"
        points.append(Point(cx, cy, f"{line.name} {label} {when}: {number(y)}".replace("  ", " ")))
    return DrawnLine(line.name, css, " ".join(segments), points)
