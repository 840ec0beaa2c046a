"""`qmp ui`: a read-only web page over the model registry (FastAPI, server-rendered HTML and SVG, no JavaScript).

Importing this package is cheap: FastAPI, Jinja2 and uvicorn are imported by `deployments.ui.app` (and the
modules it assembles: `routes/`, `access`, `errors`, `context`, `rendering`) and `deployments.ui.server`,
which `qmp ui` imports when it runs. Nothing here imports Prefect or Qlib.
"""
