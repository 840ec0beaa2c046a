"""The rolling flow on a temporary Prefect server: resumable, idempotent under SIGKILL, parallel (processes, Dask).

The tests share one registry directory, so the replay's features are built once for the module; each
test replays under its own model name (a replay of its own).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from flows.retrain import WorkflowSource
from flows.rolling import ReplayRunner, rolling
from registry import ModelFilter, ModelRegistry, ModelStatus
from tasks.core.replay.plan import ReplaySpec
from tasks.core.replay.result import ReplayRecord, load_record
from tests.replay_data import HORIZON, STEP, WINDOWS, replay_config, synth_replay_data, write_config

pytestmark = [pytest.mark.flows, pytest.mark.qlib, pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]
ROOT = Path(__file__).resolve().parents[2]
SPEC = ReplaySpec(step=STEP, horizon=HORIZON, processors="fixed")


@pytest.fixture(scope="module")
def replay_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth_replay_data(tmp_path_factory.mktemp("rolling-data") / "qlib")


@pytest.fixture(scope="module")
def registry_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rolling-registry")


@pytest.fixture
def env(replay_data: Path, registry_dir: Path, monkeypatch: pytest.MonkeyPatch) -> ModelRegistry:
    monkeypatch.setenv("QMP_REGISTRY_DIR", str(registry_dir))
    monkeypatch.delenv("QMP_DATABASE_URL", raising=False)
    monkeypatch.delenv("QMP_PROVIDER_URI", raising=False)
    return ModelRegistry(registry_dir)


@pytest.fixture(scope="module")
def baseline(replay_data: Path, registry_dir: Path) -> ReplayRecord:
    """One full replay in this process (1 worker): the reference the other runs must reproduce."""
    os.environ["QMP_REGISTRY_DIR"] = str(registry_dir)
    try:
        return run("baseline", replay_data)
    finally:
        os.environ.pop("QMP_REGISTRY_DIR", None)


def run(name: str, data: Path, runner: ReplayRunner | None = None, spec: ReplaySpec = SPEC) -> ReplayRecord:
    return rolling(model_name=name, workflow=WorkflowSource(config=replay_config(data)), replay=spec,
                   runner=runner or ReplayRunner())


def windows_of(registry: ModelRegistry, replay_id: str) -> list[Any]:
    return registry.list_models(ModelFilter(tags={"replay_id": replay_id}, order_by="version", descending=False))


def test_a_replay_registers_every_window_once_and_records_the_combined_result(
    baseline: ReplayRecord, env: ModelRegistry
) -> None:
    assert len(baseline.windows) == WINDOWS and baseline.trained_windows == WINDOWS
    assert baseline.feature_builds == 1
    versions = windows_of(env, baseline.replay_id)
    assert [v.model_id for v in versions] == baseline.model_ids
    assert {v.status for v in versions} == {ModelStatus.REGISTERED}
    assert all(v.model_name == "baseline.replay-" + baseline.replay_id for v in versions)
    assert [v.tags["window_index"] for v in versions] == [str(i) for i in range(1, WINDOWS + 1)]
    assert versions[0].dataset_info is not None and versions[0].dataset_info.model_extra["segments"]["test"] == baseline.windows[0].test
    assert env.get_production_model("baseline") is None and env.list_models(ModelFilter(model_name="baseline")) == []
    assert {"ic_mean", "icir", "rank_ic", "annualized_return", "max_drawdown"} <= set(baseline.combined)
    recorded = load_record(env_settings(env), baseline.replay_id)
    assert recorded is not None and recorded.model_ids == baseline.model_ids
    assert recorded.combined["ic_mean"] == pytest.approx(baseline.combined["ic_mean"])
    with get_client(sync_client=True) as client:
        tables = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["replay-baseline"])))
    rows = json.loads(tables[0].data)
    assert [r["window"] for r in rows] == [*range(1, WINDOWS + 1), "combined"]


def env_settings(registry: ModelRegistry) -> Any:
    from registry.settings import load_settings

    return load_settings(registry_dir=registry.registry_dir)


def test_rerunning_a_replay_trains_only_the_windows_not_yet_registered(
    baseline: ReplayRecord, env: ModelRegistry, replay_data: Path
) -> None:
    again = run("baseline", replay_data)
    assert again.replay_id == baseline.replay_id
    assert (again.trained_windows, again.reused_windows, again.feature_builds) == (0, WINDOWS, 0)

    for model_id in baseline.model_ids[2:5]:
        env.delete_model(model_id, reason="test: a window lost")
    third = run("baseline", replay_data)
    assert third.trained_windows == 3
    assert [w.model_id for w in third.windows if w.trained] == baseline.model_ids[2:5]
    assert len(windows_of(env, baseline.replay_id)) == WINDOWS
    assert third.combined["ic_mean"] == pytest.approx(baseline.combined["ic_mean"], abs=1e-9)


def test_a_replay_killed_half_way_and_rerun_registers_each_window_exactly_once(
    baseline: ReplayRecord, env: ModelRegistry, replay_data: Path, tmp_path: Path
) -> None:
    from prefect.settings import PREFECT_API_URL

    config = write_config(replay_config(replay_data), tmp_path / "workflow.yaml")
    child_env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "QMP_REGISTRY_DIR": str(env.registry_dir)}
    child = subprocess.Popen(
        [sys.executable, "-c", "from deployments.cli import main; main()", "rolling", "--config", str(config), "--model-name", "killed",
         "--step", str(STEP), "--horizon", str(HORIZON), "--processors", "fixed"],
        cwd=ROOT, env=child_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and child.poll() is None:
            if len(env.list_models(ModelFilter(tags={"replay_of": "killed"}))) >= 2:
                break
            time.sleep(0.5)
        assert child.poll() is None, f"the replay ended before it was killed: {child.stderr.read()[-2000:]!r}"  # type: ignore[union-attr]
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    done_before = len(env.list_models(ModelFilter(tags={"replay_of": "killed"})))
    assert 2 <= done_before < WINDOWS

    record = run("killed", replay_data)

    assert record.trained_windows == WINDOWS - done_before
    versions = windows_of(env, record.replay_id)
    assert [v.version for v in versions] == [f"{i}.0.0" for i in range(1, WINDOWS + 1)]
    for version in versions:
        assert [e.event for e in env.history(model_id=version.model_id)] == ["registered"]
    assert record.combined["ic_mean"] == pytest.approx(baseline.combined["ic_mean"], abs=1e-9)


def test_two_worker_processes_give_the_same_replay(baseline: ReplayRecord, env: ModelRegistry, replay_data: Path) -> None:
    record = run("pool", replay_data, ReplayRunner(workers=2))
    assert record.trained_windows == WINDOWS
    # Each of the 2 workers gets 1 BLAS thread of the 2 cores (threads_per_window), the baseline's single process
    # BLAS's default 2: the ridge solve (ill-conditioned on 30 stocks) sums in another order, as on Dask below.
    assert record.combined["ic_mean"] == pytest.approx(baseline.combined["ic_mean"], abs=1e-4)
    assert [w.ic for w in record.windows] == pytest.approx([w.ic for w in baseline.windows], abs=1e-4)
    assert record.seconds["windows_startup"] > 0  # the windows ran in fresh worker processes


def test_a_dask_local_cluster_of_processes_gives_the_same_replay(
    baseline: ReplayRecord, env: ModelRegistry, replay_data: Path
) -> None:
    record = run("dask", replay_data, ReplayRunner(workers=2, dask_address="local"))
    assert record.trained_windows == WINDOWS
    # Dask's nanny runs its workers with one BLAS thread: the ridge solve (ill-conditioned on 30 stocks) sums in
    # another order, which moved the combined IC by 7e-6 here.
    assert record.combined["ic_mean"] == pytest.approx(baseline.combined["ic_mean"], abs=1e-4)


def test_cleanup_archives_a_whole_replay_and_models_list_shows_it(
    baseline: ReplayRecord, env: ModelRegistry, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.cli.test_qmp_models import qmp

    code, out, _ = qmp("models", "list", "--replay", baseline.replay_id, "--json", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0 and sorted(m["model_id"] for m in json.loads(out)) == sorted(baseline.model_ids)
    code, out, _ = qmp("cleanup", "--replay", baseline.replay_id, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0 and f"archived {WINDOWS} window versions" in out
    assert {v.status for v in windows_of(env, baseline.replay_id)} == {ModelStatus.ARCHIVED}


def test_worker_processes_share_the_cores_out() -> None:
    from flows.rolling import threads_per_window

    cores = os.cpu_count() or 1
    assert threads_per_window(ReplayRunner()) is None  # one process: the libraries' own default
    assert threads_per_window(ReplayRunner(workers=2)) == max(1, cores // 2)
    assert threads_per_window(ReplayRunner(workers=4 * cores)) == 1
    assert threads_per_window(ReplayRunner(workers=2, dask_address="local")) == 1
