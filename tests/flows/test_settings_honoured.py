"""The artifact settings (QMP_ARTIFACT_URI, _STORAGE_OPTIONS, _COMPRESSION) reach the retrain flow and
`qmp cleanup`: every entry point opens the registry through `ModelRegistry.from_settings`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from deployments.cli import app
from flows.retrain import WorkflowSource, retrain
from registry import ModelMetadata, ModelRegistry, ModelStatus
from tests.flows.retrain_runs import WEAK
from tests.storage.conftest import BUCKET

pytestmark = [pytest.mark.flows, pytest.mark.qlib, pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]


def test_retrain_writes_to_the_configured_bucket_compressed_and_cleanup_purges_there(
    tmp_path: Path, flow_data: Path, mlflow_uri: str, s3_options: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
) -> None:
    import fsspec

    uri = f"s3://{BUCKET}/settings-{tmp_path.name}"
    local = tmp_path / "registry"
    for key, value in {
        "QMP_REGISTRY_DIR": str(local), "QMP_DATABASE_URL": f"sqlite:///{tmp_path / 'registry.db'}",
        "QMP_ARTIFACT_URI": uri, "QMP_ARTIFACT_STORAGE_OPTIONS": json.dumps(s3_options),
        "QMP_ARTIFACT_COMPRESSION": "gzip", "QMP_PROVIDER_URI": str(flow_data), "QMP_MLFLOW_URI": mlflow_uri,
    }.items():
        monkeypatch.setenv(key, value)

    result = retrain(model_name="s3_model", workflow=WorkflowSource(config_path=str(WEAK)))
    bucket = fsspec.filesystem("s3", **s3_options)
    with ModelRegistry.from_settings() as registry:
        info = registry.get_model_info(result.model_id)
        assert info.artifact_location == f"{uri}/{result.model_id}"
        assert info.compression == "gzip" and info.original_size and info.original_size > info.size_bytes
        assert bucket.exists(f"{uri}/{result.model_id}/model.pkl")
        assert not (local / result.model_id).exists()
        # Two later production models, so the flow's model is neither production nor the rollback target.
        for n in (1, 2):
            registry.set_production_model(registry.register_model({"later": n}, ModelMetadata(model_name="s3_model")))
        registry.set_model_status(result.model_id, ModelStatus.ARCHIVED)

    outcome = CliRunner().invoke(app, ["cleanup", "--purge-archived-after-days", "0", "--max-age-days", "100000"])
    assert outcome.exit_code == 0, outcome.output
    bucket.invalidate_cache()
    assert not bucket.exists(f"{uri}/{result.model_id}/model.pkl")
    assert bucket.exists(f"{uri}/{result.model_id}/metadata.json")
