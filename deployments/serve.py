"""Serve every deployment of deployments/prefect.yaml from this one process (no work pool needed).

The flows are imported from the installed packages (module entrypoints), so `qmp serve` works from any
directory and from a non-editable install. `qmp serve` and `prefect deploy` are alternatives: a deployment of
the same name that `prefect deploy` created (it has a work pool) is never overwritten by this one.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import yaml
from prefect import Flow, serve
from prefect.client.orchestration import get_client
from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.exceptions import ObjectNotFound
from prefect.schedules import Cron

from tasks.core.errors import PipelineError

PREFECT_YAML = Path(__file__).with_name("prefect.yaml")


class ServeConflict(PipelineError):
    """A deployment `qmp serve` would register already exists as a work-pool deployment."""


def _load_flow(entrypoint: str) -> Flow[Any, Any]:
    """`flows/retrain.py:retrain` imported as the module `flows.retrain`, never as a file of the cwd."""
    path, _, name = entrypoint.partition(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    flow: Flow[Any, Any] = getattr(module, name)
    return flow


def _trigger(spec: dict[str, Any]) -> Any:
    """A deployment trigger of prefect.yaml, validated as `prefect deploy` validates it."""
    from prefect.events import DeploymentTriggerTypes
    from pydantic import TypeAdapter

    return TypeAdapter(DeploymentTriggerTypes).validate_python(spec)


def deployments_from_yaml(path: Path = PREFECT_YAML) -> list[RunnerDeployment]:
    """The same deployments, schedules (active or not) and parameters as prefect.yaml, as runner deployments."""
    spec = yaml.safe_load(path.read_text())
    runners = []
    for entry in spec["deployments"]:
        schedules = [
            Cron(s["cron"], timezone=s.get("timezone"), active=s.get("active", True), slug=s.get("slug"))
            for s in entry.get("schedules") or []
        ]
        runners.append(
            _load_flow(entry["entrypoint"]).to_deployment(
                name=entry["name"],
                description=entry.get("description"),
                schedules=schedules or None,
                parameters=entry.get("parameters") or {},
                concurrency_limit=entry.get("concurrency_limit"),
                enforce_parameter_schema=entry.get("enforce_parameter_schema", True),
                triggers=[_trigger(spec) for spec in entry.get("triggers") or []] or None,
                entrypoint_type=EntrypointType.MODULE_PATH,
            )
        )
    return runners


def refuse_work_pool_deployments(runners: list[RunnerDeployment]) -> None:
    """Raise ServeConflict when `prefect deploy` already created one of these deployments on the server."""
    taken = []
    with get_client(sync_client=True) as client:
        for runner in runners:
            full_name = f"{runner.flow_name}/{runner.name}"
            try:
                existing = client.read_deployment_by_name(full_name)
            except ObjectNotFound:
                continue
            if existing.work_pool_name:
                taken.append((full_name, existing.work_pool_name))
        api = client.api_url
    if taken:
        names = " ".join(f"'{name}'" for name, _ in taken)
        pools = ", ".join(sorted({pool for _, pool in taken}))
        raise ServeConflict(
            f"{len(taken)} deployment(s) of prefect.yaml already exist on {api} from `prefect deploy` (work pool "
            f"{pools}); `qmp serve` and `prefect deploy` are alternatives: start a worker (`prefect worker start "
            f"--pool {pools}`), or delete them first (`prefect deployment delete` {names}) and serve again"
        )


def main() -> None:
    """Block serving all deployments (Ctrl-C to stop)."""
    # Flow runs start in fresh interpreters; without the cwd on their sys.path a directory of the cwd named
    # like one of our packages (a `registry/` data folder, say) cannot shadow the installed package.
    os.environ.setdefault("PYTHONSAFEPATH", "1")
    runners = deployments_from_yaml()
    refuse_work_pool_deployments(runners)
    serve(*runners)


if __name__ == "__main__":
    main()
