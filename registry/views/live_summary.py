"""The overview's live column and drift badge: each production model's recent live IC and its drift verdict, for
every name at once (at most four statements whatever the number of names).

The verdict is `registry.drift.judge_drift` on the same inputs `registry.views.monitor.drift_of` gives it for one
name (`qmp monitor`): the production model's own live days, the expectation from its evaluation, the name's
stored rule.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection

from registry.drift import (
    DEFAULT_RULE,
    DriftResult,
    Expectation,
    expectation_of,
    judge_drift,
    stored_rule,
)
from registry.models import ModelInfo
from registry.series import DAILY_IC, EvaluationSeries
from registry.store import pages

LIVE_COLUMN_DAYS = 20  # the overview's live mean IC is over the production model's newest 20 live days


class LiveSummary(BaseModel):
    """A production model's live record as the overview shows it."""

    model_config = ConfigDict(frozen=True, protected_namespaces=())

    window: int  # the live days the mean is taken over (LIVE_COLUMN_DAYS)
    mean_ic: float | None  # over the production model's newest `window` live days (days without an IC left out)
    days: int  # of those days, the days with an IC
    drift: DriftResult  # the name's current drift verdict, as `qmp monitor` judges it


def live_summaries(connection: Connection, production: Mapping[str, ModelInfo]) -> dict[str, LiveSummary]:
    """The live summary of every name in `production` (name -> its production model) whose production model
    has at least one live day; a name without one is absent."""
    rules = {name: stored_rule(stored) for name, stored in pages.drift_rules(connection).items()}
    newest = max([LIVE_COLUMN_DAYS, *(rule.window for rule in rules.values())])
    own = _production_days(connection, production, newest)
    expectations = _expectations(connection, [production[name] for name in own])
    found = {}
    for name, ics in own.items():
        info = production[name]
        drift = judge_drift(name, info.model_id, ics, expectations[info.model_id], rules.get(name, DEFAULT_RULE))
        recent = [ic for ic in ics[-LIVE_COLUMN_DAYS:] if ic is not None]
        found[name] = LiveSummary(window=LIVE_COLUMN_DAYS, mean_ic=statistics.fmean(recent) if recent else None,
                                  days=len(recent), drift=drift)
    return found


def _production_days(connection: Connection, production: Mapping[str, ModelInfo], newest: int
                     ) -> dict[str, list[float | None]]:
    """The ICs of each production model's newest `newest` live days, oldest first (names whose production model
    has a live day).

    A name's newest days are read first; they are the production model's newest when the name has fewer days, or
    all are its. Otherwise (a model promoted since, or one promoted again) its older days may lie below another
    model's: those names' production models' days are read whole, in one more statement."""
    own: dict[str, list[float | None]] = {}
    partial: dict[str, str] = {}
    for name, rows in pages.newest_live_days(connection, newest).items():
        info = production.get(name)
        if info is None:
            continue
        if len(rows) < newest or all(model_id == info.model_id for model_id, _ in rows):
            if ics := [ic for model_id, ic in rows if model_id == info.model_id]:
                own[name] = ics
        else:
            partial[name] = info.model_id
    for name, rows in pages.live_days_of_models(connection, partial).items():
        own[name] = [ic for _, ic in rows][-newest:]
    return own


# Expectations computed before, by (database, model id, registration time): a version's evaluation series is
# written once, with the version, so an entry never goes stale (an id registered again has a new time). The
# standard deviation of a 250-day series takes statistics.stdev about 2 ms, 0.4 s for 200 names.
_KNOWN: dict[tuple[str, str, datetime], Expectation | None] = {}
_KNOWN_LIMIT = 20_000


def _expectations(connection: Connection, infos: list[ModelInfo]) -> dict[str, Expectation | None]:
    """The expectation (`registry.drift.expectation_of`) of each of `infos`, by model id; the daily IC series of
    those not computed before are read in one statement."""
    database = connection.engine.url.render_as_string(hide_password=True)
    missing = [info for info in infos if (database, info.model_id, info.created_at) not in _KNOWN]
    daily = pages.daily_ics(connection, sorted(info.model_id for info in missing))
    if len(_KNOWN) + len(missing) > _KNOWN_LIMIT:
        _KNOWN.clear()
    for info in missing:
        series = {DAILY_IC: EvaluationSeries.model_validate(daily[info.model_id])} if info.model_id in daily else {}
        _KNOWN[(database, info.model_id, info.created_at)] = expectation_of(series, info.performance_metrics)
    return {info.model_id: _KNOWN[(database, info.model_id, info.created_at)] for info in infos}

