"""API keys: their format, hashing, lookup and revocation.

A key is ``dl-`` followed by 40 random characters and is shown once. Only its
SHA-256 digest is stored: keys are long random strings, so a slow hash would add
latency to every request without making a guess any less hopeless.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from daylite.clock import Clock
from daylite.errors import AuthenticationError
from daylite.ids import new_id
from daylite.storage.tables import api_keys

ACCOUNT_PREFIX = "dl-"
OPERATOR_PREFIX = "dl-op-"
_PREFIX_CHARS = 12


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an account's key or an operator's key."""

    key_id: str
    account_id: str | None
    kind: str

    @property
    def is_operator(self) -> bool:
        return self.kind == "operator"


@dataclass(frozen=True, slots=True)
class IssuedKey:
    id: str
    secret: str
    prefix: str


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def generate_secret(kind: str = "account") -> str:
    prefix = OPERATOR_PREFIX if kind == "operator" else ACCOUNT_PREFIX
    return prefix + secrets.token_urlsafe(30)


class RevocationFeed(Protocol):
    """How revocations reach every process (``daylite.revocation``)."""

    async def refresh(self, keys: KeyStore) -> None:
        """Forget the keys revoked elsewhere; called before every authentication."""

    async def publish(self, key_id: str) -> None:
        """Tell the other processes that ``key_id`` was revoked."""


def bearer_secret(header: str | None) -> str:
    if not header:
        raise AuthenticationError(
            "No API key provided. Send it as 'Authorization: Bearer dl-...'."
        )
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise AuthenticationError(
            "Malformed Authorization header. Use 'Authorization: Bearer dl-...'."
        )
    return secret.strip()


class KeyStore:
    """Creates, finds and revokes keys; remembers valid keys in memory.

    Revocation through this process drops the key from memory at once, so its
    next request is refused. Other processes learn of it through
    ``forget`` (called by the shared revocation feed when one is configured).
    """

    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock
        self._cache: dict[str, Principal] = {}
        self._last_used: dict[str, int] = {}
        self.feed: RevocationFeed | None = None
        self._forgets = 0

    async def issue(
        self, account_id: str | None, name: str = "", kind: str = "account"
    ) -> IssuedKey:
        secret = generate_secret(kind)
        key_id = new_id("key")
        prefix = secret[:_PREFIX_CHARS]
        async with self._engine.begin() as connection:
            await connection.execute(
                api_keys.insert().values(
                    id=key_id,
                    account_id=account_id,
                    kind=kind,
                    name=name,
                    prefix=prefix,
                    secret_hash=digest(secret),
                    created_at=self._clock.now_us(),
                )
            )
        return IssuedKey(key_id, secret, prefix)

    async def authenticate(self, header: str | None) -> Principal:
        hashed = digest(bearer_secret(header))
        if self.feed is not None:
            await self.feed.refresh(self)
        principal = self._cache.get(hashed)
        if principal is None:
            forgets = self._forgets
            principal = await self._lookup(hashed)
            # A revocation learned during the lookup may postdate what it read.
            if forgets == self._forgets:
                self._cache[hashed] = principal
        self._last_used[principal.key_id] = self._clock.now_us()
        return principal

    async def _lookup(self, hashed: str) -> Principal:
        query = select(api_keys.c.id, api_keys.c.account_id, api_keys.c.kind).where(
            api_keys.c.secret_hash == hashed, api_keys.c.revoked_at.is_(None)
        )
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).first()
        if row is None:
            raise AuthenticationError("Invalid API key.")
        return Principal(row.id, row.account_id, row.kind)

    async def revoke(self, key_id: str, account_id: str | None = None) -> bool:
        """Revoke ``key_id`` (within ``account_id`` when given); True if it was live."""
        statement = update(api_keys).where(
            api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None)
        )
        if account_id is not None:
            statement = statement.where(api_keys.c.account_id == account_id)
        async with self._engine.begin() as connection:
            result = await connection.execute(
                statement.values(revoked_at=self._clock.now_us())
            )
        self.forget(key_id)
        if result.rowcount and self.feed is not None:
            await self.feed.publish(key_id)
        return bool(result.rowcount)

    def forget(self, key_id: str) -> None:
        self._forgets += 1
        for hashed, principal in list(self._cache.items()):
            if principal.key_id == key_id:
                del self._cache[hashed]

    def forget_all(self) -> None:
        self._forgets += 1
        self._cache.clear()

    def cached_key_ids(self) -> list[str]:
        return [principal.key_id for principal in self._cache.values()]

    async def flush_last_used(self) -> None:
        """Write last-use times in one go instead of once per request."""
        pending, self._last_used = self._last_used, {}
        if not pending:
            return
        async with self._engine.begin() as connection:
            for key_id, when in pending.items():
                await connection.execute(
                    update(api_keys)
                    .where(api_keys.c.id == key_id)
                    .values(last_used_at=when)
                )
