"""The relational schema, shared by SQLite and PostgreSQL.

Times are integer microseconds since the Unix epoch (UTC) and money is integer
pico-dollars, so both databases compare, sum and index them the same way.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
)

metadata = MetaData()

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("plan", String(40), nullable=False, server_default="developer"),
    Column("balance_pico", BigInteger, nullable=False, server_default="0"),
    Column("webhook_url", Text, nullable=True),
    Column("webhook_secret", String(200), nullable=True),
    Column("created_at", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("account_id", String(40), nullable=True, index=True),
    Column("kind", String(20), nullable=False, server_default="account"),
    Column("name", String(200), nullable=False, server_default=""),
    Column("prefix", String(40), nullable=False),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("last_used_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
)

ledger = Table(
    "ledger",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("account_id", String(40), nullable=False),
    Column("key_id", String(40), nullable=True),
    Column("customer", String(128), nullable=True),
    Column("feature", String(128), nullable=True),
    Column("model", String(200), nullable=True),
    Column("backend", String(200), nullable=True),
    Column("endpoint", String(40), nullable=False),
    Column("status", String(20), nullable=False),
    Column("http_status", Integer, nullable=False),
    Column("error_code", String(60), nullable=True),
    Column("stream", Boolean, nullable=False, server_default=false()),
    Column("tokens_in", BigInteger, nullable=False, server_default="0"),
    Column("tokens_out", BigInteger, nullable=False, server_default="0"),
    Column("cached_tokens", BigInteger, nullable=False, server_default="0"),
    Column("reasoning_tokens", BigInteger, nullable=False, server_default="0"),
    Column("cost_pico", BigInteger, nullable=False, server_default="0"),
    Column("counted_by", String(20), nullable=False, server_default="backend"),
    Column("latency_ms", Integer, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_ledger_account_time", "account_id", "created_at"),
    Index("ix_ledger_account_customer_time", "account_id", "customer", "created_at"),
)
