"""``daylite keys create|list|revoke``."""

from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy import select

from daylite.accounts import get_account
from daylite.auth import KeyStore
from daylite.cli.common import engine_for_cli
from daylite.clock import SystemClock
from daylite.runtime import load_runtime
from daylite.storage.tables import api_keys
from daylite.timefmt import iso_from_us


def add_parser(commands: Any) -> None:
    keys = commands.add_parser("keys", help="manage API keys")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a key (shown once)")
    create.add_argument("--account", help="account id (default: the only account)")
    create.add_argument("--name", default="", help="a label for the key")
    create.add_argument(
        "--operator", action="store_true", help="an operator key instead"
    )
    create.set_defaults(run=create_key)
    listing = actions.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--account", help="only this account's keys")
    listing.set_defaults(run=list_keys)
    revoke = actions.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id")
    revoke.set_defaults(run=revoke_key)


async def _only_account(engine: Any) -> str:
    from daylite.accounts import list_accounts

    accounts = await list_accounts(engine)
    if len(accounts) != 1:
        raise SystemExit(
            f"daylite: {len(accounts)} accounts exist; name one with --account"
        )
    return accounts[0].id


async def create_key(args: argparse.Namespace) -> int:
    async with engine_for_cli() as engine:
        account_id: str | None = None
        if not args.operator:
            account_id = args.account or await _only_account(engine)
            if await get_account(engine, account_id) is None:
                raise SystemExit(f"daylite: no account {account_id!r}")
        kind = "operator" if args.operator else "account"
        issued = await KeyStore(engine, SystemClock()).issue(
            account_id, args.name, kind
        )
    print(f"id:     {issued.id}")
    print(f"secret: {issued.secret}")
    print("The secret is shown only now; store it safely.")
    return 0


async def list_keys(args: argparse.Namespace) -> int:
    query = select(api_keys).order_by(api_keys.c.created_at)
    if args.account:
        query = query.where(api_keys.c.account_id == args.account)
    async with engine_for_cli() as engine, engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    print(f"{'id':30} {'kind':9} {'prefix':13} {'account':30} {'state':8} name")
    for row in rows:
        state = "revoked" if row.revoked_at else "active"
        last = iso_from_us(row.last_used_at) if row.last_used_at else "never"
        print(
            f"{row.id:30} {row.kind:9} {row.prefix:13} {row.account_id or '-':30} "
            f"{state:8} {row.name} (last used {last})"
        )
    return 0


async def revoke_key(args: argparse.Namespace) -> int:
    settings = load_runtime().settings
    async with engine_for_cli() as engine:
        keys = KeyStore(engine, SystemClock())
        shared = None
        if settings.redis_url:
            # With Redis, running gateways hear of it before their next request;
            # without, they find it in the database within a second.
            from daylite.revocation_redis import RedisRevocationFeed
            from daylite.storage.redis import create_shared_redis

            shared = create_shared_redis(settings)
            await shared.start()
            keys.feed = RedisRevocationFeed(shared)
        try:
            revoked = await keys.revoke(args.key_id)
        finally:
            if shared is not None:
                await shared.close()
    if not revoked:
        print(f"daylite: no active key {args.key_id!r}")
        return 1
    print(f"Revoked {args.key_id}.")
    return 0
