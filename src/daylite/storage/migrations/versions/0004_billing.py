"""Credit history, free-request counters and Stripe bookkeeping.

Revision ID: 0004
Revises: 0001
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credit_history",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("account_id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("amount_pico", sa.BigInteger, nullable=False),
        sa.Column("balance_after_pico", sa.BigInteger, nullable=False),
        sa.Column("shortfall_pico", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("request_id", sa.String(40), nullable=True),
        sa.Column("reference", sa.String(255), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_credit_history_account_seq", "credit_history", ["account_id", "seq"]
    )
    op.create_index(
        "ux_credit_history_request", "credit_history", ["request_id"], unique=True
    )
    op.create_table(
        "free_requests",
        sa.Column("account_id", sa.String(40), primary_key=True),
        sa.Column("period", sa.String(7), primary_key=True),
        sa.Column("used", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "stripe_events",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("outcome", sa.String(40), nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "stripe_checkouts",
        sa.Column("session_id", sa.String(255), primary_key=True),
        sa.Column("account_id", sa.String(40), nullable=False),
        sa.Column("pack_id", sa.String(64), nullable=False),
        sa.Column("amount_cents", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("credits_pico", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("paid_at", sa.BigInteger, nullable=True),
        sa.Column("paid_event_id", sa.String(255), nullable=True),
    )
    op.create_index(
        "ix_stripe_checkouts_account_id", "stripe_checkouts", ["account_id"]
    )


def downgrade() -> None:
    op.drop_table("stripe_checkouts")
    op.drop_table("stripe_events")
    op.drop_table("free_requests")
    op.drop_table("credit_history")
