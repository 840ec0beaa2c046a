"""`qmp serve` serves the same deployments, schedules and parameters as deployments/prefect.yaml."""

from __future__ import annotations

import uuid

import yaml

from deployments.serve import PREFECT_YAML, deployments_from_yaml


def test_serve_builds_every_deployment_of_prefect_yaml_with_its_schedule_and_parameters() -> None:
    spec = yaml.safe_load(PREFECT_YAML.read_text())["deployments"]
    served = {d.name: d for d in deployments_from_yaml()}
    assert set(served) == {entry["name"] for entry in spec} == {"retrain-lgbm-alpha158", "predict-daily", "cleanup-nightly", "rolling-linear-alpha158", "promote", "rollback", "ingest-daily"}
    for entry in spec:
        deployment = served[entry["name"]]
        crons = [(s.schedule.cron, s.schedule.timezone) for s in deployment.schedules or []]
        assert crons == [(s["cron"], s["timezone"]) for s in entry.get("schedules") or []]
        assert [s.active for s in deployment.schedules or []] == [s["active"] for s in entry.get("schedules") or []]
        assert deployment.entrypoint_type.value == "module_path" and ":" not in (deployment.entrypoint or "")
        assert deployment.parameters == (entry.get("parameters") or {})
        assert deployment.enforce_parameter_schema


def test_retrain_defaults_in_prefect_yaml_are_valid_flow_parameters() -> None:
    from flows.retrain import ApprovalSettings, DataFreshness, WorkflowSource
    from registry.policy import PromotionPolicy
    from tasks.core.windows.schedule import WindowSettings

    retrain = next(d for d in yaml.safe_load(PREFECT_YAML.read_text())["deployments"] if d["name"].startswith("retrain"))
    params = retrain["parameters"]
    WorkflowSource.model_validate(params["workflow"])
    PromotionPolicy.model_validate(params["policy"])
    ApprovalSettings.model_validate(params["approval"])
    assert WindowSettings.model_validate(params["windows"]).mode == "rolling"
    assert DataFreshness.model_validate(params["freshness"]).max_data_age_days == 5
    # Only the scheduled retrain is limited to one concurrent run; promote/rollback are serialized per name.
    assert retrain["concurrency_limit"] == 1


def test_predict_runs_weekdays_after_the_retrain_and_when_a_model_is_promoted() -> None:
    spec = next(d for d in yaml.safe_load(PREFECT_YAML.read_text())["deployments"] if d["name"] == "predict-daily")
    assert spec["entrypoint"] == "flows/predict.py:predict"
    assert spec["schedules"] == [{"cron": "30 17 * * 1-5", "timezone": "Asia/Shanghai", "active": False}]
    served = next(d for d in deployments_from_yaml() if d.name == "predict-daily")
    trigger = next(t for t in served.triggers if t.name == "predict-after-promotion")
    assert trigger.expect == {"qmp.model.promoted"}
    assert trigger.parameters == {"model_name": "{{ event.payload.model_name }}", "top_k": 20}
    trigger.set_deployment_id(uuid.uuid4())
    automation = trigger.as_automation()
    assert automation.actions[0].type == "run-deployment"


def test_schedules_ship_inactive_and_descriptions_name_their_time_zone() -> None:
    spec = yaml.safe_load(PREFECT_YAML.read_text())["deployments"]
    scheduled = [entry for entry in spec if entry.get("schedules")]
    assert {entry["name"] for entry in scheduled} == {"retrain-lgbm-alpha158", "predict-daily", "cleanup-nightly",
                                                     "ingest-daily"}
    for entry in scheduled:
        for schedule in entry["schedules"]:
            assert schedule["active"] is False
            assert schedule["timezone"] in entry["description"]
        assert entry["concurrency_limit"] == 1
    readme = (PREFECT_YAML.parents[1] / "docs" / "deployments.md").read_text()
    assert "qmp schedules on" in readme and "inactive" in readme


def test_new_data_triggers_the_retrain_and_the_predictions_and_ships_disabled() -> None:
    served = {d.name: d for d in deployments_from_yaml()}
    for name, trigger_name in (("retrain-lgbm-alpha158", "retrain-on-new-data"),
                               ("predict-daily", "predict-on-new-data")):
        trigger = next(t for t in served[name].triggers if t.name == trigger_name)
        assert trigger.expect == {"qmp.data.updated"} and trigger.enabled is False
        trigger.set_deployment_id(uuid.uuid4())
        assert trigger.as_automation().actions[0].type == "run-deployment"
    assert "source" not in served["ingest-daily"].parameters  # the workspace feed (QMP_INGEST_SOURCE, $QMP_HOME/incoming)
