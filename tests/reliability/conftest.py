"""Fixtures for the reliability suite: private PostgreSQL databases and a registry-wide consistency check."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import POSTGRES_ADMIN


@pytest.fixture
def private_postgres_url(postgres_url: str) -> Iterator[str]:
    """A PostgreSQL database of this test's own (for tests that restart the server or count every row)."""
    name = f"qmp_rel_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"{postgres_url.rsplit('/', 1)[0]}/{name}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=30) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

