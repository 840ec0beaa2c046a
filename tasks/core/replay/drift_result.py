"""A drift-triggered replay's outcome beside the fixed-step replay of the same period: one result, several renderers.

The drift replay's record (its windows, the day each was retrained and why, the combined result) is written to
``{registry_dir}/replays/{replay_id}/replay.json`` beside its combined ``pred.pkl`` / ``label.pkl``, as a fixed-step
replay's is. :class:`DriftComparison` sets it beside the fixed-step :class:`~tasks.core.replay.result.ReplayRecord`;
its :meth:`~DriftComparison.rows` feed the CLI table and the Prefect artifact.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict

from registry.drift import Expectation
from registry.settings import Settings
from tasks.core.files import write_atomically
from tasks.core.replay.drift import DriftRun, replay_drift
from tasks.core.replay.drift_plan import DriftReplaySpec
from tasks.core.replay.plan import ReplayPlan, ReplaySpec
from tasks.core.replay.result import ReplayRecord, replay_dir


class DriftWindowSummary(BaseModel):
    """One model of the drift replay: its segments, expectation, live days and why they ended."""

    index: int
    model_id: str
    trained: bool
    segments: dict[str, list[str]]
    evaluation_ic: float
    expectation: Expectation | None
    live: list[str]
    live_ic: float
    drift_reason: str | None  # the rule's reason on the day it fired; None when it never did


class DriftReplayRecord(BaseModel):
    """What a drift replay did (the drift flow's half of its return value)."""

    model_config = ConfigDict(protected_namespaces=())

    replay_id: str
    model_name: str
    replay_name: str
    fixed_replay_id: str
    spec: ReplaySpec
    drift: DriftReplaySpec
    horizon: int
    data_version: str
    windows: list[DriftWindowSummary]
    combined: dict[str, float]
    trained_windows: int
    finished_at: str
    record_path: str | None = None

    @property
    def retrains(self) -> int:
        """Models trained after the first: one per firing of the rule."""
        return len(self.windows) - 1


def drift_replay(plan: ReplayPlan, spec: DriftReplaySpec, fixed_replay_id: str, log: Any = None) -> DriftReplayRecord:
    """Replay the drift policy over ``plan``'s period, combine and evaluate its predictions, record it."""
    from tasks.core.qlib.session import init_from_qlib_init
    from tasks.core.qlib.training import qlib_step
    from tasks.core.replay.result import combine, evaluate_combined

    with qlib_step(log):
        init_from_qlib_init(plan.qlib_init, plan.settings)
        run = replay_drift(plan, spec, log)
        pred, label = combine([step.result for step in run.steps])
        combined = evaluate_combined(run.plan, pred, label, log)
    record = build_drift_record(run, fixed_replay_id, spec, combined)
    return save_drift_record(record, pred, label, plan.settings)


def build_drift_record(
    run: DriftRun, fixed_replay_id: str, spec: DriftReplaySpec, combined: dict[str, float]
) -> DriftReplayRecord:
    """The drift replay's record from its steps (in window order)."""
    plan, steps = run.plan, run.steps
    windows = [
        DriftWindowSummary(
            index=s.window.index, model_id=s.result.model_id, trained=s.result.trained, segments=s.window.segments,
            evaluation_ic=s.evaluation_ic, expectation=s.expectation, live=s.live, live_ic=s.live_ic,
            drift_reason=s.drift.reasons[0] if s.drift else None,
        )
        for s in steps
    ]
    return DriftReplayRecord(
        replay_id=plan.replay_id, model_name=plan.model_name, replay_name=plan.replay_name,
        fixed_replay_id=fixed_replay_id, spec=plan.spec, drift=spec, horizon=run.horizon, data_version=plan.data_version,
        windows=windows, combined=combined, trained_windows=sum(1 for s in steps if s.result.trained),
        finished_at=datetime.now(UTC).isoformat(),
    )


def save_drift_record(record: DriftReplayRecord, pred: pd.DataFrame, label: pd.DataFrame,
                      settings: Settings) -> DriftReplayRecord:
    """Write the record and the combined predictions under the registry directory; returns the record with its path."""
    folder = replay_dir(settings, record.replay_id)
    folder.mkdir(parents=True, exist_ok=True)
    record = record.model_copy(update={"record_path": str(folder / "replay.json")})
    for name, write in (("pred.pkl", pred.to_pickle), ("label.pkl", label.to_pickle),
                        ("replay.json", lambda p: p.write_text(json.dumps(record.model_dump(mode="json"), indent=2)))):
        write_atomically(folder / name, write)
    return record


class DriftComparison(BaseModel):
    """The drift replay beside the fixed-step replay of the same period."""

    drift: DriftReplayRecord
    fixed: ReplayRecord

    def rows(self) -> list[dict[str, Any]]:
        """One row per policy: models trained, retrains, the combined signal and backtest."""
        rule = self.drift.drift.rule
        return [
            _row(f"drift (window {rule.window}, z {rule.z:g})", len(self.drift.windows), self.drift.combined,
                 self.drift.windows[0].live[0], self.drift.windows[-1].live[1]),
            _row(f"fixed step {self.fixed.spec.step}", len(self.fixed.windows), self.fixed.combined,
                 self.fixed.windows[0].test[0], self.fixed.windows[-1].test[1]),
        ]


def _row(policy: str, models: int, combined: dict[str, float], first: str, last: str) -> dict[str, Any]:
    def value(key: str) -> float:
        return round(combined.get(key, math.nan), 6)

    return {"policy": policy, "models": models, "retrains": models - 1, "period": f"{first} .. {last}",
            "days": int(combined.get("test_days", 0)), "ic": value("ic_mean"), "rank_ic": value("rank_ic"),
            "icir": value("icir"), "annualized_return": value("annualized_return"),
            "information_ratio": value("information_ratio"), "max_drawdown": value("max_drawdown")}
