"""Budgets, monthly spend per customer, and the budget alert outbox.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Spend already in the ledger counts against budgets created after this upgrade.
BACKFILL = sa.text(
    """
INSERT INTO monthly_spend (account_id, customer_id, period_start, spent_pico)
SELECT account_id, customer, CAST(:start AS BIGINT), SUM(cost_pico) FROM ledger
WHERE customer IS NOT NULL AND cost_pico > 0
  AND created_at >= :start AND created_at < :end
GROUP BY account_id, customer
"""
)


def _us(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _months(first_us: int, last_us: int) -> list[tuple[int, int]]:
    """Calendar months (UTC) from the one holding ``first_us`` to ``last_us``."""
    moment = datetime.fromtimestamp(first_us // 1_000_000, UTC)
    year, month = moment.year, moment.month
    months: list[tuple[int, int]] = []
    while True:
        start = _us(datetime(year, month, 1, tzinfo=UTC))
        if start > last_us:
            return months
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        months.append((start, _us(datetime(year, month, 1, tzinfo=UTC))))


def _backfill() -> None:
    bind = op.get_bind()
    first, last = bind.execute(
        sa.text("SELECT MIN(created_at), MAX(created_at) FROM ledger")
    ).one()
    if first is None:
        return
    for start, end in _months(int(first), int(last)):
        bind.execute(BACKFILL, {"start": start, "end": end})


def upgrade() -> None:
    op.create_table(
        "budgets",
        sa.Column("account_id", sa.String(40), primary_key=True),
        sa.Column("customer_id", sa.String(128), primary_key=True),
        sa.Column("cap_pico", sa.BigInteger, nullable=False),
        sa.Column("action", sa.String(10), nullable=False),
        sa.Column("thresholds", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "monthly_spend",
        sa.Column("account_id", sa.String(40), primary_key=True),
        sa.Column("customer_id", sa.String(128), primary_key=True),
        sa.Column("period_start", sa.BigInteger, primary_key=True),
        sa.Column("spent_pico", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "budget_events",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("account_id", sa.String(40), nullable=False),
        sa.Column("customer_id", sa.String(128), nullable=False),
        sa.Column("period_start", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("threshold", sa.String(20), nullable=False),
        sa.Column("cap_pico", sa.BigInteger, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.BigInteger, nullable=False),
        sa.Column("delivered_at", sa.BigInteger, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "uq_budget_events_once",
        "budget_events",
        ["account_id", "customer_id", "period_start", "kind", "threshold", "cap_pico"],
        unique=True,
    )
    op.create_index(
        "ix_budget_events_due", "budget_events", ["state", "next_attempt_at"]
    )
    _backfill()


def downgrade() -> None:
    op.drop_table("budget_events")
    op.drop_table("monthly_spend")
    op.drop_table("budgets")
