"""A client-side deadline for database work: a watchdog thread shuts down the socket of a connection whose unit
of work outlived its deadline.

A server-side `statement_timeout` bounds a slow statement on a server that answers; it cannot bound a peer that
stops answering (a hung server, a silent proxy, a dropped network path), where the driver waits on the socket
with no end. Shutting the socket down from another thread wakes that wait with "connection lost", which the
store already treats as a dead connection (invalidated, never returned to the pool).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Scope:
    deadline: float
    connections: list[Any] = field(default_factory=list)
    expired: bool = False


class Watchdog:
    """Deadlines per thread's unit of work; the connections checked out inside one are cut when it passes."""

    def __init__(self) -> None:
        self._scopes: dict[int, _Scope] = {}
        self._local = threading.local()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    @contextmanager
    def deadline(self, seconds: float) -> Iterator[_Scope]:
        """Within the block, connections `watch`ed by this thread are cut `seconds` from now."""
        scope = _Scope(time.monotonic() + seconds)
        outer: _Scope | None = getattr(self._local, "scope", None)
        if outer is not None:  # a nested unit of work ends no later than the one around it
            scope.deadline = min(scope.deadline, outer.deadline)
        self._local.scope = scope
        with self._wake:
            self._scopes[id(scope)] = scope
            self._start()
            self._wake.notify()
        try:
            yield scope
        finally:
            with self._wake:
                self._scopes.pop(id(scope), None)
            self._local.scope = outer

    def remaining(self) -> float | None:
        """Seconds left in this thread's deadline (None: no deadline)."""
        scope: _Scope | None = getattr(self._local, "scope", None)
        return None if scope is None else scope.deadline - time.monotonic()

    def watch(self, dbapi_connection: Any) -> None:
        """Cut `dbapi_connection` when this thread's deadline passes (no-op outside a deadline)."""
        scope: _Scope | None = getattr(self._local, "scope", None)
        if scope is not None:
            with self._wake:
                scope.connections.append(dbapi_connection)

    def forget(self, dbapi_connection: Any) -> None:
        """The connection went back to the pool or was closed: never cut it for this thread's deadline."""
        scope: _Scope | None = getattr(self._local, "scope", None)
        if scope is not None:
            with self._wake:
                scope.connections = [c for c in scope.connections if c is not dbapi_connection]

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="qmp-db-watchdog", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        with self._wake:
            while True:
                now = time.monotonic()
                for scope in list(self._scopes.values()):
                    if not scope.expired and scope.deadline <= now:
                        scope.expired = True
                        for connection in scope.connections:
                            _cut(connection)
                waiting = [s.deadline - now for s in self._scopes.values() if not s.expired]
                self._wake.wait(timeout=max(0.01, min(waiting)) if waiting else 60.0)


def _cut(dbapi_connection: Any) -> None:
    """Shut the connection's socket down (both ways): the thread blocked on it wakes with an error."""
    try:
        if getattr(dbapi_connection, "closed", False):
            return
        fd = dbapi_connection.fileno()
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except (OSError, ValueError, AttributeError):
        pass  # already closed: nothing left to wake

