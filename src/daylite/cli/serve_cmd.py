"""``daylite serve`` and ``daylite migrate``.

Migrations and the first-start account run once, before any worker starts:
in this process for ``--workers N``, and under a PostgreSQL advisory lock for
replicas on several hosts that start together, so they take turns.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import text

from daylite.auth import IssuedKey
from daylite.catalog import default_config_text
from daylite.logs import configure_logging
from daylite.runtime import load_runtime, prepare_database
from daylite.settings import Settings
from daylite.storage.db import create_engine, is_sqlite

# Any fixed number will do; it only has to be the same in every replica.
_MIGRATION_LOCK = 0x6461796C697465


def add_parser(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--host", help="listen address (DAYLITE_HOST)")
    serve.add_argument("--port", type=int, help="listen port (DAYLITE_PORT)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes (default 1; more than 1 needs DAYLITE_REDIS_URL)",
    )
    serve.set_defaults(run=run_serve)


def _seed_config_file() -> None:
    """Give a new operator a config file to edit, next to the data."""
    if os.environ.get("DAYLITE_CONFIG") or os.environ.get("DAYLITE_CONFIG_PATH"):
        return
    data_dir = Path(os.environ.get("DAYLITE_DATA_DIR", "data"))
    path = data_dir / "daylite.toml"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(default_config_text(), encoding="utf-8")
        print(f"Wrote the default configuration to {path}; edit it to add backends.")


async def prepare_once(
    settings: Settings, *, bootstrap: bool = True
) -> IssuedKey | None:
    """``prepare_database``, one replica at a time on a shared PostgreSQL."""
    url = settings.resolved_database_url
    if is_sqlite(url):
        return await prepare_database(settings, bootstrap=bootstrap)
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            lock = {"key": _MIGRATION_LOCK}
            await connection.execute(text("SELECT pg_advisory_lock(:key)"), lock)
            try:
                return await prepare_database(settings, bootstrap=bootstrap)
            finally:
                await connection.execute(text("SELECT pg_advisory_unlock(:key)"), lock)
    finally:
        await engine.dispose()


def _workers_refused(workers: int, settings: Settings) -> str | None:
    if workers < 1:
        return f"--workers {workers} is not valid: use 1 or more"
    if workers > 1 and settings.redis_url is None:
        # Each process would keep its own budget and credit reservations, so
        # two workers could each admit the last of the same cap.
        return (
            f"--workers {workers} needs DAYLITE_REDIS_URL: without Redis every "
            "worker keeps its own budget and credit reservations, and together "
            "they could overspend a cap. Set DAYLITE_REDIS_URL (see the README, "
            "Scale-out) or run one worker."
        )
    return None


def run_serve(args: argparse.Namespace) -> int:
    if args.host:
        os.environ["DAYLITE_HOST"] = args.host
    if args.port:
        os.environ["DAYLITE_PORT"] = str(args.port)
    _seed_config_file()
    runtime = load_runtime()
    settings = runtime.settings
    configure_logging(settings.log_level, settings.log_format)
    refused = _workers_refused(args.workers, settings)
    if refused is not None:
        print(f"daylite: {refused}", file=sys.stderr)
        return 2
    first_key = asyncio.run(prepare_once(settings))
    if first_key is not None:
        print("=" * 72)
        print("First start: created account 'default'. Its API key, shown only once:")
        print(f"\n    {first_key.secret}\n")
        print("=" * 72)
    simulated = [m.id for m in runtime.catalog.models.values() if m.simulated]
    if simulated:
        print(
            "WARNING: no backend is configured for "
            + ", ".join(simulated)
            + ". These models answer from the built-in SIMULATED backend with "
            "canned text. Add [backends] and routes to the config to go live.",
            file=sys.stderr,
        )
    print(f"Daylite listening on http://{settings.host}:{settings.port}/v1", flush=True)
    uvicorn.run(
        "daylite.runtime:app_from_environment",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=args.workers,
        log_level=settings.log_level,
        log_config=None,
        access_log=False,
        lifespan="on",
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=10,
    )
    return 0


def run_migrate(args: argparse.Namespace) -> int:
    runtime = load_runtime()
    asyncio.run(prepare_once(runtime.settings, bootstrap=False))
    print("Database is at the latest migration.")
    return 0
