"""Ledger entries of one account, newest first, in pages behind an opaque cursor.

Entries are ordered by (created_at, id), both descending. The cursor holds the
last entry's pair, so the next page starts strictly after it: entries written
while a client pages through never shift a page, and none is shown twice.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement

from daylite.errors import InvalidRequestError
from daylite.storage.tables import ledger

_CURSOR = re.compile(r"(-?\d{1,20}):([A-Za-z0-9_]{1,40})")


@dataclass(frozen=True, slots=True)
class RequestFilter:
    account_id: str
    customer: str | None = None
    feature: str | None = None
    model: str | None = None
    statuses: tuple[str, ...] = ()
    start: int | None = None
    end: int | None = None


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page ended: the last entry's time and id."""

    created_at: int
    id: str


@dataclass(frozen=True, slots=True)
class Page:
    rows: tuple[Any, ...]
    next: Position | None


LEDGER_STATUSES = (
    "ok",
    "abandoned",
    "backend_error",
    "invalid",
    "refused",
    "rejected",
    "failed",
)


def parse_statuses(text: str | None) -> tuple[str, ...]:
    if text is None:
        return ()
    statuses = tuple(part.strip() for part in text.split(","))
    for status in statuses:
        if status not in LEDGER_STATUSES:
            raise InvalidRequestError(
                f"'status' takes ledger statuses separated by commas, from "
                f"{', '.join(LEDGER_STATUSES)}; {status!r} is not one.",
                param="status",
            )
    return statuses


def encode_cursor(position: Position) -> str:
    raw = f"{position.created_at}:{position.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str | None) -> Position | None:
    if text is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    match = _CURSOR.fullmatch(raw)
    if match is None:
        raise InvalidRequestError(
            "'cursor' is not one this API gave out; pass next_cursor from the "
            "previous page unchanged.",
            param="cursor",
        )
    return Position(int(match.group(1)), match.group(2))


def _conditions(flt: RequestFilter) -> list[ColumnElement[bool]]:
    columns = ledger.c
    conditions = [columns.account_id == flt.account_id]
    for name in ("customer", "feature", "model"):
        value = getattr(flt, name)
        if value is not None:
            conditions.append(columns[name] == value)
    if flt.statuses:
        conditions.append(columns.status.in_(flt.statuses))
    if flt.start is not None:
        conditions.append(columns.created_at >= flt.start)
    if flt.end is not None:
        conditions.append(columns.created_at < flt.end)
    return conditions


def _after(position: Position) -> list[ColumnElement[bool]]:
    columns = ledger.c
    # The first condition alone bounds the index range; the second breaks ties.
    return [
        columns.created_at <= position.created_at,
        or_(
            columns.created_at < position.created_at,
            and_(columns.created_at == position.created_at, columns.id < position.id),
        ),
    ]


async def list_entries(
    connection: AsyncConnection,
    flt: RequestFilter,
    limit: int,
    after: Position | None = None,
) -> Page:
    conditions = _conditions(flt)
    if after is not None:
        conditions.extend(_after(after))
    statement = (
        select(ledger)
        .where(*conditions)
        .order_by(ledger.c.created_at.desc(), ledger.c.id.desc())
        .limit(limit + 1)
    )
    rows = tuple((await connection.execute(statement)).all())
    if len(rows) <= limit:
        return Page(rows, None)
    last = rows[limit - 1]
    return Page(rows[:limit], Position(last.created_at, last.id))
