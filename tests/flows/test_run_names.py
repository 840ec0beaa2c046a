"""Flow run names carry the start to the second, read back from the session's real Prefect server."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prefect import flow
from prefect.client.orchestration import get_client

from flows.predict import predict
from flows.run_names import stamped_run_name

pytestmark = [pytest.mark.flows, pytest.mark.usefixtures("prefect_server")]
STAMP = re.compile(r"(\d{4}-\d\d-\d\d-\d{6})$")


def _stored_name(flow_run_id: object) -> str:
    with get_client(sync_client=True) as client:
        return str(client.read_flow_run(flow_run_id).name)  # type: ignore[arg-type]


def _started(name: str) -> datetime:
    found = STAMP.search(name)
    assert found, name
    return datetime.strptime(found.group(1), "%Y-%m-%d-%H%M%S").replace(tzinfo=UTC)


@flow(flow_run_name=stamped_run_name("probe", "everything"))
def probe(model_name: str | None = None) -> None:
    return None


def test_a_named_run_carries_kind_name_and_start_and_an_unnamed_one_the_default() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    named = _stored_name(probe(model_name="alpha", return_state=True).state_details.flow_run_id)
    unnamed = _stored_name(probe(return_state=True).state_details.flow_run_id)
    after = datetime.now(UTC)

    assert named.startswith("probe-alpha-") and unnamed.startswith("probe-everything-")
    assert before <= _started(named) <= after and before <= _started(unnamed) <= after


def test_the_predict_flow_names_its_run_with_the_start_to_the_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QMP_REGISTRY_DIR", str(tmp_path / "registry"))
    before = datetime.now(UTC).replace(microsecond=0)
    state = predict(return_state=True)  # an empty registry: nothing to predict, nothing loaded

    assert state.is_completed(), state.message
    name = _stored_name(state.state_details.flow_run_id)
    assert name.startswith("predict-all-") and before <= _started(name) <= datetime.now(UTC)
