"""Fixtures for the web page's tests: a registry with a few names, versions, series and history; the app over it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient

from deployments.ui.app import create_app
from deployments.ui.settings import UISettings
from registry import EvaluationSeries, ModelMetadata, ModelRegistry
from registry.browse import REPLAY_TAG
from registry.series import CUMULATIVE_EXCESS_RETURN, DAILY_IC

PREFECT_UI = "http://prefect.example:4200"
SCRIPT = "<script>alert('x')</script>"


def series(days: int, scale: float, start: date = date(2020, 1, 2)) -> dict[str, EvaluationSeries]:
    dates = [start + timedelta(days=i) for i in range(days)]
    ic: list[float | None] = [scale * ((i * 37) % 11 - 4) / 10 for i in range(days)]
    ic[days // 2] = None  # a day whose IC is undefined leaves a gap
    total, cumulative = 0.0, []
    for i in range(days):
        total += scale * ((i * 13) % 7 - 3) / 100
        cumulative.append(total)
    return {DAILY_IC: EvaluationSeries(dates=dates, values=ic),
            CUMULATIVE_EXCESS_RETURN: EvaluationSeries(dates=dates, values=cumulative)}


def metrics(ic: float) -> dict[str, float]:
    return {"ic_mean": ic, "rank_ic": ic * 0.9, "icir": ic * 10, "annualized_return": ic * 3, "max_drawdown": -ic}


@dataclass
class Filled:
    """What `fill` registered: model ids per name, the production id per name, the waiting candidates."""

    ids: dict[str, list[str]]
    production: dict[str, str]
    waiting: list[str]


def fill(registry: ModelRegistry, names: int, versions: int, *, prefix: str = "m") -> Filled:
    """`names` names of `versions` versions each: the second promoted, the last awaiting approval, one replay
    version per name, the first version without series (registered before the registry kept them)."""
    ids: dict[str, list[str]] = {}
    production, waiting = {}, []
    for n in range(names):
        name = f"{prefix}{n}_alpha158"
        ids[name] = []
        for v in range(versions):
            meta = ModelMetadata(
                model_name=name, performance_metrics=metrics(0.01 + 0.005 * v), model_type="LGBModel",
                hyperparameters={"num_leaves": 31 + v, "learning_rate": 0.05},
                dataset_info={"instruments": "csi300", "start_time": "2015-01-01", "end_time": f"2020-0{1 + v % 9}-28",
                              "handler": "Alpha158", "segments": {"test": ["2020-01-01", "2020-06-30"]}},
                experiment_name=name, qlib_recorder_id=f"rec{n}{v}", tags={"source": "test"},
            )
            ids[name].append(registry.register_model({"n": n, "v": v}, meta, flow_run_id=f"00000000-0000-0000-0000-{n:06d}{v:06d}",
                                                     evaluation_series=series(30 + v, 1 + v) if v else None))
        if versions > 1:
            registry.set_production_model(ids[name][1], actor="alice", reason="beats the baseline")
            production[name] = ids[name][1]
        registry.record_event(ids[name][-1], "approval_requested", actor="retrain-flow", reason="needs a person",
                              flow_run_id=f"11111111-0000-0000-0000-{n:012d}", awaiting_approval=True)
        waiting.append(ids[name][-1])
        registry.register_model({"replay": n}, ModelMetadata(model_name=name, performance_metrics=metrics(0.02),
                                                             tags={REPLAY_TAG: "replay-2020"}))
    return Filled(ids, production, waiting)


def ui_settings(**values: object) -> UISettings:
    values.setdefault("prefect_ui_url", PREFECT_UI)
    values.setdefault("token", None)
    return UISettings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def filled(registry: ModelRegistry) -> Filled:
    return fill(registry, names=2, versions=3)


@pytest.fixture
def client(registry: ModelRegistry, filled: Filled) -> Iterator[TestClient]:
    with TestClient(create_app(ui_settings(), registry=registry), raise_server_exceptions=False) as test_client:
        yield test_client
