"""Billing configuration: credit packs and Stripe settings from ``[billing]``.

The operator's file holds the packs and the URLs; secrets may live there too,
but the environment wins (``DAYLITE_STRIPE_*``) so they can stay out of files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from daylite.money import MoneyFormatError, usd_to_pico
from daylite.settings import ConfigError

_PACK_ID = re.compile(r"[a-z0-9][a-z0-9_\-]{0,63}")
_PICO_PER_CENT = 10**10
# Balances are 64-bit pico-dollars (about 9.2 million USD); one purchase or
# grant stays far below that so no sum of a few can overflow.
MAX_AMOUNT_PICO = 1_000_000 * 10**12

_ENVIRONMENT = {
    "stripe_secret_key": "DAYLITE_STRIPE_SECRET_KEY",
    "stripe_webhook_secret": "DAYLITE_STRIPE_WEBHOOK_SECRET",
    "stripe_api_base": "DAYLITE_STRIPE_API_BASE",
    "success_url": "DAYLITE_STRIPE_SUCCESS_URL",
    "cancel_url": "DAYLITE_STRIPE_CANCEL_URL",
}
_KNOWN = {*_ENVIRONMENT, "packs", "refresh_seconds"}


@dataclass(frozen=True, slots=True)
class CreditPack:
    """What a buyer pays (``price_cents``) and what the account gets."""

    id: str
    name: str
    price_cents: int
    credits_pico: int


@dataclass(frozen=True, slots=True)
class BillingConfig:
    packs: tuple[CreditPack, ...] = ()
    stripe_secret_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None
    success_url: str = "http://127.0.0.1:8080/?checkout=success"
    cancel_url: str = "http://127.0.0.1:8080/?checkout=cancelled"
    refresh_seconds: float = 2.0

    def pack(self, pack_id: str) -> CreditPack | None:
        return next((pack for pack in self.packs if pack.id == pack_id), None)


def _money(where: str, raw: object, *, max_decimals: int) -> int:
    try:
        pico = usd_to_pico(raw, max_decimals=max_decimals)
    except MoneyFormatError as exc:
        raise ConfigError(f"{where} = {raw!r} is not valid: {exc}") from None
    if not 0 < pico <= MAX_AMOUNT_PICO:
        raise ConfigError(f"{where} = {raw!r} must be > 0 and at most 1000000 USD")
    return pico


def _pack(position: int, table: object) -> CreditPack:
    where = f"[[billing.packs]] #{position + 1}"
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where} must be a table with id, price_usd, credits_usd")
    pack_id = table.get("id")
    if not isinstance(pack_id, str) or not _PACK_ID.fullmatch(pack_id):
        raise ConfigError(
            f"{where}: id = {pack_id!r} must be 1-64 lowercase letters, digits, _ or -"
        )
    for key in ("price_usd", "credits_usd"):
        if key not in table:
            raise ConfigError(f"{where} ({pack_id}) needs {key}")
    # Stripe charges whole cents, so the price may have at most two decimals.
    price = _money(f"{where} price_usd", table["price_usd"], max_decimals=2)
    credits = _money(f"{where} credits_usd", table["credits_usd"], max_decimals=12)
    name = table.get("name", pack_id)
    return CreditPack(pack_id, str(name), price // _PICO_PER_CENT, credits)


def _packs(raw: object) -> tuple[CreditPack, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(
            "billing.packs must be an array of tables ([[billing.packs]])"
        )
    packs = tuple(_pack(position, table) for position, table in enumerate(raw))
    ids = [pack.id for pack in packs]
    duplicates = sorted({pack_id for pack_id in ids if ids.count(pack_id) > 1})
    if duplicates:
        raise ConfigError(f"billing.packs: duplicate pack ids {duplicates}")
    return packs


def _text(table: Mapping[str, Any], environ: Mapping[str, str], key: str) -> Any:
    value = environ.get(_ENVIRONMENT[key]) or table.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"billing.{key} must be a string")
    return value or None


def _refresh(raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw <= 0:
        raise ConfigError(f"billing.refresh_seconds = {raw!r} must be a number > 0")
    return float(raw)


def load_billing_config(
    table: Mapping[str, Any] | None, environ: Mapping[str, str] | None = None
) -> BillingConfig:
    """Validate the ``[billing]`` table; ``DAYLITE_STRIPE_*`` variables win."""
    table = table or {}
    environ = os.environ if environ is None else environ
    unknown = sorted(set(table) - _KNOWN)
    if unknown:
        raise ConfigError(
            f"unknown keys in [billing]: {unknown}; known: {sorted(_KNOWN)}"
        )
    defaults = BillingConfig()
    values = {key: _text(table, environ, key) for key in _ENVIRONMENT}
    base = values["stripe_api_base"]
    if base is not None and not base.startswith(("http://", "https://")):
        raise ConfigError(f"billing.stripe_api_base = {base!r} is not an http(s) URL")
    return BillingConfig(
        packs=_packs(table.get("packs")),
        stripe_secret_key=values["stripe_secret_key"],
        stripe_webhook_secret=values["stripe_webhook_secret"],
        stripe_api_base=base.rstrip("/") if base else None,
        success_url=values["success_url"] or defaults.success_url,
        cancel_url=values["cancel_url"] or defaults.cancel_url,
        refresh_seconds=_refresh(table.get("refresh_seconds", 2.0)),
    )
