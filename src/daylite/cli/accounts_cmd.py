"""``daylite accounts create|list|show``."""

from __future__ import annotations

import argparse
from typing import Any

from daylite.accounts import PLANS, create_account, get_account, list_accounts
from daylite.auth import KeyStore
from daylite.billing.plans import set_plan
from daylite.billing.status import credit_status
from daylite.cli.common import engine_for_cli
from daylite.clock import SystemClock
from daylite.money import format_usd
from daylite.timefmt import iso_from_us


def add_parser(commands: Any) -> None:
    accounts = commands.add_parser("accounts", help="manage accounts")
    actions = accounts.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create an account and its first key")
    create.add_argument("name")
    create.add_argument("--plan", choices=PLANS, default="developer")
    create.set_defaults(run=create_cmd)
    listing = actions.add_parser("list", help="list accounts")
    listing.set_defaults(run=list_cmd)
    show = actions.add_parser("show", help="show one account")
    show.add_argument("account_id")
    show.set_defaults(run=show_cmd)
    set_plan = actions.add_parser("set-plan", help="move an account to another plan")
    set_plan.add_argument("account_id")
    set_plan.add_argument("plan", choices=PLANS)
    set_plan.set_defaults(run=set_plan_cmd)


async def create_cmd(args: argparse.Namespace) -> int:
    clock = SystemClock()
    async with engine_for_cli() as engine:
        account = await create_account(engine, clock, args.name, args.plan)
        issued = await KeyStore(engine, clock).issue(account.id, "first key")
    print(f"account: {account.id}")
    print(f"key id:  {issued.id}")
    print(f"secret:  {issued.secret}")
    print("The secret is shown only now; store it safely.")
    return 0


async def list_cmd(args: argparse.Namespace) -> int:
    async with engine_for_cli() as engine:
        accounts = await list_accounts(engine)
    print(f"{'id':30} {'plan':10} {'balance':>14} name")
    for account in accounts:
        balance = format_usd(account.balance_pico)
        print(f"{account.id:30} {account.plan:10} {balance:>14} {account.name}")
    return 0


async def show_cmd(args: argparse.Namespace) -> int:
    async with engine_for_cli() as engine:
        account = await get_account(engine, args.account_id)
        async with engine.connect() as connection:
            status = await credit_status(
                connection, args.account_id, SystemClock().now_us()
            )
    if account is None or status is None:
        print(f"daylite: no account {args.account_id!r}")
        return 1
    print(f"id:       {account.id}")
    print(f"name:     {account.name}")
    print(f"plan:     {account.plan}")
    print(f"balance:  {format_usd(account.balance_pico)} USD")
    print(
        f"free:     {status.free_remaining} of {status.free_included} requests "
        f"left in {status.period} (UTC)"
    )
    print(f"created:  {iso_from_us(account.created_at)}")
    return 0


async def set_plan_cmd(args: argparse.Namespace) -> int:
    async with engine_for_cli() as engine, engine.begin() as connection:
        found = await set_plan(connection, args.account_id, args.plan)
    if not found:
        print(f"daylite: no account {args.account_id!r}")
        return 1
    print(f"{args.account_id} is now on the {args.plan} plan.")
    print("A running gateway applies it within a few seconds.")
    return 0
