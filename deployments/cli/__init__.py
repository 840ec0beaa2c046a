"""The `qmp` command: registry, data, training, cleanup, serving and the demo.

Importing this package and running `--help`, `models ...`, `registry ...`, `db upgrade` or `cleanup` imports
neither Prefect, Qlib nor MLflow (a test checks it): a command that needs them imports them inside its body.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Before Prefect is imported: its settings are read once. A busy 2-core machine needs more than the
# default 20 s to start the temporary local API; analytics would try to reach the internet.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

import typer

from deployments.cli.approvals import approvals_app, approve_command, reject_command
from deployments.cli.cleanup import cleanup
from deployments.cli.console import err_console
from deployments.cli.data import data_app
from deployments.cli.errors import one_line
from deployments.cli.models import db_app, models_app, registry_app
from deployments.cli.monitor import monitor_command
from deployments.cli.output import set_up_output
from deployments.cli.predict import predict_command, signals_command
from deployments.cli.retrain import retrain_command
from deployments.cli.rolling import rolling_command
from deployments.cli.schedules import schedules_app
from deployments.cli.server import server_command
from tasks.core.errors import require_prefect_api
from tasks.core.third_party import silence_known_notices

app = typer.Typer(
    name="qmp",
    help="Qlib Model Pipeline: retrain, evaluate, register, promote and clean up Qlib models.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"qmp {version('qlib-model-pipeline')}")
        raise typer.Exit()


@app.callback()
def _options(
    context: typer.Context,
    _version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                  help="Print the version and exit."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help=(
        "Show Qlib, MLflow and Prefect logs, progress bars and warnings on the console "
        "(by default they go to $QMP_HOME/logs/qmp.log).")),
) -> None:
    """Qlib Model Pipeline: retrain, evaluate, register, promote and clean up Qlib models."""
    set_up_output(verbose, context.invoked_subcommand)


app.add_typer(models_app, name="models")
app.add_typer(db_app, name="db")
app.add_typer(registry_app, name="registry")
app.add_typer(approvals_app, name="approvals")
app.command("approve")(approve_command)
app.command("reject")(reject_command)


app.add_typer(data_app, name="data")
app.add_typer(schedules_app, name="schedules")
app.command("retrain")(retrain_command)
app.command("rolling")(rolling_command)
app.command("cleanup")(cleanup)
app.command("predict")(predict_command)
app.command("signals")(signals_command)
app.command("monitor")(monitor_command)
app.command("server")(server_command)


@app.command("serve")
def serve_command() -> None:
    """Serve every deployment of deployments/prefect.yaml from this process: retrain, predict-daily, ingest-daily,
    rolling, cleanup, promote and rollback (their schedules ship off: `qmp schedules on`). Ctrl-C or SIGTERM
    pauses them; a server that stops answering ends it within seconds."""
    require_prefect_api()
    from deployments.serve import main as serve_main

    serve_main()  # a deployment `prefect deploy` created, or a server gone, is a PipelineError: one line, exit 1


@app.command("ui")
def ui_command(
    host: str = typer.Option("127.0.0.1", help="Address to bind; any non-loopback address needs QMP_UI_TOKEN."),
    port: int = typer.Option(8765, min=1, max=65535, help="Port to listen on."),
) -> None:
    """Serve the read-only registry web page (overview, models, versions, compare, approvals; JSON under /api)."""
    from deployments.ui.server import serve
    from deployments.ui.settings import UnsafeBindError

    try:
        serve(host, port)
    except UnsafeBindError as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


@app.command("demo")
def demo(
    workspace: Path | None = typer.Option(
        None, help="Where the data and the registry go (recreated). [default: $QMP_HOME/demo]"),
    instruments: int = typer.Option(60, min=10, max=500, help="Synthetic instruments."),
) -> None:
    """Synthesize data, retrain twice (weaker then stronger config), show registry, decision and history."""
    from deployments.cli.demo import run_demo

    run_demo(workspace, instruments=instruments)


def main() -> None:
    """Entry point: registry, input, storage and Prefect failures become one line on stderr and exit code 1,
    never a traceback (see `deployments.cli.errors`)."""
    silence_known_notices()
    try:
        app()
    except Exception as exc:
        message = one_line(exc)
        if message is None:
            raise
        err_console.print(f"[red]error:[/] {message}", highlight=False, soft_wrap=True)
        sys.exit(1)
