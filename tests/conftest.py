"""Fixtures shared by the whole suite: a fake upstream and a running gateway."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.upstream import FakeUpstream
from tests.support.gateway import (
    GatewayServer,
    config_for,
    drop_test_databases,
    postgres_server_url,
)


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def gateway(tmp_path: Path, upstream: FakeUpstream) -> Iterator[GatewayServer]:
    with GatewayServer(tmp_path / "gw", config_for(upstream.url)) as server:
        yield server


@pytest.fixture(scope="session", autouse=True)
def _postgres_databases() -> Iterator[None]:
    """Drop the databases the suite created on the test PostgreSQL, if any."""
    yield
    server = postgres_server_url()
    if server is not None:
        asyncio.run(drop_test_databases(server))
