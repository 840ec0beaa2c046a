"""The stale-approval check on real Qlib models: a new production model is re-scored on the waiting candidate's
window with the shared scoring function and evaluation, never judged by metrics recorded on other days."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from registry import Approvals, ModelMetadata, ModelRegistry
from registry.approvals import EvaluatedOn
from registry.policy import PromotionPolicy
from registry.settings import Settings, load_settings
from tasks.core.approvals.requests import check_still_better, take_answer
from tasks.core.qlib.evaluation import prediction_metrics, raw_label
from tasks.core.qlib.scoring import score_registered_model
from tasks.core.qlib.training import qlib_step
from tests.qlib.conftest import Trained, register_trained

pytestmark = [pytest.mark.qlib, pytest.mark.slow]
MANUAL = PromotionPolicy(approval="manual").model_dump(mode="json")
# Recorded metrics deliberately contradicting the models' real skill: the check must not read them.
MISLEADING_HIGH, MISLEADING_LOW = 0.9, -0.9


@pytest.fixture
def registry(tmp_path: Path, qlib_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelRegistry]:
    """A registry of its own; the recorders live in the session's MLflow store (found through the settings)."""
    reg = ModelRegistry(tmp_path / "registry")
    monkeypatch.setenv("QMP_REGISTRY_DIR", str(reg.registry_dir))
    monkeypatch.setenv("QMP_MLFLOW_URI", qlib_settings.resolved_mlflow_uri())
    monkeypatch.delenv("QMP_PROVIDER_URI", raising=False)
    yield reg
    reg.close()


# Production registered as trained before the candidate's window, so all of the window counts; a production
# model trained into it is judged on the days after (the last test here).
EARLIER = "2022-04-20"


def _waiting(registry: ModelRegistry, trained: Trained, name: str, qlib_data: Path | None) -> str:
    """A candidate awaiting approval, asked while there was no production model."""
    candidate = register_trained(registry, trained, name)
    evaluated_on = EvaluatedOn(segment="test", provider_uri=str(qlib_data)) if qlib_data else None
    Approvals(registry).request(
        candidate, production_model_id=None, candidate_metrics=registry.get_model_info(candidate).performance_metrics,
        production_metrics=None, reasons=["no production model"], policy=MANUAL, timeout=timedelta(hours=1),
        evaluated_on=evaluated_on,
    )
    return candidate


def _window(trained: Trained) -> tuple[pd.Timestamp, pd.Timestamp]:
    days = raw_label(trained.dataset, "test").index.get_level_values("datetime")
    return days.min(), days.max()


def _text(window: tuple[pd.Timestamp, pd.Timestamp]) -> str:
    return f"{window[0]:%Y-%m-%d}..{window[1]:%Y-%m-%d}"


def test_the_models_differ_in_skill_on_the_test_window(lightgbm: Trained, shuffled: Trained) -> None:
    assert lightgbm.metrics["ic_mean"] > shuffled.metrics["ic_mean"] + 0.01


def test_production_changed_to_a_better_model_on_the_candidates_window_refuses_the_approval(
    registry: ModelRegistry, lightgbm: Trained, shuffled: Trained, qlib_data: Path, qlib_settings: Settings
) -> None:
    candidate = _waiting(registry, shuffled, "stale_up", qlib_data)
    better = register_trained(registry, lightgbm, "stale_up", ic_mean=MISLEADING_LOW, valid_end=EARLIER)
    registry.set_production_model(better, reason="another promotion while the candidate waited")

    check = check_still_better(Approvals(registry).require(candidate), registry, settings=load_settings())

    # The same numbers, computed independently: the shared scoring function, then the shared evaluation
    # against the candidate's own raw label, on the candidate's test days.
    start, end = _window(shuffled)
    scores = score_registered_model(better, start, end, registry=registry, settings=qlib_settings,
                                    provider_uri=qlib_data)
    with qlib_step(None):
        expected, _, _ = prediction_metrics(scores.to_frame("score"), raw_label(shuffled.dataset, "test"),
                                            lightgbm.result.model, shuffled.dataset, shuffled.cfg, "test")
    assert check.production_changed and not check.still_better and not check.ok
    assert check.current_production_id == better and check.production_unscored is None
    assert check.window == _text((start, end))
    assert check.production_metrics_on_window == pytest.approx(expected, rel=1e-12, nan_ok=True)
    assert not math.isclose(check.production_metrics_on_window["ic_mean"], MISLEADING_LOW)
    candidate_ic = shuffled.metrics["ic_mean"]
    summary = check.summary()
    assert f"window {_text((start, end))}" in summary
    assert f"not better: ic_mean {candidate_ic:.6g} vs production {expected['ic_mean']:.6g}" in summary

    outcome = take_answer(registry, candidate, "approve", approver="alice", close_on_stale=False,
                          settings=load_settings())
    assert not outcome.decided and outcome.refusal is not None
    assert f"{candidate} no longer beats production" in outcome.refusal and _text((start, end)) in outcome.refusal
    assert Approvals(registry).require(candidate).pending  # the CLI's check leaves it open for a reject or --force
    assert registry.get_production_model("stale_up").model_id == better  # type: ignore[union-attr]

    forced = take_answer(registry, candidate, "approve", approver="alice", comment="regime change", force=True,
                         close_on_stale=False, settings=load_settings())
    assert forced.decided and forced.approval.forced and forced.check is not None and not forced.check.ok


