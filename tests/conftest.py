"""Fixtures shared by the whole suite: a fake upstream and a running gateway."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.upstream import FakeUpstream
from tests.support.gateway import GatewayServer, config_for


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def gateway(tmp_path: Path, upstream: FakeUpstream) -> Iterator[GatewayServer]:
    with GatewayServer(tmp_path / "gw", config_for(upstream.url)) as server:
        yield server
