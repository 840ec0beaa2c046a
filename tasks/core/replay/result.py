"""A replay's outcome: the windows' predictions combined as Qlib's ``Rolling`` does, evaluated once, recorded.

The combination is Qlib's own ``RollingEnsemble`` (windows in time order, each date predicted by the
newest window covering it). The combined predictions are evaluated with the retrain's own code
(:func:`tasks.core.qlib.evaluation.signal_metrics` and :func:`~tasks.core.qlib.evaluation.portfolio_metrics`), the
backtest spanning the combined predictions. The record (parameters, the windows' version ids and
metrics, the combined result) is written to ``{registry_dir}/replays/{replay_id}/replay.json`` beside
the combined ``pred.pkl`` / ``label.pkl``, each by an atomic rename.
"""

from __future__ import annotations

import json
import math
import os
import resource
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel

from registry import ModelFilter, ModelStatus
from registry.settings import Settings
from registry.versions import parse_version
from tasks.core.files import write_atomically
from tasks.core.replay.plan import ReplayPlan, ReplaySpec
from tasks.core.replay.window import WindowResult

TIME_PARTS = ("startup", "features", "processors", "fit", "predict", "register")


class WindowSummary(BaseModel):
    """One row of the replay's table."""

    index: int
    model_id: str
    trained: bool
    train: list[str]
    test: list[str]
    ic: float
    rank_ic: float
    test_days: int


class ReplayRecord(BaseModel):
    """What a replay did: its parameters, windows and combined result (the flow's return value too)."""

    replay_id: str
    model_name: str
    replay_name: str
    config_source: str | None
    spec: ReplaySpec
    truncation_days: int
    data_version: str
    windows: list[WindowSummary]
    combined: dict[str, float]
    trained_windows: int
    reused_windows: int
    feature_builds: int
    seconds: dict[str, float]
    peak_mib: dict[str, float] = {}  # peak RSS: this flow's process, and summed over the worker processes
    finished_at: str
    record_path: str | None = None

    @property
    def model_ids(self) -> list[str]:
        return [w.model_id for w in self.windows]

    def table(self) -> list[dict[str, Any]]:
        """Per-window rows then the combined row (Prefect table artifact, CLI)."""
        rows: list[dict[str, Any]] = [
            {"window": w.index, "model_id": w.model_id, "train": " .. ".join(w.train), "test": " .. ".join(w.test),
             "ic": round(w.ic, 6), "rank_ic": round(w.rank_ic, 6), "days": w.test_days,
             "trained": "yes" if w.trained else "reused"}
            for w in self.windows
        ]
        c = self.combined
        rows.append({"window": "combined", "model_id": self.replay_name,
                     "train": "", "test": f"{self.windows[0].test[0]} .. {self.windows[-1].test[1]}",
                     "ic": round(c.get("ic_mean", math.nan), 6), "rank_ic": round(c.get("rank_ic", math.nan), 6),
                     "days": int(c.get("test_days", 0)), "trained": f"{self.trained_windows} trained"})
        return rows


