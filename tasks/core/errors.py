"""Errors of the pipeline outside the registry (whose errors are in `registry.errors`): each message names
what was wrong, and the CLI prints it as one line."""

from __future__ import annotations


class PipelineError(Exception):
    """Base class of the errors the pipeline raises on purpose."""


class PipelineInputError(PipelineError, ValueError):
    """Input the pipeline refuses: a workflow YAML, a data directory, CSV files, synthesis parameters."""


class PrefectUnavailableError(PipelineError):
    """The Prefect API that PREFECT_API_URL names does not answer."""


def require_prefect_api(timeout_s: float = 5.0) -> None:
    """Fail fast, with the URL, when PREFECT_API_URL is set but its server is down (Prefect's own client
    retries for about a minute and then reports a bare RuntimeError)."""
    import os

    import httpx

    url = os.environ.get("PREFECT_API_URL")
    if not url:
        return  # Prefect starts a temporary local API
    try:
        httpx.get(f"{url.rstrip('/')}/health", timeout=timeout_s).raise_for_status()
    except httpx.HTTPError as exc:
        raise PrefectUnavailableError(f"cannot reach the Prefect API at {url}: {exc}") from None
