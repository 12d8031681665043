"""The account's webhook endpoint for budget alerts: its URL and signing secret."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from daylite.errors import InvalidRequestError
from daylite.storage.tables import accounts

SECRET_PREFIX = "whsec_"
MAX_URL_LENGTH = 2048
_SECRET_LENGTHS = (16, 200)
_FIELDS = ("url", "secret")


@dataclass(frozen=True, slots=True)
class Endpoint:
    url: str | None
    secret: str | None

    def present(self) -> dict[str, Any]:
        """The endpoint as the API shows it: the secret only as a hint."""
        hint = None
        if self.secret:
            hint = self.secret[: len(SECRET_PREFIX)] + "..." + self.secret[-4:]
        return {"object": "webhook", "url": self.url, "secret_hint": hint}


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _url(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidRequestError(
            "'url' is required: the https:// address that receives budget alerts.",
            param="url",
        )
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        # urlsplit refuses unbalanced brackets and bad ports by raising.
        parts, port_ok = None, False
    if (
        parts is None
        or not port_ok
        or len(value) > MAX_URL_LENGTH
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.fragment
    ):
        shown = value if len(value) <= 80 else value[:80] + "..."
        raise InvalidRequestError(
            f"'url' {shown!r} is not usable: give an absolute http:// or https:// "
            f"URL without a #fragment, at most {MAX_URL_LENGTH} characters.",
            param="url",
        )
    return value


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    low, high = _SECRET_LENGTHS
    if (
        not isinstance(value, str)
        or not low <= len(value) <= high
        or not value.isascii()
        or not value.isprintable()
        or any(char.isspace() for char in value)
    ):
        raise InvalidRequestError(
            f"'secret' must be {low} to {high} printable ASCII characters without "
            "spaces; leave it out and the gateway generates one.",
            param="secret",
        )
    return value


def parse_endpoint(body: Mapping[str, Any]) -> tuple[str, str | None]:
    """Validate a ``PUT /v1/webhook`` body into (url, secret or None)."""
    for key in body:
        if key not in _FIELDS:
            raise InvalidRequestError(
                f"Unknown field {key!r}; a webhook has url and secret.", param=key
            )
    return _url(body.get("url")), _secret(body.get("secret"))


async def read_endpoint(engine: AsyncEngine, account_id: str) -> Endpoint:
    query = select(accounts.c.webhook_url, accounts.c.webhook_secret).where(
        accounts.c.id == account_id
    )
    async with engine.connect() as connection:
        row = (await connection.execute(query)).first()
    if row is None:
        return Endpoint(None, None)
    return Endpoint(row.webhook_url, row.webhook_secret)


async def write_endpoint(
    engine: AsyncEngine, account_id: str, url: str | None, secret: str | None
) -> None:
    statement = (
        update(accounts)
        .where(accounts.c.id == account_id)
        .values(webhook_url=url, webhook_secret=secret)
    )
    async with engine.begin() as connection:
        await connection.execute(statement)
