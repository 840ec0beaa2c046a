"""Serve every deployment of deployments/prefect.yaml from this one process (no work pool needed)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import yaml
from prefect import Flow, serve
from prefect.client.schemas.schedules import CronSchedule

PREFECT_YAML = Path(__file__).with_name("prefect.yaml")


def _load_flow(entrypoint: str) -> Flow[Any, Any]:
    path, _, name = entrypoint.partition(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    flow: Flow[Any, Any] = getattr(module, name)
    return flow


def _trigger(spec: dict[str, Any]) -> Any:
    """A deployment trigger of prefect.yaml, validated as `prefect deploy` validates it."""
    from prefect.events import DeploymentTriggerTypes
    from pydantic import TypeAdapter

    return TypeAdapter(DeploymentTriggerTypes).validate_python(spec)


def deployments_from_yaml(path: Path = PREFECT_YAML) -> list[Any]:
    """The same deployments, schedules and parameters as prefect.yaml, as runner deployments."""
    spec = yaml.safe_load(path.read_text())
    runners = []
    for entry in spec["deployments"]:
        schedules = [
            CronSchedule(cron=s["cron"], timezone=s.get("timezone"))
            for s in entry.get("schedules") or []
            if s.get("active", True)
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
            )
        )
    return runners


def main() -> None:
    """Block serving all deployments (Ctrl-C to stop)."""
    serve(*deployments_from_yaml())


if __name__ == "__main__":
    main()
