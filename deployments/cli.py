"""The `qmp` command: registry, data, training, cleanup, serving and the demo."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from deployments.cli_models import db_app, models_app, registry_app
from deployments.console import err_console
from registry import ModelRegistryError

app = typer.Typer(
    name="qmp",
    help="Qlib Model Pipeline: retrain, evaluate, register, promote and clean up Qlib models.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(models_app, name="models")
app.add_typer(db_app, name="db")
app.add_typer(registry_app, name="registry")


def _mount_optional() -> None:
    """Mount the command groups whose modules exist (the pipeline's parts land one by one)."""
    try:
        from deployments.cli_data import data_app
    except ImportError:
        pass
    else:
        app.add_typer(data_app, name="data")
    try:
        from deployments.cli_retrain import retrain_command
    except ImportError:
        pass
    else:
        app.command("retrain")(retrain_command)
    try:
        from deployments.cli_cleanup import cleanup
    except ImportError:
        pass
    else:
        app.command("cleanup")(cleanup)


_mount_optional()


@app.command("demo")
def demo(
    workspace: Path = typer.Option(Path("demo_workspace"), help="Where the data and the registry go (recreated)."),
    instruments: int = typer.Option(60, min=10, max=500, help="Synthetic instruments."),
) -> None:
    """Synthesize data, retrain twice (weaker then stronger config), show registry, decision and history."""
    from deployments.demo import run_demo

    run_demo(workspace, instruments=instruments)


def main() -> None:
    """Entry point: registry errors become one line on stderr and exit code 1, never a traceback."""
    try:
        app()
    except ModelRegistryError as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(1)
