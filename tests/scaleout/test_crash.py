"""kill -9 of a replica under load: no lost entry, no reservation held for long.

A killed replica cannot release what its requests in flight had reserved, nor
tell Redis about settlements it committed just before dying. Reservations
expire after ``DAYLITE_RESERVATION_TTL`` (three seconds here), and the
reconciler brings Redis's counters back to the ledger's totals.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.scaleout.replicas import Deployment, Replica
from tests.scaleout.services import fresh_database, fresh_prefix
from tests.scaleout.traffic import (
    Outcome,
    budget,
    cost_of,
    credits,
    exact_body,
    paid_account,
    send,
    set_budget,
    sql,
    usd,
    wait_for,
)

log = logging.getLogger(__name__)

TTL_SECONDS = 3.0
WORKERS_PER_REPLICA = 12
ROUNDS = 12


@pytest.fixture
def deployment(tmp_path: Path, upstream: FakeUpstream) -> Iterator[Deployment]:
    with fresh_database() as database, fresh_prefix() as (redis_url, prefix):
        deployment = Deployment(
            tmp_path / "deploy",
            database,
            redis_url,
            prefix,
            upstream.url,
            gateway={"reservation_ttl": TTL_SECONDS, "reconcile_interval": 1.0},
        )
        assert deployment.cli("migrate").returncode == 0
        try:
            yield deployment
        finally:
            deployment.stop_all()


def _load_and_kill(
    replicas: list[Replica], victim: Replica, key: str, body: dict[str, object]
) -> tuple[list[Outcome], float]:
    """Workers send requests one after another; ``victim`` dies in the middle.

    Returns what the clients saw and when (``time.monotonic``) the kill came.
    """
    killed_at: list[float] = []

    async def worker(client: httpx.AsyncClient, replica: Replica) -> list[Outcome]:
        outcomes = []
        for _ in range(ROUNDS):
            outcome = await send(client, replica, key, "crash", body)
            outcomes.append(outcome)
            if outcome.status == 0:
                break
        return outcomes

    async def killer() -> None:
        await asyncio.sleep(0.6)
        victim.kill()
        killed_at.append(time.monotonic())

    async def run() -> list[Outcome]:
        async with httpx.AsyncClient(timeout=30) as client:
            tasks = [
                worker(client, replica)
                for replica in replicas
                for _ in range(WORKERS_PER_REPLICA)
            ]
            results = await asyncio.gather(killer(), *tasks)
        return [outcome for batch in results[1:] if batch for outcome in batch]

    outcomes = asyncio.run(run())
    return outcomes, killed_at[0]


def test_killed_replica_loses_no_answered_entry_and_its_holds_expire(
    deployment: Deployment,
) -> None:
    replicas = [deployment.replica() for _ in range(3)]
    for replica in replicas:
        replica.launch()
    for replica in replicas:
        replica.wait_ready()
    first, victim, third = replicas
    _, key = paid_account(deployment, first, "1.00")
    set_budget(first, key, "crash", "1.00")
    body = exact_body(50, "slow=150")

    outcomes, killed_at = _load_and_kill(replicas, victim, key, body)

    answered = [o for o in outcomes if o.cost is not None]
    cut = [o for o in outcomes if o.status == 0]
    assert cut, "the replica died with no request in flight; kill it earlier"
    assert {o.status for o in outcomes} <= {0, 200}
    assert any(o.replica == victim.number for o in answered)
    # Reservations of the requests that died with the replica run out.
    released = wait_for(
        lambda: (
            budget(first, key, "crash")["reserved_usd"] == "0"
            and credits(third, key)["reserved"] == "0"
        ),
        TTL_SECONDS + 5,
    )
    assert released is not None, budget(first, key, "crash")
    released_after = time.monotonic() - killed_at
    assert released_after <= TTL_SECONDS + 2

    victim.start()
    after = asyncio.run(_one(victim, key, body))

    rows = sql(
        deployment.database_url,
        "SELECT id, cost_pico FROM ledger WHERE customer = 'crash'",
    )
    ledger = {row["id"]: row["cost_pico"] for row in rows}
    log.warning(
        "kill -9: %d answered (%d by the victim), %d cut, holds released %.1f s "
        "after the kill (TTL %.0f s), %d ledger entries",
        len(answered),
        sum(o.replica == victim.number for o in answered),
        len(cut),
        released_after,
        TTL_SECONDS,
        len(ledger),
    )
    assert after.status == 200
    for outcome in [*answered, after]:
        assert outcome.request_id in ledger
        assert usd(ledger[outcome.request_id]) == Decimal(outcome.cost or "")
    # Whatever the dead replica committed but never told Redis, the
    # reconciler finds; Redis then agrees with the ledger to the pico-dollar.
    total = usd(sum(ledger.values()))
    assert total == cost_of(body) * len(ledger)
    agreed = wait_for(
        lambda: Decimal(budget(third, key, "crash")["spent_usd"]) == total, 10
    )
    assert agreed is not None, (budget(third, key, "crash"), total)
    assert Decimal(credits(first, key)["balance"]) == Decimal("1.00") - total


async def _one(replica: Replica, key: str, body: dict[str, object]) -> Outcome:
    async with httpx.AsyncClient(timeout=30) as client:
        return await send(client, replica, key, "crash", body)
