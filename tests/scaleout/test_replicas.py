"""Three ``daylite serve`` replicas on one PostgreSQL and one Redis keep every promise.

Each replica is a real process on its own port, configured through the
environment and a config file, all forwarding to one fake upstream.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal

import pytest

from tests.budgets.support import WebhookReceiver, signature_valid
from tests.fakes.upstream import FakeUpstream
from tests.scaleout.replicas import Deployment
from tests.scaleout.services import fresh_database, fresh_prefix
from tests.scaleout.traffic import (
    budget,
    cost_of,
    credits,
    exact_body,
    http,
    paid_account,
    set_budget,
    sql,
    swarm,
    usd,
)

log = logging.getLogger(__name__)

REQUESTS = 300
FITTING = 100


@pytest.fixture(scope="module")
def shared_upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(record=False) as fake:
        yield fake


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, shared_upstream: FakeUpstream
) -> Iterator[Deployment]:
    """Three replicas started together on an empty database (no migrate first)."""
    root = tmp_path_factory.mktemp("cluster")
    with fresh_database() as database, fresh_prefix() as (redis_url, prefix):
        deployment = Deployment(root, database, redis_url, prefix, shared_upstream.url)
        replicas = [deployment.replica() for _ in range(3)]
        try:
            for replica in replicas:
                replica.launch()
            for replica in replicas:
                replica.wait_ready()
            yield deployment
        finally:
            deployment.stop_all()


def test_replicas_starting_together_migrate_once_and_create_one_first_key(
    cluster: Deployment,
) -> None:
    keys = [replica.first_key() for replica in cluster.replicas]

    defaults = sql(
        cluster.database_url, "SELECT id FROM accounts WHERE name = 'default'"
    )
    first_keys = sql(
        cluster.database_url,
        "SELECT count(*) FROM api_keys WHERE account_id = $1",
        defaults[0]["id"],
    )
    assert sum(key is not None for key in keys) == 1
    assert len(defaults) == 1
    assert first_keys[0][0] == 1


def test_300_concurrent_requests_over_three_replicas_never_pass_one_cap(
    cluster: Deployment, shared_upstream: FakeUpstream
) -> None:
    first, *_ = cluster.replicas
    account_id, key = paid_account(cluster, first, "1.00")
    body = exact_body(100)
    cost = cost_of(body)
    cap = cost * FITTING
    set_budget(first, key, "shared", str(cap))
    calls_before = shared_upstream.calls

    outcomes = swarm(cluster.replicas, key, "shared", body, REQUESTS)

    admitted = [o for o in outcomes if o.status == 200]
    refused = [o for o in outcomes if o.status == 429]
    backend_calls = shared_upstream.calls - calls_before
    ledger = sql(
        cluster.database_url,
        "SELECT status, cost_pico FROM ledger WHERE customer = 'shared'",
    )
    settled = usd(sum(row["cost_pico"] for row in ledger))
    status = budget(cluster.replicas[2], key, "shared")
    balance = credits(cluster.replicas[1], key)
    log.warning(
        "three replicas: sent %d, admitted %d (per replica %s), refused %d "
        "(per replica %s), backend calls %d, settled %s USD of a %s USD cap, "
        "ledger entries %d",
        REQUESTS,
        len(admitted),
        dict(sorted(Counter(o.replica for o in admitted).items())),
        len(refused),
        dict(sorted(Counter(o.replica for o in refused).items())),
        backend_calls,
        settled,
        cap,
        len(ledger),
    )

    assert len(admitted) + len(refused) == REQUESTS
    assert {o.code for o in refused} == {"budget_exceeded"}
    assert backend_calls == len(admitted)
    # Every reservation settles at exactly what it held, so exactly the
    # requests that fit are admitted: no overspend and no capacity lost.
    assert len(admitted) == FITTING
    assert settled == cap
    assert all(Decimal(o.cost or "") == cost for o in admitted)
    assert len(ledger) == REQUESTS
    assert Counter(row["status"] for row in ledger) == {
        "ok": FITTING,
        "refused": REQUESTS - FITTING,
    }
    assert Decimal(status["spent_usd"]) == cap
    assert status["reserved_usd"] == "0"
    assert Decimal(balance["balance"]) == Decimal("1.00") - cap
    assert balance["reserved"] == "0"
    stored = sql(
        cluster.database_url,
        "SELECT balance_pico FROM accounts WHERE id = $1",
        account_id,
    )
    assert usd(stored[0][0]) == Decimal("1.00") - cap


def test_a_key_revoked_through_one_replica_is_refused_by_the_others_at_once(
    cluster: Deployment,
) -> None:
    first, second, third = cluster.replicas
    _, owner = paid_account(cluster, first, "1.00")
    body = exact_body(5)
    for revoker, others in ((first, (second, third)), (third, (first, second))):
        with http(revoker, owner) as client:
            created = client.post("/v1/keys", json={"name": "doomed"})
            assert created.status_code == 201, created.text
        doomed = created.json()
        # Every replica has the key in memory before it is revoked.
        for replica in cluster.replicas:
            with http(replica, doomed["secret"]) as client:
                ok = client.post("/v1/chat/completions", json=body)
                assert ok.status_code == 200, ok.text

        with http(revoker, owner) as client:
            revoked = client.delete(f"/v1/keys/{doomed['id']}")
        refusals = []
        for replica in others:
            with http(replica, doomed["secret"]) as client:
                refusals.append(client.post("/v1/chat/completions", json=body))

        assert revoked.status_code == 200, revoked.text
        assert [r.status_code for r in refusals] == [401, 401]
        assert {r.json()["error"]["code"] for r in refusals} == {"invalid_api_key"}


def test_a_key_revoked_from_the_cli_is_refused_by_every_replica_within_a_poll(
    cluster: Deployment,
) -> None:
    first = cluster.replicas[0]
    _, owner = paid_account(cluster, first, "1.00")
    with http(first, owner) as client:
        doomed = client.post("/v1/keys", json={"name": "cli"}).json()
    body = exact_body(5)
    for replica in cluster.replicas:
        with http(replica, doomed["secret"]) as client:
            assert client.post("/v1/chat/completions", json=body).status_code == 200

    done = cluster.cli("keys", "revoke", doomed["id"])

    assert done.returncode == 0, done.stderr
    for replica in cluster.replicas:
        with http(replica, doomed["secret"]) as client:
            statuses = []
            # The database poll runs every second (DAYLITE_REVOCATION_POLL_INTERVAL).
            for _ in range(30):
                statuses.append(client.post("/v1/chat/completions", json=body))
                if statuses[-1].status_code == 401:
                    break
                time.sleep(0.1)
        assert statuses[-1].status_code == 401
        assert len(statuses) <= 21


def test_alerts_fire_once_per_threshold_when_requests_alternate_replicas(
    cluster: Deployment,
) -> None:
    """F09 across replicas: the same events as on one gateway, each sent once."""
    first, second = cluster.replicas[0], cluster.replicas[1]
    _, key = paid_account(cluster, first, "1")
    body = {
        "model": "llama-3.3-70b",
        "max_tokens": 400,
        "messages": [{"role": "user", "content": "x usage=0,400"}],
    }
    with WebhookReceiver() as hooks:
        with http(first, key) as client:
            secret = client.put("/v1/webhook", json={"url": hooks.url}).json()["secret"]
            created = client.post(
                "/v1/budgets",
                json={
                    "customer_id": "alterny",
                    "monthly_cap_usd": "0.001",
                    "action_on_cap": "block",
                    "alert_thresholds": [0.5, 0.75],
                },
            )
            assert created.status_code in (200, 201), created.text
        statuses = []
        for number in range(20):
            replica = (first, second)[number % 2]
            with http(replica, key) as client:
                response = client.post(
                    "/v1/chat/completions",
                    json=body,
                    headers={"x-daylite-customer": "alterny"},
                )
            statuses.append(response.status_code)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(hooks.accepted()) < 3:
            time.sleep(0.1)
        time.sleep(1.5)  # room for a duplicate to show up, if one were coming
        accepted = hooks.accepted()

    assert statuses == [200] * 4 + [429] * 16
    summary = sorted(
        (d.event["type"], d.event["threshold"], d.event["spend_usd"]) for d in accepted
    )
    assert summary == [
        ("budget.cap_reached", "1", "0.0008"),
        ("budget.threshold_crossed", "0.5", "0.0006"),
        ("budget.threshold_crossed", "0.75", "0.0008"),
    ]
    for delivery in accepted:
        assert signature_valid(secret, delivery.headers, delivery.body)