def combine(results: list[WindowResult]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The windows' predictions and labels concatenated as Qlib's ``RollingEnsemble`` does."""
    from qlib.model.ens.ensemble import RollingEnsemble

    ensemble = RollingEnsemble()
    pred = ensemble({r.index: r.pred for r in results})
    label = ensemble({r.index: r.label for r in results})
    return pred, label


def evaluate_combined(plan: ReplayPlan, pred: pd.DataFrame, label: pd.DataFrame, logger: Any = None) -> dict[str, float]:
    """IC family and TopkDropout backtest of the combined predictions (Qlib initialised by the caller)."""
    import copy

    from tasks.core.qlib.evaluation import DEFAULT_PORT_ANALYSIS, portfolio_metrics, signal_metrics

    signal, _ = signal_metrics(pred, label)
    port_analysis = copy.deepcopy(plan.port_analysis or DEFAULT_PORT_ANALYSIS)
    port_analysis["backtest"].update(start_time=None, end_time=None)  # the combined predictions' span
    kwargs = {"log": logger} if logger is not None else {}
    portfolio, _ = portfolio_metrics(pred, None, None, port_analysis, **kwargs)  # type: ignore[arg-type]
    return {**signal, **portfolio, "test_days": float(pred.index.get_level_values("datetime").nunique())}


def build_record(
    plan: ReplayPlan, results: list[WindowResult], combined: dict[str, float], *, feature_builds: int,
    seconds: dict[str, float],
) -> ReplayRecord:
    """The replay's record from its windows' results (in window order)."""
    ordered = sorted(results, key=lambda r: r.index)
    windows = [
        WindowSummary(index=r.index, model_id=r.model_id, trained=r.trained, train=r.segments["train"],
                      test=r.segments["test"], ic=r.metrics.get("ic_mean", math.nan),
                      rank_ic=r.metrics.get("rank_ic", math.nan), test_days=int(r.metrics.get("test_days", 0)))
        for r in ordered
    ]
    trained = sum(1 for r in ordered if r.trained)
    per_process: dict[int, float] = {}
    for r in ordered:
        per_process[r.pid] = max(per_process.get(r.pid, 0.0), r.peak_mib)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    others = sum(v for pid, v in per_process.items() if pid != os.getpid())
    return ReplayRecord(
        replay_id=plan.replay_id, model_name=plan.model_name, replay_name=plan.replay_name,
        config_source=plan.config_source, spec=plan.spec, truncation_days=plan.truncation_days,
        data_version=plan.data_version, windows=windows, combined=combined, trained_windows=trained,
        reused_windows=len(ordered) - trained, feature_builds=feature_builds, seconds=seconds,
        peak_mib={"flow_process": round(own, 1), "worker_processes": round(others, 1)},
        finished_at=datetime.now(UTC).isoformat(),
    )


def window_seconds(results: list[WindowResult]) -> dict[str, float]:
    """Seconds summed over the windows per part (worker start-up, features, processors, fit, predict, register)."""
    return {part: round(sum(r.seconds.get(part, 0.0) for r in results), 3) for part in TIME_PARTS}


def replay_dir(settings: Settings, replay_id: str) -> Path:
    return (settings.registry_dir / "replays" / replay_id).expanduser().resolve()


def save_record(record: ReplayRecord, pred: pd.DataFrame, label: pd.DataFrame, settings: Settings) -> ReplayRecord:
    """Write the record and the combined predictions under the registry directory; returns the record with its path."""
    import pickle

    folder = replay_dir(settings, record.replay_id)
    folder.mkdir(parents=True, exist_ok=True)
    write_atomically(folder / "pred.pkl", lambda p: p.write_bytes(pickle.dumps(pred)))
    write_atomically(folder / "label.pkl", lambda p: p.write_bytes(pickle.dumps(label)))
    record = record.model_copy(update={"record_path": str(folder / "replay.json")})
    write_atomically(folder / "replay.json", lambda p: p.write_text(json.dumps(record.model_dump(mode="json"), indent=2)))
    return record


def load_record(settings: Settings, replay_id: str) -> ReplayRecord | None:
    """The recorded replay ``replay_id``, if it finished once."""
    path = replay_dir(settings, replay_id) / "replay.json"
    if not path.is_file():
        return None
    return ReplayRecord.model_validate_json(path.read_text())


def archive_replay(replay_id: str, settings: Settings, *, dry_run: bool = False, actor: str = "cleanup") -> list[str]:
    """Archive every unarchived window version of replay ``replay_id``; returns their ids in window order
    (semantic version order: window 10 after window 9)."""
    from tasks.core.lifecycle import open_registry

    registry = open_registry(settings)
    versions = registry.list_models(ModelFilter(tags={"replay_id": replay_id},
                                                status=[ModelStatus.REGISTERED, ModelStatus.CANDIDATE]))
    ids = [info.model_id for info in sorted(versions, key=lambda info: parse_version(info.version).sort_key)]
    if not dry_run:
        for model_id in ids:
            registry.set_model_status(model_id, ModelStatus.ARCHIVED, actor=actor, reason=f"replay {replay_id} archived")
    return ids
