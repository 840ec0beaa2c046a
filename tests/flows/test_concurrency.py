"""The per-name Prefect slots on the session's temporary Prefect server."""

from __future__ import annotations

import contextvars
import threading
from contextlib import suppress

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
from prefect.exceptions import ObjectNotFound

from flows.concurrency import limit_name, one_at_a_time

pytestmark = [pytest.mark.flows, pytest.mark.usefixtures("prefect_server")]


def _active_slots(name: str) -> int:
    with get_client(sync_client=True) as client:
        return client.read_global_concurrency_limit_by_name(name).active_slots


def _delete(name: str) -> None:
    with get_client(sync_client=True) as client, suppress(ObjectNotFound):
        client.delete_global_concurrency_limit_by_name(name)


def test_a_missing_limit_is_created_and_a_deleted_one_recreated_and_the_slot_is_held_then_released() -> None:
    name = limit_name("retrain", "slot test/a")
    assert name == "qmp-retrain-slot-test-a"
    _delete(name)
    for _ in range(2):  # created on first use; the second use finds it
        with one_at_a_time("retrain", "slot test/a"):
            assert _active_slots(name) == 1
        assert _active_slots(name) == 0
    _delete(name)  # someone removed it: the next use creates it again, still with one slot
    with one_at_a_time("retrain", "slot test/a"):
        with get_client(sync_client=True) as client:
            limit = client.read_global_concurrency_limit_by_name(name)
        assert (limit.limit, limit.active_slots) == (1, 1)


def test_a_second_holder_of_the_same_name_waits_for_the_first() -> None:
    entered = threading.Event()
    context = contextvars.copy_context()  # the thread must see this thread's Prefect settings

    def second() -> None:
        with one_at_a_time("promote", "slot-test-b"):
            entered.set()

    with one_at_a_time("promote", "slot-test-b"):
        thread = threading.Thread(target=context.run, args=(second,), daemon=True)
        thread.start()
        assert not entered.wait(1.5)  # held here: the second holder is still waiting
    assert entered.wait(30)  # released: it gets the slot
    thread.join(10)
    assert _active_slots(limit_name("promote", "slot-test-b")) == 0


def test_a_deactivated_limit_is_left_as_the_user_set_it() -> None:
    """Prefect's way to switch a limit off: the block runs without a slot and the limit stays inactive."""
    name = limit_name("promote", "slot-test-c")
    with one_at_a_time("promote", "slot-test-c"):
        pass
    with get_client(sync_client=True) as client:
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active=False))
    ran = False
    with one_at_a_time("promote", "slot-test-c"):
        ran = True
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name(name)
    assert ran and not limit.active and limit.limit == 1
