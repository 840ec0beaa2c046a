"""What every route shares (settings, registry, templates, access token), kept on `app.state.ui` and handed
to the routes as the FastAPI dependency `Context`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment

from deployments.ui.hosts import allowed_hosts
from deployments.ui.registry_holder import RegistryHolder
from deployments.ui.settings import UISettings


@dataclass(frozen=True)
class UIContext:
    """The app's settings, its registry (opened on first use), its templates, the access token (None: open)
    Prefect UI's base URL the pages link to, and the Host names served without a token."""

    settings: UISettings
    registry: RegistryHolder
    templates: Environment
    token: str | None
    prefect_ui: str | None
    hosts: frozenset[str]

    @classmethod
    def build(cls, settings: UISettings, registry: RegistryHolder, templates: Environment) -> UIContext:
        """The context for `settings`, with the token unwrapped and Prefect UI's URL derived once."""
        token = settings.token.get_secret_value() if settings.token else None
        return cls(settings, registry, templates, token, settings.prefect_ui(),
                   allowed_hosts(settings.url, settings.allowed_hosts))

    def render(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        """`template` rendered for `request`, with the Prefect link and the logged-in state every page shows."""
        context.setdefault("logged_in", self.token is not None)
        body = self.templates.get_template(template).render(
            request_path=request.url.path, prefect_ui=self.prefect_ui, **context)
        return HTMLResponse(body, status_code=status)


def ui_context(request: Request) -> UIContext:
    """The context `create_app` stored on the app."""
    context: UIContext = request.app.state.ui
    return context


async def _ui_context_dependency(request: Request) -> UIContext:
    # async: FastAPI runs a plain-def dependency in a worker thread, which this attribute read does not need.
    return ui_context(request)


Context = Annotated[UIContext, Depends(_ui_context_dependency)]


def is_api(request: Request) -> bool:
    """Whether `request` is for a JSON twin (answered in JSON, errors included)."""
    return request.url.path.startswith("/api")
