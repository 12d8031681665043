"""The webhook sender: signature, backoff, and the outbox states it leaves."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import select, update

from daylite.budgets.webhooks import MAX_ATTEMPTS, WebhookSender, backoff_seconds, sign
from daylite.clock import FixedClock
from daylite.runtime import prepare_database
from daylite.settings import Settings
from daylite.storage.db import create_engine
from daylite.storage.tables import accounts, budget_events

SECRET = "whsec_test_secret_0123"
START = 1_800_000_000_000_000


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"id":"evt_1"}'
    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256)

    assert sign(SECRET, 1700000000, body) == f"t=1700000000,v1={expected.hexdigest()}"


def test_backoff_doubles_from_the_base_up_to_an_hour() -> None:
    assert [backoff_seconds(n, 2.0) for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 16.0]
    assert backoff_seconds(40, 2.0) == 3600.0


def _event_row(event_id: str, account_id: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "account_id": account_id,
        "customer_id": "c",
        "period_start": 0,
        "kind": "budget.threshold_crossed",
        "threshold": "0.5",
        "cap_pico": 1,
        "payload": orjson.dumps({"id": event_id}).decode(),
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": 0,
        "created_at": 0,
    }


async def _outbox(settings: Settings, url: str | None) -> Any:
    await prepare_database(settings)
    engine = create_engine(settings.resolved_database_url)
    async with engine.begin() as connection:
        account_id = (await connection.execute(select(accounts.c.id))).scalar_one()
        await connection.execute(
            update(accounts).values(webhook_url=url, webhook_secret=SECRET)
        )
        await connection.execute(
            budget_events.insert(), [_event_row("evt_1", account_id)]
        )
    return engine


async def _state(engine: Any) -> tuple[str, int, int]:
    async with engine.connect() as connection:
        row = (await connection.execute(select(budget_events))).one()
    return row.state, row.attempts, row.next_attempt_at


def _settings(tmp_path: Path) -> Settings:
    return replace(Settings(), data_dir=tmp_path, webhook_retry_base=2.0)


def test_failures_back_off_and_a_2xx_marks_the_event_delivered(tmp_path: Path) -> None:
    answers = [500, 503, 204]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(answers[len(seen) - 1])

    async def scenario() -> list[Any]:
        engine = await _outbox(_settings(tmp_path), "https://hooks.test/in")
        wall = FixedClock(START)
        sender = WebhookSender(
            engine,
            _settings(tmp_path),
            wall=wall,
            transport=httpx.MockTransport(handler),
        )
        states = []
        for step in (0, 1_999_999, 2_000_000, 5_999_999, 6_000_000, 6_000_001):
            wall.set(START + step)
            attempted = await sender.deliver_due()
            states.append((attempted, *(await _state(engine))[:2]))
        await sender.stop()
        await engine.dispose()
        return states

    states = asyncio.run(scenario())

    assert states == [
        (1, "pending", 1),
        (0, "pending", 1),
        (1, "pending", 2),
        (0, "pending", 2),
        (1, "delivered", 3),
        (0, "delivered", 3),
    ]
    request = seen[0]
    assert request.headers["x-daylite-event-id"] == "evt_1"
    assert request.headers["x-daylite-timestamp"] == str(START // 1_000_000)
    assert request.headers["x-daylite-signature"] == sign(
        SECRET, START // 1_000_000, b'{"id":"evt_1"}'
    )


def test_event_is_given_up_after_the_last_attempt(tmp_path: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async def scenario() -> tuple[str, int, int]:
        engine = await _outbox(_settings(tmp_path), "https://hooks.test/in")
        wall = FixedClock(START)
        sender = WebhookSender(
            engine,
            _settings(tmp_path),
            wall=wall,
            transport=httpx.MockTransport(refuse),
        )
        for _ in range(MAX_ATTEMPTS + 3):
            wall.set(wall.now_us() + 3600 * 1_000_000)
            await sender.deliver_due()
        await sender.stop()
        state = await _state(engine)
        await engine.dispose()
        return state

    state, attempts, _ = asyncio.run(scenario())

    assert (state, attempts) == ("failed", MAX_ATTEMPTS)


def test_event_without_an_endpoint_is_skipped_not_sent(tmp_path: Path) -> None:
    def unexpected(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing should be sent")

    async def scenario() -> tuple[str, int, int]:
        engine = await _outbox(_settings(tmp_path), None)
        sender = WebhookSender(
            engine,
            _settings(tmp_path),
            wall=FixedClock(START),
            transport=httpx.MockTransport(unexpected),
        )
        await sender.deliver_due()
        await sender.stop()
        state = await _state(engine)
        await engine.dispose()
        return state

    assert asyncio.run(scenario())[0] == "skipped"
