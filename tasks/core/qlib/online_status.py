"""Qlib's own notion of production: the recorder tag `online_status` that OnlineToolR reads."""

from __future__ import annotations

import logging

from registry import ModelInfo
from registry.settings import Settings

ONLINE_KEY = "online_status"  # the tag name qlib.workflow.online.utils.OnlineToolR uses
ONLINE, OFFLINE = "online", "offline"
_log = logging.getLogger(__name__)


def sync_online_tags(new: ModelInfo, old: ModelInfo | None, settings: Settings) -> None:
    """Tag the new production model's recorder `online` and the old one's `offline`."""
    if not any(info is not None and info.qlib_recorder_id for info in (new, old)):
        return  # nothing to tag: MLflow is not even imported
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=settings.resolved_mlflow_uri())
    for info, tag in ((old, OFFLINE), (new, ONLINE)):
        if info is None or not info.qlib_recorder_id:
            continue
        try:
            # A Qlib recorder id is the MLflow run id, so this is what OnlineToolR.set_online_tag does.
            client.set_tag(info.qlib_recorder_id, ONLINE_KEY, tag)
        except MlflowException as exc:
            _log.warning("could not tag recorder %s of %s %s: %s", info.qlib_recorder_id, info.model_id, tag, exc)
