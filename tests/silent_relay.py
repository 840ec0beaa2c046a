"""A TCP relay on loopback in front of a real server that can be switched to "accept but never answer": a
database whose peer goes silent (a hung server, a proxy or network path that drops everything)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress


class SilentRelay:
    """Forwards 127.0.0.1:`port` to `upstream`; while `silent`, reads and drops everything, answers nothing."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.silent = False
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                if not self.silent:
                    target.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        for sock in self._sockets:
            sock.close()


@contextmanager
def silent_relay(upstream: tuple[str, int] = ("127.0.0.1", 5432)) -> Iterator[SilentRelay]:
    relay = SilentRelay(upstream)
    try:
        yield relay
    finally:
        relay.close()


def through(url: str, relay: SilentRelay) -> str:
    """`url` (a PostgreSQL URL on 127.0.0.1:5432) sent through `relay` instead."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
