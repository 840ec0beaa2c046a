"""`qmp demo`: synthetic Qlib data, two retrain runs (a weaker and a stronger configuration), with a Prefect server the
loop new data starts (ingest, rolling retrain, predictions), the outcome."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from rich.table import Table

from deployments.cli.console import console, history_table, models_table
from registry.settings import update_workspace_settings, workspace_home
from tasks.core.timing import timed

T = TypeVar("T")
WEAKER = "workflow_config_linear_Alpha158.yaml"
STRONGER = "workflow_config_lightgbm_Alpha158.yaml"


@contextmanager
def _timed(label: str, timings: list[tuple[str, float]]) -> Iterator[None]:
    console.rule(f"[bold]{label}")
    with timed() as clock:
        yield
    timings.append((label, clock.seconds))
    console.print(f"[dim]{label}: {clock.seconds:.1f} s[/]")


def _step(label: str, timings: list[tuple[str, float]], work: Callable[[], T]) -> T:
    with _timed(label, timings):
        return work()


# Settings that would send the demo's runs somewhere other than its own workspace.
FOREIGN_SETTINGS = ("QMP_DATABASE_URL", "QMP_ARTIFACT_URI", "QMP_MLFLOW_URI", "QMP_MLFLOW_ARTIFACT_URI")


def use_demo_workspace(workspace: Path) -> Path:
    """Point this process and the workspace's settings file at the demo's registry and data, so every later
    `qmp` command, from any directory, uses them; returns the settings file."""
    values = {"QMP_REGISTRY_DIR": str(workspace / "model_registry"), "QMP_PROVIDER_URI": str(workspace / "qlib_data")}
    os.environ.update(values)
    for name in FOREIGN_SETTINGS:
        os.environ.pop(name, None)
    return update_workspace_settings(values, remove=FOREIGN_SETTINGS)


def run_demo(
    workspace: Path | None = None, instruments: int = 60, model_name: str = "alpha158_demo", fresh: bool = True
) -> None:
    """Run the whole pipeline twice on embedded defaults inside `workspace` (default `$QMP_HOME/demo`)."""
    from tasks.core.errors import require_prefect_api

    require_prefect_api()  # before anything is written
    workspace = (workspace or workspace_home() / "demo").expanduser().resolve()
    if fresh and workspace.exists():
        shutil.rmtree(workspace)
    data_dir, registry_dir = workspace / "qlib_data", workspace / "model_registry"
    settings_file = use_demo_workspace(workspace)

    from deployments.cli.retrain import print_result, run_retrain
    from flows.options import EXAMPLES_DIR
    from registry import ModelRegistry
    from tasks.core.data.synthetic import synthesize

    timings: list[tuple[str, float]] = []
    report = _step(f"1. synthesize {instruments} instruments of Qlib data", timings,
                   lambda: synthesize(data_dir, instruments=instruments, seed=7))
    declare_synthetic_calendar(data_dir)
    console.print(f"wrote {report.days} trading days x {report.instruments} instruments to {data_dir}")
    for number, config in ((2, WEAKER), (3, STRONGER)):
        result = _step(f"{number}. retrain flow with {config}", timings,
                       lambda config=config: run_retrain(EXAMPLES_DIR / config, model_name))
        print_result(result)
    from deployments.cli.demo_loop import LOOP_HINT, prefect_server_configured, run_data_loop

    def numbered(label: str, work: Callable[[], object]) -> object:
        return _step(f"{len(timings) + 1}. {label}", timings, work)

    if prefect_server_configured():
        run_data_loop(data_dir, workspace, model_name, EXAMPLES_DIR / STRONGER, seed=7, step=numbered)
    with _timed(f"{len(timings) + 1}. registry", timings), ModelRegistry.from_settings() as registry:
        console.print(models_table(registry.list_models(), title=f"Registry at {registry_dir}"))
        production = registry.get_production_model(model_name)
        console.print(f"production model of {model_name}: [bold green]{production.model_id if production else 'none'}[/]")
        console.print(history_table(registry.history(model_name=model_name), title=f"History of {model_name}"))
    summary = Table(title="Demo timings")
    summary.add_column("step")
    summary.add_column("seconds", justify="right")
    for label, seconds in timings:
        summary.add_row(label, f"{seconds:.1f}")
    summary.add_row("[bold]total", f"[bold]{sum(s for _, s in timings):.1f}")
    console.print(summary)
    if not prefect_server_configured():
        console.print(f"[dim]{LOOP_HINT}[/]", highlight=False, soft_wrap=True)
    console.print(f"{settings_file} now points every qmp command at this registry and data; "
                  f"explore further: {qmp_command()} models list", highlight=False, soft_wrap=True)


def declare_synthetic_calendar(data_dir: Path) -> None:
    """Mark the demo's data as keeping its own calendar, so the deployments' stale-data alarm leaves it alone."""
    from tasks.core.data.ingest.calendar import declare_calendar

    declare_calendar(data_dir, "synthetic")


def qmp_command() -> str:
    """How to call this `qmp` from the current directory: `qmp` when PATH finds this one, else its path."""
    executable = Path(sys.argv[0]) if Path(sys.argv[0]).name == "qmp" else Path(sys.executable).with_name("qmp")
    executable = executable.absolute()
    found = shutil.which("qmp")
    if found and Path(found).absolute() == executable:
        return "qmp"
    try:
        return shlex.quote(str(executable.relative_to(Path.cwd())))
    except ValueError:
        return shlex.quote(str(executable))
