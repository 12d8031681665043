"""Run a real Daylite gateway on 127.0.0.1 for a test, in a background thread.

The gateway is built exactly as ``daylite serve`` builds it, with the config
text and settings a test chooses, and an injectable clock. Clients talk to it
over real HTTP.
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import os
import socket
import sqlite3
import threading
import time
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import openai
import uvicorn

from daylite.app import build_app
from daylite.catalog import build_catalog
from daylite.clock import Clock
from daylite.runtime import prepare_database
from daylite.settings import Settings

DEFAULT_MODELS = """
[models."llama-3.3-70b"]
context_length = 131072
input = "0.30"
output = "0.50"
batch_input = "0.20"
batch_output = "0.35"
routes = [{ backend = "primary" }]

[models."llama-3.1-8b"]
context_length = 131072
input = "0.04"
output = "0.06"
batch_input = "0.03"
batch_output = "0.04"
routes = [{ backend = "primary" }]

[models."deepseek-v3"]
context_length = 131072
input = "0.35"
output = "1.00"
batch_input = "0.25"
batch_output = "0.70"
routes = [{ backend = "primary" }]
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config_for(*backend_urls: str, models: str = DEFAULT_MODELS) -> str:
    """Config text with backends named primary, secondary, ... in that order."""
    names = ["primary", "secondary", "tertiary"]
    tables = [
        f'[backends.{names[i]}]\nbase_url = "{url}"\n'
        for i, url in enumerate(backend_urls)
    ]
    if len(backend_urls) > 1:
        routes = ", ".join(
            f'{{ backend = "{names[i]}", priority = {i + 1} }}'
            for i in range(len(backend_urls))
        )
        models = models.replace(
            'routes = [{ backend = "primary" }]', f"routes = [{routes}]"
        )
    return "\n".join(tables) + models


def postgres_server_url() -> str | None:
    """A PostgreSQL server the suite may create databases on, if one is named."""
    return os.environ.get("DAYLITE_TEST_POSTGRES_URL") or None


def _database_name(data_dir: Path) -> str:
    # Tied to the data directory, so a gateway restarted on the same directory
    # finds the same database, as a restarted deployment would.
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    return f"daylite_t_{digest}"


def redis_server_url() -> str | None:
    """A Redis the suite may use under its own key prefixes, if one is named."""
    return os.environ.get("DAYLITE_TEST_REDIS_URL") or None


def test_redis_settings(data_dir: Path) -> dict[str, Any]:
    """Redis settings for a gateway on ``data_dir``: a prefix of its own, or none.

    Like the database, the prefix follows the data directory, so a restarted
    gateway finds its counters again. The prefixes used are deleted when the
    test process exits.
    """
    url = redis_server_url()
    if url is None:
        return {}
    prefix = _database_name(data_dir)
    if not _REDIS_PREFIXES:
        atexit.register(lambda: asyncio.run(drop_redis_prefixes(url, _REDIS_PREFIXES)))
    _REDIS_PREFIXES.add(prefix)
    return {"redis_url": url, "redis_prefix": prefix}


# The prefixes this test process used; only these are deleted at exit, so that
# test runs sharing one Redis leave each other alone.
_REDIS_PREFIXES: set[str] = set()


async def drop_redis_prefixes(url: str, prefixes: Iterable[str]) -> None:
    """Delete every key under each of ``prefixes``."""
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(url)
    try:
        for prefix in prefixes:
            batch = [key async for key in client.scan_iter(match=f"{prefix}:*")]
            for start in range(0, len(batch), 1000):
                await client.delete(*batch[start : start + 1000])
    finally:
        await client.aclose()


async def _create_database(server: str, name: str) -> None:
    connection = await asyncpg.connect(server)
    try:
        exists = await connection.fetchval(
            "SELECT 1 FROM pg_database WHERE datname = $1", name
        )
        if not exists:
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


# The databases this test process made, so that cleaning up never touches a
# suite that another process is running against the same server.
CREATED_DATABASES: set[str] = set()


async def drop_test_databases(server: str) -> None:
    connection = await asyncpg.connect(server)
    try:
        for name in sorted(CREATED_DATABASES):
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()
    CREATED_DATABASES.clear()


def test_database_url(data_dir: Path) -> str:
    """SQLite in ``data_dir``, or a database of its own on the test PostgreSQL."""
    server = postgres_server_url()
    if server is None:
        return f"sqlite+aiosqlite:///{data_dir / 'daylite.db'}"
    name = _database_name(data_dir)
    asyncio.run(_create_database(server, name))
    CREATED_DATABASES.add(name)
    return server.rsplit("/", 1)[0] + "/" + name


async def _fetch(url: str, query: str, params: tuple[Any, ...]) -> list[Any]:
    numbered = query
    for position in range(1, len(params) + 1):
        numbered = numbered.replace("?", f"${position}", 1)
    connection = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        return list(await connection.fetch(numbered, *params))
    finally:
        await connection.close()


class GatewayServer:
    """One gateway process-in-a-thread with its own data directory."""

    def __init__(
        self,
        data_dir: Path,
        config_text: str,
        *,
        clock: Clock | None = None,
        **settings: Any,
    ) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        for name, value in test_redis_settings(data_dir).items():
            settings.setdefault(name, value)
        self.settings = replace(
            Settings(),
            data_dir=data_dir,
            database_url=settings.pop("database_url", test_database_url(data_dir)),
            host="127.0.0.1",
            port=self.port,
            **settings,
        )
        self.config = tomllib.loads(config_text)
        self.catalog = build_catalog(self.config, "test config")
        self.clock = clock
        self.key = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base_url}/v1"

    def start(self) -> GatewayServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        issued = asyncio.run(prepare_database(self.settings))
        if issued is not None:
            self.key = issued.secret
        app = build_app(
            self.settings, self.catalog, clock=self.clock, config=self.config
        )
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            log_config=None,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("gateway did not start")
            time.sleep(0.02)
        self.app = app
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=15)
            self._server = None

    def __enter__(self) -> GatewayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- clients --------------------------------------------------------------

    def client(self, key: str | None = None, **kwargs: Any) -> openai.OpenAI:
        kwargs.setdefault("max_retries", 0)
        return openai.OpenAI(base_url=self.url, api_key=key or self.key, **kwargs)

    def http(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            headers={"authorization": f"Bearer {key or self.key}"},
            timeout=30,
        )

    # -- direct reads of the database, to check what was stored ----------------

    def sql(
        self, query: str, params: Mapping[str, Any] | tuple[Any, ...] = ()
    ) -> list[Any]:
        url = self.settings.database_url
        if url.startswith("sqlite"):
            path = url.split(":///", 1)[1]
            with sqlite3.connect(path) as connection:
                connection.row_factory = sqlite3.Row
                return list(connection.execute(query, params).fetchall())
        assert isinstance(params, tuple), "use ? placeholders with a tuple"
        return asyncio.run(_fetch(url, query, params))

    def ledger(self, request_id: str) -> sqlite3.Row:
        rows = self.sql("SELECT * FROM ledger WHERE id = ?", (request_id,))
        assert len(rows) == 1, f"expected one ledger entry for {request_id}"
        return rows[0]
