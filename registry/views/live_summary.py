"""The overview's live column and drift badge: each production model's recent live IC and its drift verdict, for
every name at once (three statements whatever the number of names).

The verdict is `registry.drift.judge_drift` on the same inputs `registry.views.monitor.drift_of` gives it for one
name (`qmp monitor`): the production model's own live days, the expectation from its evaluation, the name's
stored rule.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection

from registry.drift import DEFAULT_RULE, DriftResult, DriftRule, expectation_of, judge_drift, make_rule
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
    rules = {name: _rule(stored) for name, stored in pages.drift_rules(connection).items()}
    newest = max([LIVE_COLUMN_DAYS, *(rule.window for rule in rules.values())])
    live = pages.production_live_ics(connection, newest)
    daily = pages.production_daily_ics(connection)
    found = {}
    for name, (model_id, ics) in live.items():
        info = production.get(name)
        if info is None or info.model_id != model_id:  # production changed between the statements
            continue
        series = {DAILY_IC: EvaluationSeries.model_validate(daily[model_id])} if model_id in daily else {}
        expectation = expectation_of(series, info.performance_metrics)
        drift = judge_drift(name, model_id, ics, expectation, rules.get(name, DEFAULT_RULE))
        recent = [ic for ic in ics[-LIVE_COLUMN_DAYS:] if ic is not None]
        found[name] = LiveSummary(window=LIVE_COLUMN_DAYS, mean_ic=statistics.fmean(recent) if recent else None,
                                  days=len(recent), drift=drift)
    return found


def _rule(stored: dict[str, Any]) -> DriftRule:
    """A stored rule as `registry.monitoring.rule` reads it."""
    return make_rule(**stored) if stored else DEFAULT_RULE
