"""Start-up: read configuration, prepare the database, build the app from env."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from daylite.accounts import count_accounts, create_account
from daylite.app import InferenceFastPath, build_app
from daylite.auth import IssuedKey, KeyStore
from daylite.billing.config import load_billing_config
from daylite.catalog import Catalog, build_catalog, read_config_file
from daylite.clock import SystemClock
from daylite.logs import configure_logging
from daylite.settings import Settings, load_settings, locate_config
from daylite.storage.db import create_engine
from daylite.storage.migrate import upgrade

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    catalog: Catalog
    config: Mapping[str, Any]


def load_runtime(environ: Mapping[str, str] | None = None) -> Runtime:
    """Settings and catalog, validated; raises ConfigError with a clear message."""
    environ = os.environ if environ is None else environ
    path = locate_config(environ)
    config, source = read_config_file(path)
    gateway_table = config.get("gateway", {})
    settings = load_settings(gateway_table, environ)
    catalog = build_catalog(
        config, source, simulate_unrouted=settings.simulate_unrouted
    )
    # Checked here as well as where billing starts, so a bad pack stops the
    # start with exit code 2 and a message, before anything is served.
    load_billing_config(config.get("billing", {}), environ)
    return Runtime(settings, catalog, config)


async def prepare_database(
    settings: Settings, *, bootstrap: bool = True
) -> IssuedKey | None:
    """Migrate; on the very first start, create an account and its first key."""
    if settings.resolved_database_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.resolved_database_url)
    try:
        await upgrade(engine)
        if not bootstrap or await count_accounts(engine):
            return None
        clock = SystemClock()
        account = await create_account(engine, clock, "default")
        return await KeyStore(engine, clock).issue(account.id, "first key")
    finally:
        await engine.dispose()


def app_from_environment() -> InferenceFastPath:
    """The app factory uvicorn workers call; configuration comes from env."""
    runtime = load_runtime()
    configure_logging(runtime.settings.log_level, runtime.settings.log_format)
    return build_app(runtime.settings, runtime.catalog, config=runtime.config)
