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

# Spend per account, bucket (hour, day and calendar month, UTC), customer, feature,
# model and outcome, kept up to date inside every ledger transaction
# (daylite.usage.rollups). Absent attribution is stored as "" because NULLs never
# conflict in a unique key, so upserts need a value.
usage_rollups = Table(
    "usage_rollups",
    metadata,
    Column("account_id", String(40), primary_key=True),
    Column("span", String(5), primary_key=True),
    Column("bucket_start", BigInteger, primary_key=True),
    Column("customer", String(128), primary_key=True),
    Column("feature", String(128), primary_key=True),
    Column("model", String(200), primary_key=True),
    Column("outcome", String(10), primary_key=True),
    Column("requests", BigInteger, nullable=False),
    Column("tokens_in", BigInteger, nullable=False),
    Column("tokens_out", BigInteger, nullable=False),
    Column("cost_pico", BigInteger, nullable=False),
    Index(
        "ix_usage_rollups_customer",
        "account_id",
        "customer",
        "span",
        "bucket_start",
    ),
    sqlite_with_rowid=False,
)

# Every change to an account's balance, newest last (daylite.billing.credits).
# ``seq`` orders the changes of one account in commit order: the balance UPDATE
# that precedes each insert holds the account row until the transaction ends.
credit_history = Table(
    "credit_history",
    metadata,
    Column(
        "seq",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("account_id", String(40), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("amount_pico", BigInteger, nullable=False),
    Column("balance_after_pico", BigInteger, nullable=False),
    Column("shortfall_pico", BigInteger, nullable=False, server_default="0"),
    Column("request_id", String(40), nullable=True),
    Column("reference", String(255), nullable=True),
    Column("reason", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_credit_history_account_seq", "account_id", "seq"),
    Index("ux_credit_history_request", "request_id", unique=True),
)

# Free requests used per account and calendar month ("2026-05"), UTC.
free_requests = Table(
    "free_requests",
    metadata,
    Column("account_id", String(40), primary_key=True),
    Column("period", String(7), primary_key=True),
    Column("used", BigInteger, nullable=False),
)

# Stripe events already processed; the primary key makes delivery idempotent.
stripe_events = Table(
    "stripe_events",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("type", String(100), nullable=False),
    Column("outcome", String(40), nullable=False),
    Column("received_at", BigInteger, nullable=False),
)

# Checkout sessions; ``paid_at`` is set once, so one session credits once.
stripe_checkouts = Table(
    "stripe_checkouts",
    metadata,
    Column("session_id", String(255), primary_key=True),
    Column("account_id", String(40), nullable=False, index=True),
    Column("pack_id", String(64), nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("credits_pico", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("paid_at", BigInteger, nullable=True),
    Column("paid_event_id", String(255), nullable=True),
)

# Per-customer monthly budgets (daylite.budgets). Thresholds are a JSON array of
# exact decimal strings, such as ["0.5", "0.8"].
budgets = Table(
    "budgets",
    metadata,
    Column("account_id", String(40), primary_key=True),
    Column("customer_id", String(128), primary_key=True),
    Column("cap_pico", BigInteger, nullable=False),
    Column("action", String(10), nullable=False),
    Column("thresholds", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# Settled spend per customer and calendar month (UTC), for every customer with or
# without a budget, upserted inside each ledger transaction.
monthly_spend = Table(
    "monthly_spend",
    metadata,
    Column("account_id", String(40), primary_key=True),
    Column("customer_id", String(128), primary_key=True),
    Column("period_start", BigInteger, primary_key=True),
    Column("spent_pico", BigInteger, nullable=False),
)

# The budget alert outbox. The unique index makes "once per threshold per period
# and cap" a fact of the database, so no restart or replica can send one twice.
budget_events = Table(
    "budget_events",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("account_id", String(40), nullable=False),
    Column("customer_id", String(128), nullable=False),
    Column("period_start", BigInteger, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("threshold", String(20), nullable=False),
    Column("cap_pico", BigInteger, nullable=False),
    Column("payload", Text, nullable=False),
    Column("state", String(12), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("delivered_at", BigInteger, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Index(
        "uq_budget_events_once",
        "account_id",
        "customer_id",
        "period_start",
        "kind",
        "threshold",
        "cap_pico",
        unique=True,
    ),
    Index("ix_budget_events_due", "state", "next_attempt_at"),
)
