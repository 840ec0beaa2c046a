"""The web app's routes, one router per page group, each HTML page beside its JSON twin under /api.

`ROUTERS` is the order `create_app` includes them in. The routes take what they share through the
`Context` dependency (`deployments.ui.context`), never from globals.
"""

from __future__ import annotations

from fastapi import APIRouter

from deployments.ui.routes import approvals, compare, data, live, login, models, overview, versions

ROUTERS: tuple[APIRouter, ...] = (login.router, overview.router, models.router, versions.router, compare.router,
                                  approvals.router, live.router, data.router)
