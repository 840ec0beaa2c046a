"""Per-model-name exclusion through Prefect global concurrency limits, created when missing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError  # re-exported there, raised by both
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound


def limit_name(purpose: str, model_name: str) -> str:
    return f"qmp-{purpose}-" + re.sub(r"[^A-Za-z0-9_-]+", "-", model_name)


def ensure_limit(name: str, limit: int = 1) -> bool:
    """Create the global concurrency limit `name` unless it exists; returns whether it was missing."""
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            with suppress(ObjectAlreadyExists):  # another run created it first
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=limit))
            return True
    return False


@contextmanager
def one_at_a_time(purpose: str, model_name: str) -> Iterator[None]:
    """Hold the per-name slot of `purpose`; the registry's row lock stays the real guarantee.

    The slot is asked for first and the limit created only when Prefect reports it missing (`strict`: a
    missing limit would exclude nothing), so a run pays no extra round trip once the limit exists.
    """
    name = limit_name(purpose, model_name)
    with ExitStack() as slot:
        try:
            slot.enter_context(concurrency(name, occupy=1, strict=True))
        except ConcurrencySlotAcquisitionError:
            if not ensure_limit(name):  # the limit exists: the failure was something else
                raise
            slot.enter_context(concurrency(name, occupy=1, strict=True))
        yield
