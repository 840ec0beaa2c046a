"""The web page's settings (environment variables), read at the edge like the registry's."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


class UISettings(BaseSettings):
    """`QMP_UI_*` plus the Prefect URLs the page links to."""

    model_config = SettingsConfigDict(env_prefix="QMP_UI_", env_file=".env", extra="ignore", populate_by_name=True)

    token: SecretStr | None = Field(None, description="Access token; required to bind to a non-loopback address.")
    url: str | None = Field(None, description="Public base URL of this page, for links from Prefect artifacts.")
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Host names served besides the loopback ones and QMP_UI_URL's host "
        "when no token is set (comma-separated; the Host-header check against DNS rebinding).")
    stale_days: int = Field(30, ge=1, le=3650, description="Badge a production model or data older than this.")
    prefect_ui_url: str | None = Field(None, validation_alias=AliasChoices("PREFECT_UI_URL", "prefect_ui_url"))
    prefect_api_url: str | None = Field(None, validation_alias=AliasChoices("PREFECT_API_URL", "prefect_api_url"))

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return [item.strip() for item in value.split(",") if item.strip()] if isinstance(value, str) else value

    @field_validator("token", mode="after")
    @classmethod
    def _blank_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value().strip() else None

    def prefect_ui(self) -> str | None:
        """Prefect UI's base URL: PREFECT_UI_URL, else PREFECT_API_URL without its `/api` suffix."""
        if self.prefect_ui_url:
            return self.prefect_ui_url.rstrip("/")
        if self.prefect_api_url:
            api = self.prefect_api_url.rstrip("/")
            return api[: -len("/api")] if api.endswith("/api") else api
        return None


def is_loopback(host: str) -> bool:
    """Whether binding to `host` keeps the page on this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


class UnsafeBindError(ValueError):
    """Binding beyond loopback without an access token."""


def check_bind(host: str, settings: UISettings) -> None:
    """Refuse to serve the registry beyond this machine without an access token (UnsafeBindError says why)."""
    if not is_loopback(host) and settings.token is None:
        raise UnsafeBindError(
            f"refusing to bind to {host}: set QMP_UI_TOKEN to an access token to serve the registry beyond "
            "this machine (and put TLS in front of it), or bind to 127.0.0.1"
        )
