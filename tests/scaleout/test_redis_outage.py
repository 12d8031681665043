"""Redis stopped mid-run: admission refuses with 503, and no cap is overspent.

The test runs a redis-server of its own and kills it with requests in flight,
then starts it again empty, as a Redis without persistence comes back. The
documented behaviour: while Redis is away every inference request gets 503
``service_unavailable`` and no backend is called; management reads still
work from the database; when Redis is back empty, replicas write back the
reservations of their requests in flight during a short pause (503 too), and
admission resumes with those reservations counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.scaleout.replicas import Deployment, Replica
from tests.scaleout.services import RedisServer, fresh_database
from tests.scaleout.traffic import (
    Outcome,
    budget,
    cost_of,
    exact_body,
    paid_account,
    send,
    set_budget,
    sql,
    swarm,
    usd,
    wait_for,
)

log = logging.getLogger(__name__)

IN_FLIGHT = 6
FITTING = 10


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def deployment(
    tmp_path: Path, upstream: FakeUpstream, redis_server: RedisServer
) -> Iterator[Deployment]:
    with fresh_database() as database:
        deployment = Deployment(
            tmp_path / "deploy", database, redis_server.url, "outage", upstream.url
        )
        assert deployment.cli("migrate").returncode == 0
        try:
            yield deployment
        finally:
            deployment.stop_all()


def _retry_until_admitted(replica: Replica, key: str, body: dict[str, object]) -> int:
    """Send until one request is not refused with 503; returns how many were."""

    async def run() -> int:
        refused = 0
        async with httpx.AsyncClient(timeout=30) as client:
            for _ in range(100):
                outcome = await send(client, replica, key, "probe", body)
                if outcome.status != 503:
                    assert outcome.status == 200
                    return refused
                refused += 1
                await asyncio.sleep(0.1)
        raise AssertionError("admission did not resume after Redis came back")

    return asyncio.run(run())


def test_redis_lost_mid_run_refuses_with_503_and_never_overspends(
    deployment: Deployment, redis_server: RedisServer, upstream: FakeUpstream
) -> None:
    first, second = deployment.replica().start(), deployment.replica().start()
    _, key = paid_account(deployment, first, "1.00")
    quick = exact_body(20, "hang=00")
    slow = exact_body(20, "hang=10")
    assert cost_of(quick) == cost_of(slow)
    cap = cost_of(quick) * FITTING
    set_budget(first, key, "outage", str(cap))

    async def slow_requests() -> list[Outcome]:
        async with httpx.AsyncClient(timeout=60) as client:
            return await asyncio.gather(
                *(
                    send(client, (first, second)[i % 2], key, "outage", slow)
                    for i in range(IN_FLIGHT)
                )
            )

    async def scenario() -> tuple[list[Outcome], list[Outcome], list[Outcome], int]:
        in_flight = asyncio.create_task(slow_requests())
        held = await asyncio.to_thread(
            wait_for,
            lambda: (
                Decimal(budget(first, key, "outage")["reserved_usd"])
                == cost_of(slow) * IN_FLIGHT
            ),
            10,
        )
        assert held is not None
        calls = upstream.calls
        redis_server.kill()
        down = await asyncio.to_thread(swarm, [first, second], key, "outage", quick, 4)
        status = await asyncio.to_thread(budget, second, key, "outage")
        assert upstream.calls == calls
        assert status["spent_usd"] == "0"
        redis_server.start()
        pauses = await asyncio.to_thread(_retry_until_admitted, first, key, quick)
        after = await asyncio.to_thread(
            swarm, [first, second], key, "outage", quick, FITTING
        )
        return down, after, await in_flight, pauses

    down, after, slow_done, pauses = asyncio.run(scenario())

    rows = sql(
        deployment.database_url,
        "SELECT status, http_status, cost_pico FROM ledger WHERE customer = 'outage'",
    )
    settled = usd(sum(row["cost_pico"] for row in rows))
    log.warning(
        "Redis outage: %d refused with 503 while down, %d more during the "
        "write-back pause, afterwards %s; settled %s USD of a %s USD cap",
        len(down),
        pauses,
        dict(Counter(o.status for o in after)),
        settled,
        cap,
    )
    assert [o.status for o in down] == [503] * 4
    assert {o.code for o in down} == {"service_unavailable"}
    assert [o.status for o in slow_done] == [200] * IN_FLIGHT
    # The six requests in flight kept their reservations across the loss of
    # Redis, so only four of the ten that came after fit under the cap.
    assert Counter(o.status for o in after) == {
        200: FITTING - IN_FLIGHT,
        429: IN_FLIGHT,
    }
    assert settled == cap
    assert Counter(row["http_status"] for row in rows) == {
        200: FITTING,
        429: IN_FLIGHT,
        503: len(down),
    }
