"""Fixtures for the web page's tests: a registry with a few names, versions, series and history; the app over it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from deployments.ui.app import create_app
from deployments.ui.settings import UISettings
from registry import Approvals, EvaluationSeries, ModelInfo, ModelMetadata, ModelRegistry, ModelStatus
from registry.models import DatasetConfig
from registry.policy import PromotionPolicy
from registry.replays import replay_model_name
from registry.series import CUMULATIVE_EXCESS_RETURN, DAILY_IC
from tests.conftest import IN_CI

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
    """What `fill` registered: model ids per name, the production id per name, the waiting candidates, and
    per name its replay's id and window versions' ids."""

    ids: dict[str, list[str]]
    production: dict[str, str]
    waiting: list[str]
    replays: dict[str, tuple[str, list[str]]]


def request_approval(registry: ModelRegistry, candidate: ModelInfo, production: ModelInfo | None,
                     reasons: list[str], flow_run_id: str | None = None, actor: str = "retrain-flow") -> None:
    """Ask for a person's decision the way the retrain flow does (`flows.approval.record_request`)."""
    Approvals(registry).request(
        candidate.model_id, production_model_id=production.model_id if production else None,
        candidate_metrics=candidate.performance_metrics,
        production_metrics=production.performance_metrics if production else None, reasons=reasons,
        policy=PromotionPolicy(approval="manual").model_dump(mode="json"), timeout=timedelta(hours=24),
        actor=actor, flow_run_id=flow_run_id,
    )


def register_replay(registry: ModelRegistry, name: str, replay_id: str, windows: int, ic: float = 0.02) -> list[str]:
    """The windows of a rolling replay of `name`, registered as `tasks.core.replay.window` does: under the
    replay's derived name, version = window index, the replay's tags, status `registered`."""
    replay_name = replay_model_name(name, replay_id)
    ids = []
    for index in range(1, windows + 1):
        test = [f"2021-{index:02d}-01", f"2021-{index:02d}-28"]
        segments = {"train": ["2015-01-01", f"2020-{index:02d}-28"], "valid": ["2020-10-01", "2020-12-31"], "test": test}
        metadata = ModelMetadata(
            model_name=replay_name, version=f"{index}.0.0", performance_metrics=metrics(ic + 0.001 * index),
            dataset_info=DatasetConfig(instruments="csi300", start_time=segments["train"][0], end_time=test[1],
                                       handler="Alpha158", segments=segments, fit_start_time=segments["train"][0],
                                       fit_end_time=segments["train"][1], data_version="v1", processors="refit"),
            hyperparameters={"num_leaves": 31}, model_type="LGBModel",
            tags={"source": "replay", "replay_id": replay_id, "replay_of": name, "window_index": str(index),
                  "processors": "refit"},
            description=f"window {index}/{windows} of replay {replay_id} of {name}",
        )
        model: Any = {"replay": replay_id, "window": index}
        ids.append(registry.register_model(model, metadata, actor="rolling-flow", reason=f"replay {replay_id}",
                                           initial_status=ModelStatus.REGISTERED))
    return ids


def fill(registry: ModelRegistry, names: int, versions: int, *, prefix: str = "m", replays_per_name: int = 1,
         replay_windows: int = 2) -> Filled:
    """`names` names of `versions` versions each: the second promoted, the last awaiting approval, rolling
    replays of each name, the first version without series (registered before the registry kept them)."""
    ids: dict[str, list[str]] = {}
    production, waiting, replays = {}, [], {}
    for n in range(names):
        name = f"{prefix}{n}_alpha158"
        ids[name] = []
        for v in range(versions):
            meta = ModelMetadata(
                model_name=name, performance_metrics=metrics(0.01 + 0.005 * v), model_type="LGBModel",
                hyperparameters={"num_leaves": 31 + v, "learning_rate": 0.05},
                dataset_info={"instruments": "csi300", "start_time": "2015-01-01", "end_time": f"2020-0{1 + v % 9}-28",
                              "handler": "Alpha158", "segments": {"test": ["2020-01-01", "2020-06-30"]}},
                experiment_name=name, qlib_recorder_id=f"rec{n}{v}",
                tags={"source": "test", "data_version": f"2020-0{1 + v % 9}-28/fingerprint{v}"},
            )
            ids[name].append(registry.register_model({"n": n, "v": v}, meta, flow_run_id=f"00000000-0000-0000-0000-{n:06d}{v:06d}",
                                                     evaluation_series=series(30 + v, 1 + v) if v else None))
        if versions > 1:
            registry.set_production_model(ids[name][1], actor="alice", reason="beats the baseline")
            production[name] = ids[name][1]
        request_approval(registry, registry.get_model_info(ids[name][-1]),
                         registry.get_production_model(name), ["needs a person"],
                         flow_run_id=f"11111111-0000-0000-0000-{n:012d}")
        waiting.append(ids[name][-1])
        for r in range(replays_per_name):  # the first one is the one `Filled.replays` names
            replay_id = f"{n:04d}{r:02d}abcdef"
            windows = register_replay(registry, name, replay_id, windows=replay_windows)
            replays.setdefault(name, (replay_id, windows))
    return Filled(ids, production, waiting, replays)


def ui_settings(**values: object) -> UISettings:
    values.setdefault("prefect_ui_url", PREFECT_UI)
    values.setdefault("token", None)
    values.setdefault("allowed_hosts", ["testserver"])  # the Host header of Starlette's TestClient
    return UISettings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def filled(registry: ModelRegistry) -> Filled:
    return fill(registry, names=2, versions=3)


@pytest.fixture
def client(registry: ModelRegistry, filled: Filled) -> Iterator[TestClient]:
    with TestClient(create_app(ui_settings(), registry=registry), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def chromium() -> Iterator[Callable[..., Any]]:
    """Launches Debian's chromium (Playwright cannot download its own browser here) with extra command-line
    arguments; every browser launched is closed when the module ends.

    Playwright's sync API marks its event loop as running in this thread for as long as it lives; Prefect's sync
    calls then return coroutines and `asyncio.run` refuses to start. A Playwright kept for the whole session (as
    pytest-playwright's own fixtures are: the plugin is switched off in pyproject.toml) breaks every flow test that
    runs after it on the same xdist worker: tests/conftest.py checks that no module leaves it running.
    """
    from playwright.sync_api import sync_playwright

    path = shutil.which("chromium")
    if path is None:
        if IN_CI:
            pytest.fail("the chromium package is required in CI (apt-get install -y chromium)")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    base = ["--no-sandbox"] if os.geteuid() == 0 else []  # chromium's sandbox refuses to run as root
    with sync_playwright() as playwright:
        launched: list[Any] = []

        def launch(*args: str) -> Any:
            launched.append(playwright.chromium.launch(executable_path=path, args=[*base, *args], headless=True))
            return launched[-1]

        yield launch
        for one in launched:
            one.close()


@pytest.fixture(scope="module")
def browser(chromium: Callable[..., Any]) -> Any:
    """One chromium for the module's tests."""
    return chromium()
