"""The retrain deployment's drift trigger: shipped disabled, and `qmp schedules on|off` resumes and pauses it."""

from __future__ import annotations

import uuid

import pytest
import yaml
from prefect.client.orchestration import get_client

from deployments.cli.schedules import set_automations, shipped_triggers
from deployments.serve import PREFECT_YAML, deployments_from_yaml
from tasks.core.windows.schedule import WindowSettings


def _retrain_spec() -> dict[str, object]:
    return next(d for d in yaml.safe_load(PREFECT_YAML.read_text())["deployments"] if d["name"].startswith("retrain"))


def test_a_drift_of_the_deployments_name_starts_a_retrain_on_a_short_test_segment_shipped_disabled() -> None:
    served = next(d for d in deployments_from_yaml() if d.name.startswith("retrain"))
    (trigger,) = [t for t in served.triggers if t.name == "retrain-on-drift"]
    assert trigger.expect == {"qmp.model.drift"} and trigger.enabled is False
    assert trigger.match.model_dump().get("qmp.model-name") == "lgbm_alpha158"
    shipped = WindowSettings.model_validate(_retrain_spec()["parameters"]["windows"])  # type: ignore[index]
    on_drift = WindowSettings.model_validate(trigger.parameters["windows"])
    assert on_drift.mode == "rolling" and on_drift.test_days == 20 < shipped.test_days
    assert on_drift != shipped  # another configuration hash: the no-new-data gate runs it once per data version


@pytest.mark.usefixtures("prefect_server")
def test_schedules_on_and_off_resume_and_pause_the_shipped_triggers_automations() -> None:
    assert "retrain-on-drift" in shipped_triggers() and shipped_triggers(["cleanup-nightly"]) == []
    served = next(d for d in deployments_from_yaml() if d.name.startswith("retrain"))
    (trigger,) = [t for t in served.triggers if t.name == "retrain-on-drift"]
    trigger.set_deployment_id(uuid.uuid4())
    with get_client(sync_client=True) as client:
        automation_id = client.create_automation(trigger.as_automation())
        assert client.read_automation(automation_id).enabled is False
        assert "retrain-on-drift" in set_automations(True, ["retrain-lgbm-alpha158"])
        assert client.read_automation(automation_id).enabled is True
        set_automations(False)
        assert client.read_automation(automation_id).enabled is False
