"""What the management subcommands share: an engine on the configured database."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncEngine

from daylite.runtime import load_runtime
from daylite.storage.db import create_engine
from daylite.storage.migrate import upgrade


@contextlib.asynccontextmanager
async def engine_for_cli() -> AsyncIterator[AsyncEngine]:
    settings = load_runtime().settings
    if settings.resolved_database_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.resolved_database_url)
    try:
        await upgrade(engine)
        yield engine
    finally:
        await engine.dispose()
