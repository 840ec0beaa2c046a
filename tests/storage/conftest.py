"""Object-storage fixtures: a real S3-compatible HTTP server (moto_server) on loopback for the session."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from registry import ModelRegistry

BUCKET = "qmp-test-artifacts"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_serving(endpoint: str, server: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"moto_server exited with code {server.returncode}")
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    raise RuntimeError(f"moto_server did not answer at {endpoint} within {timeout_s:.0f} s")


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """`moto_server` started as a separate process on a free loopback port: S3 over real HTTP."""
    port = _free_port()
    executable = Path(sys.executable).with_name("moto_server")
    server = subprocess.Popen(
        [str(executable), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(endpoint, server)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="session")
def s3_options(s3_endpoint: str) -> dict[str, Any]:
    """fsspec/s3fs options for the test server, with its bucket created."""
    import boto3

    options: dict[str, Any] = {
        "endpoint_url": s3_endpoint, "key": "testing", "secret": "testing",
        "client_kwargs": {"region_name": "us-east-1"},
    }
    client = boto3.client(
        "s3", endpoint_url=s3_endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=BUCKET)
    return options


@pytest.fixture
def s3_uri(s3_options: dict[str, Any]) -> str:
    """A fresh prefix in the test bucket, one per test."""
    return f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}"


@pytest.fixture
def database_url(tmp_path: Path, migrated_sqlite: Callable[[Path], str]) -> str:
    """SQLite only here: the database backends are covered by tests/registry; these tests vary the storage."""
    return migrated_sqlite(tmp_path / "registry.db")


@pytest.fixture
def registry(tmp_path: Path, database_url: str, s3_uri: str, s3_options: dict[str, Any]) -> Iterator[ModelRegistry]:
    """The contract suite's registry with its artifacts under an s3:// root on the moto server."""
    reg = ModelRegistry(tmp_path / "registry", database_url, artifact_uri=s3_uri, storage_options=s3_options)
    yield reg
    reg.close()


os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
