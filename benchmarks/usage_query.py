"""Time the usage API over a ledger of 1,000,000 entries in a temporary SQLite file.

The ledger and its hourly rollups are bulk-inserted (rollups computed exactly as
the ledger hook would), then the real app answers over in-process ASGI, so the
timings include authentication, parsing, SQL and rendering:

    .venv/bin/python benchmarks/usage_query.py [--entries N] [--repeat R]

Data: one main account holding 90% of entries and a second account with the
rest, spread evenly over November and December 2026; customers chosen with a
Zipf-like skew, each using one to three features and one or two models, as real
products do; 5% of requests carry no customer header. The run stops itself
after ``--budget`` seconds of querying.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from daylite.accounts import create_account
from daylite.app import build_app
from daylite.auth import KeyStore
from daylite.catalog import build_catalog, read_config_file
from daylite.clock import FixedClock
from daylite.metering.ledger import LedgerEntry, LedgerWriter
from daylite.money import format_usd
from daylite.settings import Settings
from daylite.storage.db import create_engine
from daylite.storage.migrate import upgrade
from daylite.usage.query import UsageFilter, summarize
from daylite.usage.rollups import add_to_rollups, outcome_of
from daylite.usage.spans import SPANS

NOVEMBER = 1_793_491_200_000_000  # 2026-11-01T00:00:00Z
JANUARY = 1_798_761_600_000_000  # 2027-01-01T00:00:00Z
DECEMBER = 1_796_083_200_000_000  # 2026-12-01T00:00:00Z
MODELS = {  # micro-dollars per 1M tokens: input, output
    "llama-3.3-70b": (300_000, 500_000),
    "llama-3.1-8b": (40_000, 60_000),
    "deepseek-v3": (350_000, 1_000_000),
}
FEATURES = ["chat", "search", "summary", "extract", "translate", "code", "rag", "tag"]
STATUSES = ["ok"] * 900 + ["abandoned"] * 10 + ["backend_error"] * 10
STATUSES += ["refused"] * 40 + ["invalid"] * 20 + ["failed"] * 15 + ["rejected"] * 5
HTTP_STATUS = {"refused": 429, "invalid": 400, "failed": 502, "rejected": 400}
LEDGER_COLUMNS = (
    "id, account_id, key_id, customer, feature, model, backend, endpoint, status, "
    "http_status, error_code, stream, tokens_in, tokens_out, cached_tokens, "
    "reasoning_tokens, cost_pico, counted_by, latency_ms, created_at"
)
LEDGER_FIELDS = tuple(name.strip() for name in LEDGER_COLUMNS.split(","))


@dataclass(frozen=True)
class Customer:
    name: str | None
    features: tuple[str | None, ...]
    models: tuple[str, ...]


def make_customers(rng: random.Random, count: int) -> list[Customer]:
    customers = [Customer(None, (None, "chat"), ("llama-3.3-70b",))]
    for n in range(count):
        features: tuple[str | None, ...] = tuple(
            rng.sample(FEATURES, rng.randint(1, 3))
        )
        if rng.random() < 0.2:
            features += (None,)
        models = tuple(rng.sample(sorted(MODELS), rng.randint(1, 2)))
        customers.append(Customer(f"cust-{n:05d}", features, models))
    return customers


def generate(
    count: int, accounts: tuple[str, str], seed: int
) -> Iterator[tuple[Any, ...]]:
    """Ledger rows in time order."""
    rng = random.Random(seed)
    customers = make_customers(rng, 2_000)
    weights = [0.05 * sum(1 / (n + 1) for n in range(2_000))] + [
        1 / (n + 1) for n in range(2_000)
    ]
    picks = rng.choices(range(len(customers)), weights=weights, k=count)
    span = JANUARY - NOVEMBER
    times = sorted(NOVEMBER + rng.randrange(span) for _ in range(count))
    for n in range(count):
        customer = customers[picks[n]]
        model = rng.choice(customer.models)
        status = rng.choice(STATUSES)
        billed = outcome_of(status) == "billed"
        tokens_in = rng.randint(20, 4_000) if billed else 0
        tokens_out = rng.randint(1, 1_500) if billed else 0
        price_in, price_out = MODELS[model]
        yield (
            f"req_{n:022d}",
            accounts[0] if rng.random() < 0.9 else accounts[1],
            None,
            customer.name,
            rng.choice(customer.features),
            model,
            "primary" if status != "invalid" else None,
            "chat",
            status,
            HTTP_STATUS.get(status, 200),
            None,
            0,
            tokens_in,
            tokens_out,
            0,
            0,
            tokens_in * price_in + tokens_out * price_out,
            "backend",
            120,
            times[n],
        )


def bulk_load(path: Path, count: int, accounts: tuple[str, str]) -> tuple[int, int]:
    """Insert ``count`` ledger rows and their rollups; returns both row counts.

    The rollups are summed here exactly as the ledger hook sums them, one row
    per span, bucket, customer, feature, model and outcome.
    """
    rollups: dict[tuple[Any, ...], list[int]] = {}
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA synchronous=OFF")
    placeholders = ", ".join("?" * 20)
    insert = f"INSERT INTO ledger ({LEDGER_COLUMNS}) VALUES ({placeholders})"
    batch: list[tuple[Any, ...]] = []
    with connection:
        for row in generate(count, accounts, seed=20261210):
            batch.append(row)
            group = (row[3] or "", row[4] or "", row[5] or "", outcome_of(row[8]))
            for span in SPANS:
                key = (row[1], span.name, span.floor(row[19]), *group)
                sums = rollups.setdefault(key, [0, 0, 0, 0])
                sums[0] += 1
                sums[1] += row[12]
                sums[2] += row[13]
                sums[3] += row[16]
            if len(batch) == 50_000:
                connection.executemany(insert, batch)
                batch.clear()
        connection.executemany(insert, batch)
        connection.executemany(
            "INSERT INTO usage_rollups (account_id, span, bucket_start, customer, "
            "feature, model, outcome, requests, tokens_in, tokens_out, cost_pico) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            sorted((*key, *sums) for key, sums in rollups.items()),
        )
    connection.execute("ANALYZE")
    connection.close()
    return count, len(rollups)


async def prepare(url: str) -> tuple[tuple[str, str], str]:
    engine = create_engine(url)
    try:
        await upgrade(engine)
        clock = FixedClock(NOVEMBER)
        main = await create_account(engine, clock, "main", plan="pro")
        other = await create_account(engine, clock, "other", plan="pro")
        key = await KeyStore(engine, clock).issue(main.id, "bench")
        return (main.id, other.id), key.secret
    finally:
        await engine.dispose()


@dataclass(frozen=True)
class Timing:
    name: str
    runs: list[float]
    detail: str


async def measure(
    name: str, repeat: int, work: Callable[[], Awaitable[str]], deadline: float
) -> Timing:
    runs: list[float] = []
    detail = ""
    for _ in range(repeat):
        if runs and time.monotonic() > deadline:
            break
        began = time.perf_counter()
        detail = await work()
        runs.append((time.perf_counter() - began) * 1000)
    return Timing(name, runs, detail)


def _get(http: httpx.AsyncClient, path: str, **params: str) -> Callable[[], Any]:
    async def call() -> str:
        response = await http.get(path, params=params)
        response.raise_for_status()
        body = response.json()
        series = f", {len(body['series'])} points" if "series" in body else ""
        return (
            f"{body['totalRequests']:,} requests, ${body['totalCost']}, "
            f"{len(body['byCustomer'])} customers{series}"
        )

    return call


def _csv(http: httpx.AsyncClient, **params: str) -> Callable[[], Any]:
    async def call() -> str:
        rows = 0
        size = 0
        async with http.stream("GET", "/v1/usage", params=params) as response:
            response.raise_for_status()
            async for chunk in response.aiter_bytes():
                rows += chunk.count(b"\n")
                size += len(chunk)
        return f"{rows - 1:,} rows, {size / 1e6:.1f} MB"

    return call


def _pages(http: httpx.AsyncClient, pages: int, **params: str) -> Callable[[], Any]:
    async def call() -> str:
        cursor: str | None = None
        seen = 0
        for _ in range(pages):
            extra = {"cursor": cursor} if cursor else {}
            response = await http.get("/v1/requests", params={**params, **extra})
            response.raise_for_status()
            body = response.json()
            seen += len(body["data"])
            cursor = body["next_cursor"]
            if cursor is None:
                break
        return f"{seen:,} entries in {pages} pages"

    return call


def _ledger_only(url: str, flt: UsageFilter) -> Callable[[], Any]:
    async def call() -> str:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                summary = await summarize(connection, flt, rollups=False)
        finally:
            await engine.dispose()
        total = summary.total
        return (
            f"{total.requests:,} requests, ${format_usd(total.cost_pico)} "
            "(ledger scan, no rollups)"
        )

    return call


@contextlib.asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """Start and stop an ASGI app through the lifespan protocol, as a server would."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task = asyncio.create_task(app(scope, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    started = await outbox.get()
    if started["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"app did not start: {started}")
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task


async def run_queries(
    url: str, settings: Settings, key: str, account: str, repeat: int, budget: float
) -> list[Timing]:
    config, source = read_config_file(None)
    catalog = build_catalog(config, source)
    app = build_app(settings, catalog, clock=FixedClock(JANUARY), config=config)
    month = {"start": "2026-12-01", "end": "2027-01-01"}
    ragged = {"start": "2026-12-01T00:30:00Z", "end": "2026-12-31T23:29:59.5Z"}
    deadline = time.monotonic() + budget
    async with (
        lifespan(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://bench",
            headers={"authorization": f"Bearer {key}"},
            timeout=300,
        ) as http,
    ):
        plan: list[tuple[str, int, Callable[[], Any]]] = [
            ("usage, one month", repeat, _get(http, "/v1/usage", **month)),
            (
                "usage, month, edges off the hour",
                repeat,
                _get(http, "/v1/usage", **ragged),
            ),
            ("usage, all time (2 months)", repeat, _get(http, "/v1/usage")),
            (
                "usage ?customer= (top customer)",
                repeat,
                _get(http, "/v1/usage", customer="cust-00000", **month),
            ),
            (
                "usage ?customer= (tail customer)",
                repeat,
                _get(http, "/v1/usage", customer="cust-01500", **month),
            ),
            (
                "usage ?feature=&model=",
                repeat,
                _get(http, "/v1/usage", feature="search", model="deepseek-v3", **month),
            ),
            (
                "usage ?granularity=day",
                repeat,
                _get(http, "/v1/usage", granularity="day", **month),
            ),
            (
                "usage ?granularity=hour",
                repeat,
                _get(http, "/v1/usage", granularity="hour", **month),
            ),
            (
                "usage, one day",
                repeat,
                _get(http, "/v1/usage", start="2026-12-15", end="2026-12-16"),
            ),
            (
                "CSV export, one month",
                max(1, repeat // 2),
                _csv(http, format="csv", **month),
            ),
            ("requests, first page (50)", repeat, _pages(http, 1)),
            ("requests, 20 pages of 50", repeat, _pages(http, 20)),
            (
                "requests, 10 pages of 1000",
                max(1, repeat // 2),
                _pages(http, 10, limit="1000"),
            ),
            (
                "requests ?customer=, 5 pages",
                repeat,
                _pages(http, 5, customer="cust-00042"),
            ),
            (
                "requests ?feature=&model=, 5 pages",
                repeat,
                _pages(http, 5, feature="tag", model="llama-3.1-8b"),
            ),
            (
                "requests ?status=refused, 5 pages",
                repeat,
                _pages(http, 5, status="refused"),
            ),
            (
                "for scale: month from the ledger alone",
                max(1, repeat // 2),
                _ledger_only(url, UsageFilter(account, start=DECEMBER, end=JANUARY)),
            ),
        ]
        return [
            await measure(name, times, work, deadline) for name, times, work in plan
        ]


async def write_rate(folder: Path, count: int, hooked: bool) -> float:
    """Ledger entries per second through the real group-committing writer."""
    path = folder / f"writes-{hooked}.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await upgrade(engine)
        writer = LedgerWriter(engine)
        writer.batch_hooks = [add_to_rollups] if hooked else []
        writer.start()
        rows = list(generate(count, ("acct_w", "acct_x"), seed=5))
        entries = [
            LedgerEntry(**dict(zip(LEDGER_FIELDS, row, strict=True))) for row in rows
        ]
        began = time.perf_counter()
        # Waves of 256 concurrent requests, as a busy gateway would send them.
        for first in range(0, count, 256):
            wave = entries[first : first + 256]
            await asyncio.gather(*(writer.write(entry) for entry in wave))
        elapsed = time.perf_counter() - began
        await writer.stop()
        return count / elapsed
    finally:
        await engine.dispose()


def report(timings: list[Timing], entries: int, rollup_rows: int, load_s: float) -> str:
    lines = [
        f"ledger entries: {entries:,}   rollup rows (hour+day+month): "
        f"{rollup_rows:,}   "
        f"bulk load: {load_s:.1f} s   SQLite {sqlite3.sqlite_version}",
        "",
        f"{'query':<42} {'median ms':>10} {'max ms':>9} {'runs':>5}  answer",
        "-" * 110,
    ]
    for timing in timings:
        lines.append(
            f"{timing.name:<42} {statistics.median(timing.runs):>10.1f} "
            f"{max(timing.runs):>9.1f} {len(timing.runs):>5}  {timing.detail}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--budget", type=float, default=300.0, help="seconds")
    parser.add_argument("--writes", type=int, default=20_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="daylite-bench-") as folder:
        path = Path(folder) / "daylite.db"
        url = f"sqlite+aiosqlite:///{path}"
        settings = replace(Settings(), data_dir=Path(folder), database_url=url)
        accounts, key = asyncio.run(prepare(url))
        began = time.perf_counter()
        entries, rollup_rows = bulk_load(path, args.entries, accounts)
        load_s = time.perf_counter() - began
        timings = asyncio.run(
            run_queries(url, settings, key, accounts[0], args.repeat, args.budget)
        )
        plain = asyncio.run(write_rate(Path(folder), args.writes, hooked=False))
        hooked = asyncio.run(write_rate(Path(folder), args.writes, hooked=True))
    sys.stdout.write(report(timings, entries, rollup_rows, load_s) + "\n\n")
    sys.stdout.write(
        f"ledger writes ({args.writes:,} entries, 256 at a time): "
        f"{plain:,.0f}/s without the rollup hook, {hooked:,.0f}/s with it\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
