"""`qmp serve` serves the same deployments, schedules and parameters as deployments/prefect.yaml."""

from __future__ import annotations

import yaml

from deployments.serve import PREFECT_YAML, deployments_from_yaml


def test_serve_builds_every_deployment_of_prefect_yaml_with_its_schedule_and_parameters() -> None:
    spec = yaml.safe_load(PREFECT_YAML.read_text())["deployments"]
    served = {d.name: d for d in deployments_from_yaml()}
    assert set(served) == {entry["name"] for entry in spec} == {"retrain-lgbm-alpha158", "cleanup-nightly", "rolling-linear-alpha158", "promote", "rollback"}
    for entry in spec:
        deployment = served[entry["name"]]
        crons = [(s.schedule.cron, s.schedule.timezone) for s in deployment.schedules or []]
        assert crons == [(s["cron"], s["timezone"]) for s in entry.get("schedules") or []]
        assert deployment.parameters == (entry.get("parameters") or {})
        assert deployment.enforce_parameter_schema


def test_retrain_defaults_in_prefect_yaml_are_valid_flow_parameters() -> None:
    from flows.retrain import ApprovalSettings, DataFreshness, WorkflowSource
    from registry.policy import PromotionPolicy
    from tasks.core.rolling import WindowSettings

    retrain = next(d for d in yaml.safe_load(PREFECT_YAML.read_text())["deployments"] if d["name"].startswith("retrain"))
    params = retrain["parameters"]
    WorkflowSource.model_validate(params["workflow"])
    PromotionPolicy.model_validate(params["policy"])
    ApprovalSettings.model_validate(params["approval"])
    assert WindowSettings.model_validate(params["windows"]).mode == "rolling"
    assert DataFreshness.model_validate(params["freshness"]).max_data_age_days == 5
    # Only the scheduled retrain is limited to one concurrent run; promote/rollback are serialized per name.
    assert retrain["concurrency_limit"] == 1
