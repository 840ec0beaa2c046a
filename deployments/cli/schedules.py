"""`qmp schedules on|off`: turn the schedules and the triggers (automations) of prefect.yaml's deployments on or
off on the Prefect server.

prefect.yaml ships its schedules inactive, so deploying (or serving) never starts training by itself; this is
the one command that turns them on, whichever way the deployments were created.
"""

from __future__ import annotations

from typing import Annotated

import typer

from deployments.cli.console import console
from tasks.core.errors import PipelineInputError

schedules_app = typer.Typer(help="Turn the deployments' schedules and triggers on or off on the Prefect server.",
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


def shipped_triggers(names: list[str] | None = None) -> list[str]:
    """The trigger names of prefect.yaml's deployments (of the named ones when given)."""
    import yaml

    from deployments.serve import PREFECT_YAML

    entries = yaml.safe_load(PREFECT_YAML.read_text())["deployments"]
    return [trigger["name"] for entry in entries if not names or entry["name"] in names
            for trigger in entry.get("triggers") or [] if trigger.get("name")]


def set_automations(active: bool, names: list[str] | None = None) -> list[str]:
    """Resume (or pause) the automations the deployments' triggers created; returns the ones found."""
    from prefect.client.orchestration import get_client

    found = []
    with get_client(sync_client=True) as client:
        for trigger in shipped_triggers(names):
            for automation in client.read_automations_by_name(trigger):
                if active:
                    client.resume_automation(automation.id)
                else:
                    client.pause_automation(automation.id)
                found.append(automation.name)
    return found


def _run(active: bool, names: list[str] | None) -> None:
    changed = set_schedules(active, names)
    state = "[green]on[/]" if active else "[yellow]off[/]"
    for name, cron, timezone in changed:
        console.print(f"{name}: schedule '{cron}' ({timezone or 'UTC'}) {state}", highlight=False)
    for automation in set_automations(active, names):
        console.print(f"trigger '{automation}' {state}", highlight=False)


@schedules_app.command("on")
def schedules_on(names: Names = None) -> None:
    """Activate the schedules and the triggers (the retrain then runs on weekdays and on drift, the cleanup nightly)."""
    _run(True, names)


@schedules_app.command("off")
def schedules_off(names: Names = None) -> None:
    """Deactivate the schedules and pause the triggers (runs can still be started by hand)."""
    _run(False, names)
