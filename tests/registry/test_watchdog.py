"""The database watchdog: a connection checked out under a deadline is cut when the deadline passes, not before,
and not after its unit of work ended."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from registry.store.watchdog import Watchdog


class FakeConnection:
    """A socket pair's one end with the two methods the watchdog uses (a real socket, a stand-in driver)."""

    def __init__(self) -> None:
        self.sock, self.peer = socket.socketpair()
        self.closed = False

    def fileno(self) -> int:
        return self.sock.fileno()


def _blocked_read_seconds(connection: FakeConnection) -> float:
    started = time.monotonic()
    assert connection.sock.recv(1) == b""  # woken by the shutdown: end of stream
    return time.monotonic() - started


def test_a_silent_peer_is_cut_at_the_deadline() -> None:
    watchdog, connection = Watchdog(), FakeConnection()
    with watchdog.deadline(0.3):
        watchdog.watch(connection)
        assert 0.25 < _blocked_read_seconds(connection) < 2.0


def test_a_connection_returned_before_the_deadline_is_left_alone() -> None:
    watchdog, connection = Watchdog(), FakeConnection()
    with watchdog.deadline(0.2):
        watchdog.watch(connection)
        watchdog.forget(connection)
        time.sleep(0.4)
    connection.peer.sendall(b"x")
    assert connection.sock.recv(1) == b"x"


def test_a_nested_deadline_ends_no_later_than_the_outer_one() -> None:
    watchdog, connection = Watchdog(), FakeConnection()
    with watchdog.deadline(0.3), watchdog.deadline(60):
        watchdog.watch(connection)
        assert _blocked_read_seconds(connection) < 2.0
    assert watchdog.remaining() is None


@pytest.mark.parametrize("threads", [20])
def test_deadlines_of_many_threads_are_independent(threads: int) -> None:
    watchdog = Watchdog()
    results: dict[int, float] = {}

    def work(index: int) -> None:
        connection = FakeConnection()
        with watchdog.deadline(0.2 + 0.05 * (index % 3)):
            watchdog.watch(connection)
            results[index] = _blocked_read_seconds(connection)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(10)
    assert len(results) == threads and max(results.values()) < 3.0
