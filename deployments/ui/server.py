"""`qmp ui`: serve the web app with uvicorn (imported here, when the command runs)."""

from __future__ import annotations

from deployments.ui.settings import UISettings, check_bind


def serve(host: str, port: int, settings: UISettings | None = None) -> None:
    """Serve the registry page on host:port; UnsafeBindError (one line) when the host needs a token and has none."""
    settings = settings or UISettings()
    check_bind(host, settings)
    import uvicorn

    from deployments.ui.app import create_app

    # proxy_headers: behind the team's TLS proxy (on this machine), cookies are marked Secure.
    app = create_app(settings, freeze_startup_objects=True)
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=True, access_log=True)