def test_production_changed_to_a_worse_model_on_the_candidates_window_passes(
    registry: ModelRegistry, lightgbm: Trained, shuffled: Trained, qlib_data: Path
) -> None:
    candidate = _waiting(registry, lightgbm, "stale_down", qlib_data)
    worse = register_trained(registry, shuffled, "stale_down", ic_mean=MISLEADING_HIGH, valid_end=EARLIER)
    registry.set_production_model(worse, reason="a rollback while the candidate waited")

    check = check_still_better(Approvals(registry).require(candidate), registry, settings=load_settings())

    assert check.production_changed and check.still_better and check.ok
    assert check.window == _text(_window(lightgbm))
    on_window = check.production_metrics_on_window["ic_mean"]
    assert on_window < lightgbm.metrics["ic_mean"] and not math.isclose(on_window, MISLEADING_HIGH)
    assert f"better: ic_mean {lightgbm.metrics['ic_mean']:.6g} vs production {on_window:.6g}" in check.summary()
    outcome = take_answer(registry, candidate, "approve", approver="bob", close_on_stale=True, settings=load_settings())
    assert outcome.decided and outcome.approval.decided_by == "bob" and not outcome.approval.forced


def test_a_production_model_that_cannot_be_scored_fails_the_check_naming_the_window(
    registry: ModelRegistry, lightgbm: Trained, qlib_data: Path
) -> None:
    candidate = _waiting(registry, lightgbm, "stale_unscored", qlib_data)
    stand_in = registry.register_model(
        {"stand-in": True}, ModelMetadata(model_name="stale_unscored", performance_metrics={"ic_mean": -0.5})
    )
    registry.set_production_model(stand_in, reason="a model registered by hand")

    check = check_still_better(Approvals(registry).require(candidate), registry, settings=load_settings())

    # Its recorded ic_mean (-0.5) would let the candidate through: without a score on the window it does not pass.
    assert check.production_changed and not check.ok and check.production_unscored
    assert "has no Qlib recorder" in check.production_unscored
    assert check.window == _text(_window(lightgbm))
    assert f"could not be scored on the candidate's window {check.window}" in check.summary()
    assert check.verdict == "cannot be shown to beat production"


def test_a_request_recorded_without_its_evaluation_is_checked_on_the_candidates_test_segment(
    registry: ModelRegistry, lightgbm: Trained, shuffled: Trained, qlib_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    candidate = _waiting(registry, shuffled, "stale_old_row", None)
    assert Approvals(registry).require(candidate).evaluated_on is None
    better = register_trained(registry, lightgbm, "stale_old_row", valid_end=EARLIER)
    registry.set_production_model(better, reason="another promotion")

    without_data = check_still_better(Approvals(registry).require(candidate), registry, settings=load_settings())
    assert not without_data.ok and "QMP_PROVIDER_URI" in (without_data.production_unscored or "")

    monkeypatch.setenv("QMP_PROVIDER_URI", str(qlib_data))
    check = check_still_better(Approvals(registry).require(candidate), registry, settings=load_settings())
    assert check.production_unscored is None and not check.ok
    assert check.window == _text(_window(shuffled))


def test_a_production_model_trained_into_the_window_is_judged_with_the_candidate_on_the_days_after(
    registry: ModelRegistry, lightgbm: Trained, shuffled: Trained, qlib_data: Path
) -> None:
    candidate = _waiting(registry, shuffled, "stale_overlap", qlib_data)
    better = register_trained(registry, lightgbm, "stale_overlap", valid_end="2022-06-30")
    registry.set_production_model(better, reason="another promotion")

    check = check_still_better(Approvals(registry).require(candidate), registry, settings=load_settings())

    start, end = _window(shuffled)
    first, last = check.window.split("..")
    assert check.production_unscored is None and first > "2022-06-30" and last == f"{end:%Y-%m-%d}"
    assert f"inside the candidate's window {_text((start, end))}" in check.summary()
    assert "both models compared on the" in check.summary() and not check.ok
