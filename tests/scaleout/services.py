"""The PostgreSQL and Redis servers the scale-out tests run against.

The tests use ``DAYLITE_TEST_POSTGRES_URL`` and ``DAYLITE_TEST_REDIS_URL`` when
set, else the servers on this machine's default ports. A server that does not
answer skips the tests, unless ``DAYLITE_REQUIRE_SERVICES=1`` (set by CI),
which turns the skip into a failure: in CI these tests must run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import redis

from tests.support.gateway import free_port

POSTGRES_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_DEFAULT = "redis://127.0.0.1:6379/0"


def postgres_server() -> str:
    return os.environ.get("DAYLITE_TEST_POSTGRES_URL") or POSTGRES_DEFAULT


def redis_server() -> str:
    return os.environ.get("DAYLITE_TEST_REDIS_URL") or REDIS_DEFAULT


def _unavailable(what: str, error: Exception) -> None:
    message = f"{what} is not reachable ({type(error).__name__}: {error})"
    if os.environ.get("DAYLITE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message}; DAYLITE_REQUIRE_SERVICES=1 makes it mandatory")
    pytest.skip(message)


async def _execute(server: str, statement: str) -> None:
    connection = await asyncpg.connect(server, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test, dropped afterwards.

    The name starts with ``daylite_so_`` rather than the suite's ``daylite_t_``,
    which a concurrent suite run drops wholesale when it ends.
    """
    server = postgres_server()
    name = f"daylite_so_{secrets.token_hex(6)}"
    try:
        asyncio.run(_execute(server, f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        _unavailable(f"PostgreSQL at {server}", exc)
    try:
        yield server.rsplit("/", 1)[0] + "/" + name
    finally:
        asyncio.run(_execute(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def delete_prefix(client: redis.Redis, prefix: str) -> None:
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start : start + 1000])


@contextlib.contextmanager
def fresh_prefix() -> Iterator[tuple[str, str]]:
    """(Redis URL, a key prefix of this test's own); its keys go afterwards."""
    url = redis_server()
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        _unavailable(f"Redis at {url}", exc)
    prefix = f"daylite_so_{secrets.token_hex(6)}"
    try:
        yield url, prefix
    finally:
        delete_prefix(client, prefix)
        client.close()


class RedisServer:
    """A redis-server of the test's own, so that stopping it harms no one else."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            _unavailable("redis-server", FileNotFoundError("not on PATH"))
        assert binary is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        self._process = subprocess.Popen(
            command,
            cwd=self.directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.RedisError:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        client.close()
        return self

    def kill(self) -> None:
        """Stop it the hard way: everything it held is gone, as in a crash."""
        if self._process is not None and self._process.poll() is None:
            os.kill(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=10)
        self._process = None
