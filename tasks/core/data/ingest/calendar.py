"""The trading days an ingest expects: an exchange's calendar from ``exchange_calendars``, a team-maintained holiday
file beyond the library's last session, weekdays (with a warning) beyond both, or the source's own days.

A holiday file lists one closed weekday per line as ``YYYY-MM-DD`` (anything after the date is a comment, ``#``
lines are ignored); it covers every calendar year in which it lists at least one date.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path

import pandas as pd

from tasks.core.errors import PipelineInputError

#: The exchange each Qlib region trades on.
REGION_EXCHANGES = {"cn": "XSHG", "us": "XNYS"}
#: Calendars that are the source's own days: synthetic data declares its trading days by the rows it has.
SOURCE_CALENDARS = frozenset({"synthetic"})
#: Where a data directory declares its calendar (beside the ingest's lock and journal; Qlib never reads it).
DECLARATION = Path(".qmp-ingest") / "calendar.txt"
# exchange_calendars builds sessions from this year on unless the data is older.
_EARLIEST = pd.Timestamp("2000-01-01")


class CalendarError(PipelineInputError):
    """An unknown calendar name or an unreadable holiday file."""


@dataclass(frozen=True)
class ExpectedDays:
    """The trading days between two dates (None: every day the source has) and why they may be approximate."""

    days: pd.DatetimeIndex | None
    warnings: list[str] = field(default_factory=list)


def calendar_name(calendar: str) -> str:
    """An exchange code or 'synthetic' from a region ('cn', 'us') or a calendar name."""
    name = REGION_EXCHANGES.get(calendar.lower(), calendar)
    return name.lower() if name.lower() in SOURCE_CALENDARS else name.upper()


def declared_calendar(out: Path) -> str | None:
    """The calendar ``out`` declares (``qmp data synth`` declares 'synthetic'), or None."""
    path = out / DECLARATION
    return path.read_text().strip() or None if path.is_file() else None


def declare_calendar(out: Path, calendar: str) -> None:
    """Make ``calendar`` the default for ingests into ``out``."""
    path = out / DECLARATION
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(calendar_name(calendar) + "\n")


def expected_days(calendar: str, first: date, last: date, holidays: Path | None = None) -> ExpectedDays:
    """The trading days in [first, last] of ``calendar`` (a region, an exchange code or 'synthetic')."""
    name = calendar_name(calendar)
    if name in SOURCE_CALENDARS:
        return ExpectedDays(None)
    if last < first:
        return ExpectedDays(pd.DatetimeIndex([]))
    sessions, bound = _exchange_sessions(name, pd.Timestamp(first), pd.Timestamp(last))
    if bound >= pd.Timestamp(last):
        return ExpectedDays(sessions)
    beyond_first = max(bound + pd.Timedelta(days=1), pd.Timestamp(first))
    extra, warnings = _days_beyond_library(name, beyond_first, pd.Timestamp(last), holidays, bound)
    return ExpectedDays(sessions.append(extra), warnings)


def _exchange_sessions(name: str, first: pd.Timestamp, last: pd.Timestamp) -> tuple[pd.DatetimeIndex, pd.Timestamp]:
    """The library's sessions of ``name`` in [first, min(last, its last session)] and that last session."""
    calendar = _exchange_calendar(name, min(first, _EARLIEST))
    bound = pd.Timestamp(calendar.last_session).tz_localize(None)
    if first > bound:
        return pd.DatetimeIndex([]), bound
    sessions = calendar.sessions_in_range(first, min(last, bound))
    return pd.DatetimeIndex(sessions).tz_localize(None).normalize(), bound


@lru_cache(maxsize=8)
def _exchange_calendar(name: str, start: pd.Timestamp):  # type: ignore[no-untyped-def]
    import exchange_calendars

    try:
        return exchange_calendars.get_calendar(name, start=start)
    except exchange_calendars.errors.InvalidCalendarName:
        raise CalendarError(
            f"unknown trading calendar {name!r}: give a region (cn, us), an exchange code such as XSHG or XNYS, "
            "or 'synthetic'"
        ) from None


def _days_beyond_library(
    name: str, first: pd.Timestamp, last: pd.Timestamp, holidays: Path | None, bound: pd.Timestamp
) -> tuple[pd.DatetimeIndex, list[str]]:
    """Weekdays in [first, last] minus the holiday file's dates; a warning for the years the file does not cover."""
    closed = read_holidays(holidays) if holidays else []
    covered = {day.year for day in closed}
    weekdays = pd.bdate_range(first, last)
    days = weekdays.difference(pd.DatetimeIndex(closed))
    uncovered = sorted({day.year for day in weekdays} - covered)
    warnings = []
    if uncovered:
        years = ", ".join(str(year) for year in uncovered)
        warnings.append(
            f"{name} calendar: exchange_calendars ends {bound:%Y-%m-%d} and no holiday file covers {years}: "
            "counting weekdays as trading days (give --holidays FILE)"
        )
    return days, warnings


def read_holidays(path: Path) -> list[pd.Timestamp]:
    """The dates listed in a holiday file (format in this module's docstring)."""
    if not path.is_file():
        raise CalendarError(f"{path}: holiday file not found")
    closed = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            closed.append(pd.Timestamp(date.fromisoformat(text.split()[0])))
        except ValueError:
            raise CalendarError(f"{path} line {number}: expected a YYYY-MM-DD date, got {text!r}") from None
    return closed


def trading_days_between(calendar: str, after: date, until: date, holidays: Path | None = None) -> int:
    """How many trading days of ``calendar`` fall in (after, until] (weekdays for 'synthetic')."""
    if until <= after:
        return 0
    first = after + pd.Timedelta(days=1)
    expected = expected_days(calendar, first, until, holidays)
    days = expected.days if expected.days is not None else pd.bdate_range(first, until)
    return len(days)
