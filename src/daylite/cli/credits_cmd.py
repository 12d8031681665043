"""``daylite credits grant ACCOUNT_ID AMOUNT_USD --reason TEXT``."""

from __future__ import annotations

import argparse
from typing import Any

from daylite.billing.config import MAX_AMOUNT_PICO
from daylite.billing.credits import add_credits
from daylite.cli.common import engine_for_cli
from daylite.clock import SystemClock
from daylite.money import MoneyFormatError, format_usd, usd_to_pico


def add_parser(commands: Any) -> None:
    credits = commands.add_parser("credits", help="manage account credits")
    actions = credits.add_subparsers(dest="action", required=True)
    grant = actions.add_parser("grant", help="add credits to an account")
    grant.add_argument("account_id")
    grant.add_argument("amount_usd", help='USD to add, e.g. "10.00"')
    grant.add_argument("--reason", required=True, help="why (kept in the history)")
    grant.set_defaults(run=grant_cmd)


def _amount(text: str) -> int:
    try:
        amount = usd_to_pico(text)
    except MoneyFormatError as exc:
        raise SystemExit(f"daylite: amount {text!r} is not valid: {exc}") from None
    if not 0 < amount <= MAX_AMOUNT_PICO:
        raise SystemExit(f"daylite: amount {text!r} must be > 0 and at most 1000000")
    return amount


async def grant_cmd(args: argparse.Namespace) -> int:
    amount = _amount(args.amount_usd)
    reason = args.reason.strip()
    if not reason or len(reason) > 500:
        raise SystemExit("daylite: --reason must be 1 to 500 characters")
    async with engine_for_cli() as engine, engine.begin() as connection:
        snapshot = await add_credits(
            connection,
            args.account_id,
            amount,
            kind="grant",
            at=SystemClock().now_us(),
            reason=reason,
            reference="cli",
        )
    if snapshot is None:
        print(f"daylite: no account {args.account_id!r}")
        return 1
    print(f"Granted {format_usd(amount)} USD to {args.account_id}.")
    print(f"balance: {format_usd(snapshot.balance_pico)} USD")
    return 0
