"""`qmp schedules on|off`: turn the schedules of prefect.yaml's deployments on or off on the Prefect server.

prefect.yaml ships its schedules inactive, so deploying (or serving) never starts training by itself; this is
the one command that turns them on, whichever way the deployments were created.
"""

from __future__ import annotations

from typing import Annotated

import typer

from deployments.cli.console import console
from tasks.core.errors import PipelineInputError

schedules_app = typer.Typer(help="Turn the deployments' schedules on or off on the Prefect server.",
                            no_args_is_help=True)
Names = Annotated[list[str] | None, typer.Argument(help="Deployment names; default: every one of prefect.yaml.")]


def set_schedules(active: bool, names: list[str] | None = None) -> list[tuple[str, str, str | None]]:
    """Set `active` on every schedule of the named deployments; returns (deployment, cron, time zone) changed."""
    import yaml
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    from deployments.serve import PREFECT_YAML

    shipped = [entry["name"] for entry in yaml.safe_load(PREFECT_YAML.read_text())["deployments"]]
    unknown = sorted(set(names or []) - set(shipped))
    if unknown:
        raise PipelineInputError(f"not a deployment of prefect.yaml: {', '.join(unknown)} (known: {', '.join(shipped)})")
    wanted = names or shipped
    changed = []
    with get_client(sync_client=True) as client:
        found = client.read_deployments(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=wanted)))
        if not found:
            raise PipelineInputError(f"none of {', '.join(wanted)} is deployed on {client.api_url}: run `qmp serve` or "
                             "`prefect deploy --prefect-file deployments/prefect.yaml --all` first")
        for deployment in found:
            for schedule in deployment.schedules:
                if schedule.active != active:
                    client.update_deployment_schedule(deployment.id, schedule.id, active=active)
                cron = getattr(schedule.schedule, "cron", str(schedule.schedule))
                changed.append((deployment.name, cron, getattr(schedule.schedule, "timezone", None)))
    return changed


def set_data_triggers(active: bool, names: list[str] | None = None) -> list[tuple[str, str]]:
    """Enable or disable the automations of the shipped-disabled event triggers (new data starts the retrain and
    the predictions) of the named deployments; returns (deployment, trigger) changed."""
    import yaml
    from prefect.client.orchestration import get_client

    from deployments.serve import PREFECT_YAML

    wanted = [(entry["name"], trigger["name"]) for entry in yaml.safe_load(PREFECT_YAML.read_text())["deployments"]
              for trigger in entry.get("triggers") or [] if trigger.get("enabled") is False
              and (not names or entry["name"] in names)]
    changed = []
    with get_client(sync_client=True) as client:
        for deployment, trigger in wanted:
            for automation in client.read_automations_by_name(trigger):
                if automation.enabled != active:
                    (client.resume_automation if active else client.pause_automation)(automation.id)
                changed.append((deployment, trigger))
    return changed


def _run(active: bool, names: list[str] | None) -> None:
    changed = set_schedules(active, names)
    state = "[green]on[/]" if active else "[yellow]off[/]"
    for name, cron, timezone in changed:
        console.print(f"{name}: schedule '{cron}' ({timezone or 'UTC'}) {state}", highlight=False)
    for name, trigger in set_data_triggers(active, names):
        console.print(f"{name}: trigger '{trigger}' {state}", highlight=False)


@schedules_app.command("on")
def schedules_on(names: Names = None) -> None:
    """Activate the schedules (the retrain then runs on weekdays, the cleanup nightly)."""
    _run(True, names)


@schedules_app.command("off")
def schedules_off(names: Names = None) -> None:
    """Deactivate the schedules (runs can still be started by hand)."""
    _run(False, names)
