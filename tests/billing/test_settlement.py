"""One ledger batch settles all its holds together, each with its own result."""

from __future__ import annotations

import asyncio
from pathlib import Path

from daylite.billing.book import Reservation, Settlement
from daylite.billing.credits import Snapshot, add_credits, read_history
from daylite.billing.settlement import Settler
from daylite.metering.ledger import LedgerEntry
from daylite.storage.db import create_engine
from daylite.storage.migrate import upgrade
from daylite.storage.tables import accounts, free_requests


def _entry(request_id: str, cost: int, status: int = 200) -> LedgerEntry:
    return LedgerEntry(
        id=request_id,
        account_id="acct",
        key_id=None,
        endpoint="chat",
        status="ok" if status == 200 else "failed",
        http_status=status,
        created_at=7,
        cost_pico=cost,
    )


def _free(number: int) -> Reservation:
    return Reservation(number, "acct", "2026-05", True, 0, 50_000)


def _paid(number: int) -> Reservation:
    return Reservation(number, "acct", "2026-05", False, 500)


def test_a_batch_counts_what_is_free_and_debits_the_rest(tmp_path: Path) -> None:
    async def run() -> tuple[list[Settlement | None], list[int]]:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
        await upgrade(engine)
        async with engine.begin() as connection:
            await connection.execute(
                accounts.insert().values(id="acct", name="a", created_at=0)
            )
            await connection.execute(
                free_requests.insert().values(
                    account_id="acct", period="2026-05", used=49_999
                )
            )
            await add_credits(connection, "acct", 1_000, kind="grant", at=0)
        settler = Settler()
        async with engine.begin() as connection:
            claims = [
                settler.add(connection, _free(1), _entry("r1", 100)),
                settler.add(connection, _free(2), _entry("r2", 100)),
                settler.add(connection, _paid(3), _entry("r3", 0, status=502)),
                settler.add(connection, _paid(4), _entry("r4", 300)),
            ]
            await settler.apply(connection, [claim.entry for claim in claims])
        async with engine.connect() as connection:
            history = await read_history(connection, "acct", limit=10, kind="usage")
        await engine.dispose()
        return [claim.result for claim in claims], [h.amount_pico for h in history]

    results, debits = asyncio.run(run())

    assert results == [
        Settlement(free_used=50_000),
        Settlement(snapshot=Snapshot(2, 900)),
        Settlement(),
        Settlement(snapshot=Snapshot(3, 600)),
    ]
    assert debits == [-300, -100]
