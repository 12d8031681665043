"""Two replicas on one database, requests at once: rollups still equal the ledger."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

from daylite.clock import FixedClock
from tests.fakes.upstream import FakeUpstream
from tests.support.gateway import GatewayServer, config_for
from tests.usage.support import Client, at, top_sums, total

CUSTOMERS = ("c1", "c2", "c3")
MODELS = ("llama-3.3-70b", "llama-3.1-8b", "deepseek-v3")


def test_concurrent_requests_on_two_replicas_are_counted_exactly(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    # Both replicas' clocks sit in one hour, so every upsert hits the same rows.
    clock = FixedClock(at("2026-12-10T09:59:59+00:00"))
    config = config_for(upstream.url)
    data_dir = tmp_path / "gw"
    with (
        GatewayServer(data_dir, config, clock=clock) as one,
        GatewayServer(data_dir, config, clock=clock) as two,
    ):
        two.key = one.key
        clients = [Client(one), Client(two)]

        def send(n: int) -> None:
            client = clients[n % 2]
            model = MODELS[n % 3]
            text = f"x usage={n},{n * 7}"
            if n % 4 == 0:
                client.stream(text, model=model, customer=CUSTOMERS[n % 3])
            else:
                client.chat(text, model=model, customer=CUSTOMERS[n % 3])

        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(send, range(96)))
        bills = [*clients[0].bills, *clients[1].bills]
        body = clients[1].usage()
        per_customer = {c: clients[0].usage(customer=c) for c in CUSTOMERS}

    assert top_sums(body) == total(bills)
    assert body["totalRequests"] == 96
    for customer, answer in per_customer.items():
        mine = [bill for bill in bills if bill.customer == customer]
        assert Decimal(answer["totalCost"]) == total(mine).cost
        assert answer["totalRequests"] == 32
