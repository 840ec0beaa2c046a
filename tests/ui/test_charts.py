"""The charts' geometry: any finite value, production periods per version, the axis ending at the last point."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import pytest

from deployments.ui.charts import RIGHT, WIDTH, Band, Line, line_chart
from deployments.ui.numbers import number, signed

DAYS = [datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=i) for i in range(4)]


@pytest.mark.parametrize("values", [
    [sys.float_info.max, -sys.float_info.max, 0.0, 1.0],
    [sys.float_info.max] * 4,
    [1e-15, 2e-15, 3e-15, None],
    [5e-324, -5e-324, 0.0, 5e-324],
    [1.0, 1.0 + 1e-15, 1.0, 1.0],
    [float("inf"), float("nan"), 0.5, 0.25],
])
def test_any_finite_value_gives_a_chart_with_ordered_ticks(values: list[float | None]) -> None:
    chart = line_chart("k", "t", [Line("m", DAYS, values)])
    assert not chart.empty
    positions = [y for y, _ in chart.y_ticks]
    assert 2 <= len(positions) <= 11 and positions == sorted(positions, reverse=True)
    assert all(len(label) <= 10 for _, label in chart.y_ticks), chart.y_ticks
    assert all(0 <= p.y <= 220 and 0 <= p.x <= WIDTH for line in chart.lines for p in line.points)


def test_the_x_axis_ends_at_the_last_point_not_at_now() -> None:
    chart = line_chart("k", "t", [Line("m", DAYS, [0.1, 0.2, 0.3, 0.4])],
                       [Band(DAYS[1], datetime.now(UTC), "2.0.0")])
    assert chart.lines[0].points[-1].x == WIDTH - RIGHT
    assert chart.x_ticks[-1][1] == "2024-01-04"
    assert chart.bands[0].x + chart.bands[0].width == WIDTH - RIGHT


def test_each_production_period_is_its_own_labelled_band() -> None:
    bands = [Band(DAYS[0], DAYS[1], "1.0.0"), Band(DAYS[1], DAYS[2], "2.0.0"), Band(DAYS[2], DAYS[3], "3.0.0")]
    chart = line_chart("k", "t", [Line("m", DAYS, [0.1, 0.2, 0.3, 0.4])], bands)
    assert [b.label for b in chart.bands] == ["1.0.0", "2.0.0", "3.0.0"]
    assert [b.css for b in chart.bands] == ["band-0", "band-1", "band-0"]  # neighbours told apart
    assert chart.bands[0].x + chart.bands[0].width == chart.bands[1].x


def test_a_period_begun_after_the_last_point_is_a_marker_at_the_edge() -> None:
    chart = line_chart("k", "t", [Line("m", DAYS, [0.1, 0.2, 0.3, 0.4])],
                       [Band(DAYS[3] + timedelta(hours=1), datetime.now(UTC), "4.0.0")])
    assert len(chart.bands) == 1 and chart.bands[0].x + chart.bands[0].width == WIDTH - RIGHT


@pytest.mark.parametrize(("value", "shown"), [(162.0, "162"), (0.03214, "0.0321"), (1.7e308, "1.7e+308"),
                                             (-3.2e-7, "-3.2e-07"), (0.0, "0"), (12, "12")])
def test_numbers_are_shown_as_a_person_reads_them(value: float, shown: str) -> None:
    assert number(value) == shown


def test_differences_carry_their_sign() -> None:
    assert (signed(0.5), signed(-0.5), signed(0.0)) == ("+0.5000", "-0.5000", "0")
