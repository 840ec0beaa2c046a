"""The Host-header check of the open (no-token) mode: only the names this machine's page is reached by.

A page bound to 127.0.0.1 without a token is readable by any web page a user visits once that page's own
host name is made to resolve to 127.0.0.1 (DNS rebinding): the browser then sends the attacker's host name in
the Host header, which this check refuses. With a token the check is not needed (the rebound page has neither
the token nor the cookie, which the browser keeps per host).
"""

from __future__ import annotations

from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]"})


def host_name(header: str) -> str:
    """The host of a Host header without its port, lower case; IPv6 literals keep their brackets."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[: value.find("]") + 1] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def allowed_hosts(public_url: str | None, extra: list[str]) -> frozenset[str]:
    """The loopback names, the host of the page's public URL (QMP_UI_URL) and QMP_UI_ALLOWED_HOSTS."""
    names = set(LOOPBACK_NAMES)
    if public_url:
        hostname = urlsplit(public_url).hostname
        if hostname:
            names.add(f"[{hostname}]" if ":" in hostname else hostname.lower())
    names.update(host_name(name) for name in extra if name.strip())
    return frozenset(names)


def host_allowed(header: str | None, allowed: frozenset[str]) -> bool:
    """Whether a request's Host header names this page (a missing header is refused)."""
    return header is not None and host_name(header) in allowed
