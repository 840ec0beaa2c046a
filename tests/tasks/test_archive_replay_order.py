"""`qmp cleanup --replay`'s report names the window versions in window order (semantic, not string order)."""

from __future__ import annotations

from pathlib import Path

from registry import ModelRegistry, ModelStatus
from registry.settings import Settings
from tasks.core.replay.result import archive_replay
from tests.ui.conftest import register_replay


def test_archived_window_versions_are_reported_in_numeric_order(tmp_path: Path) -> None:
    settings = Settings(registry_dir=tmp_path / "registry")  # type: ignore[call-arg]
    with ModelRegistry.from_settings(settings) as registry:
        ids = register_replay(registry, "ordered", "0123456789ab", windows=11)
    planned = archive_replay("0123456789ab", settings, dry_run=True)
    assert planned == ids  # ..._v1.0.0, ..._v2.0.0, ..., ..._v9.0.0, ..._v10.0.0, ..._v11.0.0
    assert planned[-1].endswith("_v11.0.0") and planned[0].endswith("_v1.0.0")
    assert archive_replay("0123456789ab", settings) == ids
    with ModelRegistry.from_settings(settings) as registry:
        assert {registry.get_model_info(i).status for i in ids} == {ModelStatus.ARCHIVED}
