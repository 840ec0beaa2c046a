"""Serve every deployment of deployments/prefect.yaml from this one process (no work pool needed).

The flows are imported from the installed packages (module entrypoints), so `qmp serve` works from any
directory and from a non-editable install. `qmp serve` and `prefect deploy` are alternatives: a deployment of
the same name that `prefect deploy` created (it has a work pool) is never overwritten by this one.

While serving, the server's health is checked every second: when its port refuses connections (the server is
gone; a slow or busy one is not), `qmp serve` stops within a few seconds with one line (Prefect's runner alone
retries for minutes and ends in a traceback). On Ctrl-C or SIGTERM it pauses its deployments, as Prefect's `serve`
does, unless the server is gone; then it says so instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import anyio
import anyio.to_thread
import httpx
from prefect import Flow
from prefect.client.orchestration import get_client
from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.exceptions import ObjectNotFound
from prefect.runner import Runner
from prefect.schedules import Cron
from prefect.settings import PREFECT_API_REQUEST_TIMEOUT, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

from deployments import PREFECT_YAML, prefect_yaml_entries
from tasks.core.errors import PipelineError

HEALTH_EVERY_S = 1.0  # how often the server's health is checked while serving
# Refused connections in a row after which the server counts as gone. Only a refused connection counts: a busy
# server (a slow answer, a 503 while its SQLite file is locked) is still there, and so is one this process's
# own event loop was too busy to hear from in time.
GONE_AFTER = 3
HEALTH_TIMEOUT_S = 10.0
PAUSE_WITHIN_S = 15.0


class ServeConflict(PipelineError):
    """A deployment `qmp serve` would register already exists as a work-pool deployment."""


class ServerGone(PipelineError):
    """The Prefect server went away (its port refuses connections) while `qmp serve` ran."""


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
    runners = []
    for entry in prefect_yaml_entries(path):
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


def refuses(api: str) -> bool:
    """Whether nothing listens at ``api`` any more (a refused connection; a slow or busy server is there)."""
    try:
        httpx.get(f"{api}/health", timeout=HEALTH_TIMEOUT_S)
    except httpx.ConnectError:
        return True
    except httpx.HTTPError:
        return False
    return False


async def _watch(api: str, scope: anyio.CancelScope, gone: list[bool]) -> None:
    """Cancel ``scope`` once the server refused GONE_AFTER health checks in a row (:func:`refuses`, in a thread
    left behind when serving stops, so that a slow check never delays the stop)."""
    refused = 0
    while refused < GONE_AFTER:
        await anyio.sleep(HEALTH_EVERY_S)
        refused = refused + 1 if await anyio.to_thread.run_sync(refuses, api, abandon_on_cancel=True) else 0
    gone.append(True)
    scope.cancel()


class _Runner(Runner):
    """Prefect's runner, stopped by SIGTERM from its event loop, as by Ctrl-C (Prefect's own handler exits from
    inside whichever coroutine is running, which a task group reports as a traceback)."""

    stop_requested = False
    stop_serving: Callable[[], object] | None = None

    def handle_sigterm(self, *args: Any, **kwargs: Any) -> None:
        self.stop_requested = True
        if self.stop_serving is not None:
            self.stop_serving()


async def _run(runner: _Runner, api: str) -> bool:
    """Run ``runner`` until SIGTERM or its server is gone; returns whether the server is gone."""
    gone: list[bool] = []
    loop = asyncio.get_running_loop()
    async with anyio.create_task_group() as group:
        runner.stop_serving = lambda: loop.call_soon_threadsafe(group.cancel_scope.cancel)
        if not runner.stop_requested:  # a SIGTERM before this line found no loop to stop
            group.start_soon(_watch, api, group.cancel_scope, gone)
            await runner.start()
        group.cancel_scope.cancel()
    return bool(gone)


class _QuietWhenUnreachable(logging.Filter):
    """Drops the cancellation observer's connection-refused warning (a traceback): the watch reports it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], OSError))


def _pause(api: str, deployment_ids: list[UUID]) -> None:
    """Pause the served deployments, as Prefect's `serve` does on shutdown; retried for PAUSE_WITHIN_S while the
    server answers (a busy SQLite answers 503), at once a gone server (Prefect's client retries for a minute)."""
    deadline = time.monotonic() + PAUSE_WITHIN_S
    with temporary_settings(updates={PREFECT_CLIENT_MAX_RETRIES: 0, PREFECT_API_REQUEST_TIMEOUT: 5}), \
            get_client(sync_client=True) as client:
        for deployment_id in deployment_ids:
            while True:
                try:
                    client.pause_deployment(deployment_id)
                    break
                except (httpx.HTTPError, RuntimeError) as exc:
                    if refuses(api):
                        raise _gone(api) from None
                    if time.monotonic() > deadline:
                        raise ServerGone(f"qmp serve stopped but could not pause its deployments on {api}: {exc}") \
                            from None
                    time.sleep(0.5)


def _gone(api: str) -> ServerGone:
    return ServerGone(f"the Prefect server at {api} stopped answering: qmp serve stopped (its schedules were left "
                      "as they are on the server)")


def main() -> None:
    """Block serving all deployments until Ctrl-C, SIGTERM or the server is gone."""
    # Flow runs start in fresh interpreters; without the cwd on their sys.path a directory of the cwd named
    # like one of our packages (a `registry/` data folder, say) cannot shadow the installed package.
    os.environ.setdefault("PYTHONSAFEPATH", "1")
    runners = deployments_from_yaml()
    refuse_work_pool_deployments(runners)
    runner = _Runner(pause_on_shutdown=False)  # paused below, where a gone server costs no retries
    deployment_ids = [cast(UUID, runner.add_deployment(deployment)) for deployment in runners]  # sync: the id
    with get_client(sync_client=True) as client:  # PREFECT_API_URL's, or the temporary server's
        api = str(client.api_url).rstrip("/")
    logging.getLogger("prefect.FlowRunCancellingObserver").addFilter(_QuietWhenUnreachable())
    names = ", ".join(f"{deployment.flow_name}/{deployment.name}" for deployment in runners)
    signal.signal(signal.SIGTERM, runner.handle_sigterm)  # from here on SIGTERM pauses the deployments
    print(f"serving {len(runners)} deployments on {api} until Ctrl-C: {names}", flush=True)
    gone = False
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C
        gone = asyncio.run(_run(runner, api))
    if gone:
        raise _gone(api)
    _pause(api, deployment_ids)
