"""One Prefect API per command: a command whose windows run in worker processes starts at most one temporary
server, and its workers use it.

Without `PREFECT_API_URL` every process that talks to Prefect starts its own temporary server, a process pool
or Dask worker included. The command starts one here and exports its URL, which the workers inherit.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def one_prefect_api() -> Iterator[None]:
    """The configured Prefect API, or one temporary server shared by this process and its children."""
    if os.environ.get("PREFECT_API_URL"):
        yield
        return
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, temporary_settings

    server = SubprocessASGIServer()
    # Stopped at exit (Prefect registers it), after this process has flushed its logs and events to it.
    server.start(timeout=int(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")))
    os.environ["PREFECT_API_URL"] = server.api_url
    with temporary_settings({PREFECT_API_URL: server.api_url}):
        yield
