"""Dialect-neutral "insert unless the key exists", for SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


async def insert_ignoring_duplicates(
    connection: AsyncConnection, table: Table, row: dict[str, Any]
) -> bool:
    """Insert ``row``; False (and no change) if its key is already taken.

    On PostgreSQL a concurrent insert of the same key waits for the other
    transaction and then reports the duplicate, so exactly one caller wins.
    """
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(**row).on_conflict_do_nothing()
    result = await connection.execute(statement)
    return bool(result.rowcount)
