"""The access token: a bearer header or a login cookie, both compared in constant time."""

from __future__ import annotations

import hashlib
import hmac

COOKIE = "qmp_ui_session"
_COOKIE_PURPOSE = b"qmp-ui-session-v1"


def cookie_value(token: str) -> str:
    """The login cookie's value: derived from the token (the token itself never goes into a cookie), so
    changing the token logs every browser out."""
    return hmac.new(token.encode(), _COOKIE_PURPOSE, hashlib.sha256).hexdigest()


def token_matches(given: str, token: str) -> bool:
    return hmac.compare_digest(given.encode(), token.encode())


def authorized(token: str, authorization: str | None, cookie: str | None) -> bool:
    """Whether a request carries `token` as `Authorization: Bearer ...` or the login cookie."""
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and token_matches(value.strip(), token):
            return True
    return bool(cookie) and hmac.compare_digest(cookie.encode(), cookie_value(token).encode())  # type: ignore[union-attr]


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this site only (never another host)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
