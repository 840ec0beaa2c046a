"""`qmp schedules on|off`: turn the schedules and the triggers (automations) of prefect.yaml's deployments on or
off on the Prefect server.

prefect.yaml ships its schedules inactive, so deploying (or serving) never starts training by itself; this is
the one command that turns them on, whichever way the deployments were created.
"""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

import typer

from deployments import prefect_yaml_entries
from deployments.cli.console import console
from tasks.core.errors import PipelineError, PipelineInputError

schedules_app = typer.Typer(help="Turn the deployments' schedules and triggers on or off on the Prefect server.",
                            no_args_is_help=True)
Names = Annotated[list[str] | None, typer.Argument(help="Deployment names; default: every one of prefect.yaml.")]


class NotServed(PipelineError):
    """Deployments of prefect.yaml that were still not on the server when `--wait` ran out."""


def _read_until_all_there(client: Any, wanted: list[str], wait_s: float) -> list[Any]:
    """The wanted deployments on the server, read again every second up to ``wait_s`` until all are served."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    deadline = time.monotonic() + wait_s
    while True:
        found = client.read_deployments(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=wanted)))
        # Paused: left by a `qmp serve` that stopped; the next one unpauses them as it registers them again
        # (and sets their schedules as prefect.yaml ships them: inactive).
        missing = sorted(set(wanted) - {deployment.name for deployment in found if not deployment.paused})
        if not wait_s or not missing:
            return list(found)
        if time.monotonic() >= deadline:
            raise NotServed(f"{', '.join(missing)} not served on {client.api_url} after {wait_s:g} s (missing or "
                            "paused): is `qmp serve` running with this PREFECT_API_URL?")
        time.sleep(1)


def set_schedules(active: bool, names: list[str] | None = None,
                  wait_s: float = 0) -> list[tuple[str, str, str | None]]:
    """Set `active` on every schedule of the named deployments, waiting up to ``wait_s`` for all of them to be
    served; returns (deployment, cron, time zone) changed."""
    from prefect.client.orchestration import get_client

    shipped = _shipped_names()
    unknown = sorted(set(names or []) - set(shipped))
    if unknown:
        raise PipelineInputError(f"not a deployment of prefect.yaml: {', '.join(unknown)} (known: {', '.join(shipped)})")
    wanted = names or shipped
    changed = []
    with get_client(sync_client=True) as client:
        found = _read_until_all_there(client, wanted, wait_s)
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


def _shipped_names() -> list[str]:
    return [entry["name"] for entry in prefect_yaml_entries()]


def shipped_triggers(names: list[str] | None = None) -> list[str]:
    """The trigger names of prefect.yaml's deployments (of the named ones when given)."""
    entries = prefect_yaml_entries()
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


def _without_iri_grammars() -> None:
    """Keep jsonschema (imported by Prefect) from building its optional IRI format checker: with rfc3987-syntax
    installed (jupyter-events brings it) that compiles 38 Lark grammars, 1.7 s of the command's 4.7; nothing here
    validates IRIs."""
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]  # None: `import` raises ImportError


def _run(active: bool, names: list[str] | None, wait_s: float = 0) -> None:
    _without_iri_grammars()
    changed = set_schedules(active, names, wait_s)
    state = "[green]on[/]" if active else "[yellow]off[/]"
    for name, cron, timezone in changed:
        console.print(f"{name}: schedule '{cron}' ({timezone or 'UTC'}) {state}", highlight=False)
    for automation in set_automations(active, names):
        console.print(f"trigger '{automation}' {state}", highlight=False)


@schedules_app.command("on")
def schedules_on(
    names: Names = None,
    wait: Annotated[float, typer.Option(min=0, metavar="SECONDS", help=(
        "Wait up to SECONDS for every deployment (or the named ones) to be served (on the server and not "
        "paused, as `qmp serve` registers them) before turning them on; one line naming the missing ones if not."))] = 0,
) -> None:
    """Activate the schedules and the triggers (the retrain then runs on weekdays and on drift, the cleanup nightly)."""
    _run(True, names, wait)


@schedules_app.command("off")
def schedules_off(names: Names = None) -> None:
    """Deactivate the schedules and pause the triggers (runs can still be started by hand)."""
    _run(False, names)
