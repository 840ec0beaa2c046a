"""The stale-data rule: weekdays since the calendar's last day, counted in the deployment's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from tasks.core.data.version import DataVersion
from tasks.core.windows.schedule import (
    WindowSettings,
    stale_data_reason,
    trading_days_behind,
    weekdays_behind,
)


@pytest.mark.parametrize(
    ("end", "today", "behind"),
    [
        (date(2026, 11, 27), date(2026, 11, 27), 0),  # Friday's data on Friday
        (date(2026, 11, 27), date(2026, 11, 29), 0),  # the weekend adds nothing
        (date(2026, 11, 27), date(2026, 11, 30), 1),  # Monday: one weekday without data
        (date(2026, 11, 20), date(2026, 12, 3), 9),
    ],
)
def test_weekdays_behind_counts_weekdays_after_the_calendar_end(end: date, today: date, behind: int) -> None:
    assert weekdays_behind(end, today) == behind


def test_stale_reason_names_the_calendar_end_in_one_line_and_respects_the_time_zone() -> None:
    version = DataVersion(date(2026, 11, 24), "abc")
    # 2026-12-01 20:00 UTC is already Wednesday 2 December in Shanghai: 6 weekdays behind there, 5 in UTC.
    now = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
    assert stale_data_reason(version, 5, "UTC", now) is None
    reason = stale_data_reason(version, 5, "Asia/Shanghai", now)
    assert reason is not None and "\n" not in reason
    assert "the calendar ends 2026-11-24, 6 trading days (cn) before 2026-12-02 (Asia/Shanghai)" in reason
    assert stale_data_reason(version, None, "Asia/Shanghai", now) is None


def test_window_settings_describe_themselves() -> None:
    assert WindowSettings().describe().startswith("fixed")
    rolling = WindowSettings(mode="rolling", anchor=date(2022, 6, 30))
    assert "anchor 2022-06-30" in rolling.describe() and "train 200" in rolling.describe()


def test_synthetic_data_declares_its_calendar_and_the_alarm_leaves_it_alone(tmp_path: Path) -> None:
    from deployments.cli.demo import declare_synthetic_calendar
    from tasks.core.windows.schedule import declares_synthetic_calendar

    assert not declares_synthetic_calendar(tmp_path)
    declare_synthetic_calendar(tmp_path)
    assert declares_synthetic_calendar(tmp_path)
    (tmp_path / ".qmp-ingest" / "calendar.txt").write_text("XSHG\n")
    assert not declares_synthetic_calendar(tmp_path)


def test_the_alarm_counts_the_exchanges_trading_days_not_weekdays() -> None:
    # China's National Day week: five weekdays (2024-10-01..07) without a trading day.
    assert trading_days_behind(date(2024, 9, 30), date(2024, 10, 8), "cn") == 1
    assert weekdays_behind(date(2024, 9, 30), date(2024, 10, 8)) == 6
    version = DataVersion(date(2024, 9, 30), "abc")
    now = datetime(2024, 10, 8, 12, 0, tzinfo=UTC)
    assert stale_data_reason(version, 3, "Asia/Shanghai", now, calendar="cn") is None
    assert stale_data_reason(version, 3, "Asia/Shanghai", now, calendar="synthetic") is not None
