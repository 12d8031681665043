"""Usage rollups by hour, day and month, filled from the ledger already recorded.

Revision ID: 0003
Revises: 0001
Create Date: 2026-12-05
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None

# The outcome classes as of this revision; a migration must not change meaning
# when application code changes later (tests check it matches the code today).
BILLED_STATUSES = ("ok", "abandoned", "backend_error")
REFUSED_STATUSES = ("refused", "invalid")
HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_COLUMNS = (
    "account_id, span, bucket_start, customer, feature, model, outcome, "
    "requests, tokens_in, tokens_out, cost_pico"
)
_GROUP = "account_id, customer, feature, model, outcome"
_SUMS = "SUM(requests), SUM(tokens_in), SUM(tokens_out), SUM(cost_pico)"


def _quoted(statuses: tuple[str, ...]) -> str:
    return ", ".join(f"'{status}'" for status in statuses)


HOURS_FROM_LEDGER = f"""
INSERT INTO usage_rollups ({_COLUMNS})
SELECT account_id, 'hour', bucket_start, customer, feature, model, outcome,
       COUNT(*), SUM(tokens_in), SUM(tokens_out), SUM(cost_pico)
FROM (
    SELECT account_id,
           created_at - created_at % {HOUR_US} AS bucket_start,
           COALESCE(customer, '') AS customer,
           COALESCE(feature, '') AS feature,
           COALESCE(model, '') AS model,
           CASE WHEN status IN ({_quoted(BILLED_STATUSES)}) THEN 'billed'
                WHEN status IN ({_quoted(REFUSED_STATUSES)}) THEN 'refused'
                ELSE 'failed' END AS outcome,
           tokens_in, tokens_out, cost_pico
    FROM ledger
) AS entries
GROUP BY account_id, bucket_start, customer, feature, model, outcome
"""

DAYS_FROM_HOURS = f"""
INSERT INTO usage_rollups ({_COLUMNS})
SELECT account_id, 'day', bucket_start - bucket_start % {DAY_US},
       customer, feature, model, outcome, {_SUMS}
FROM usage_rollups WHERE span = 'hour'
GROUP BY account_id, bucket_start - bucket_start % {DAY_US}, {_GROUP}
"""

MONTH_FROM_DAYS = f"""
INSERT INTO usage_rollups ({_COLUMNS})
SELECT account_id, 'month', CAST(:start AS BIGINT),
       customer, feature, model, outcome, {_SUMS}
FROM usage_rollups
WHERE span = 'day' AND bucket_start >= :start AND bucket_start < :stop
GROUP BY {_GROUP}
"""


def _month_starts(first: int, last: int) -> list[int]:
    """Starts of the calendar months (UTC) from ``first`` to ``last``, and one more."""
    moment = datetime.fromtimestamp(first // 1_000_000, UTC)
    year, month = moment.year, moment.month
    starts = []
    while True:
        start = datetime(year, month, 1, tzinfo=UTC) - _EPOCH
        starts.append((start.days * 86_400 + start.seconds) * 1_000_000)
        if starts[-1] > last:
            return starts
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def _backfill() -> None:
    bind = op.get_bind()
    bind.execute(sa.text(HOURS_FROM_LEDGER))
    bind.execute(sa.text(DAYS_FROM_HOURS))
    first, last = bind.execute(
        sa.text(
            "SELECT MIN(bucket_start), MAX(bucket_start) FROM usage_rollups "
            "WHERE span = 'day'"
        )
    ).one()
    if first is None:
        return
    starts = _month_starts(int(first), int(last))
    for start, stop in zip(starts, starts[1:], strict=False):
        bind.execute(sa.text(MONTH_FROM_DAYS), {"start": start, "stop": stop})


def upgrade() -> None:
    op.create_table(
        "usage_rollups",
        sa.Column("account_id", sa.String(40), nullable=False),
        sa.Column("span", sa.String(5), nullable=False),
        sa.Column("bucket_start", sa.BigInteger, nullable=False),
        sa.Column("customer", sa.String(128), nullable=False),
        sa.Column("feature", sa.String(128), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("requests", sa.BigInteger, nullable=False),
        sa.Column("tokens_in", sa.BigInteger, nullable=False),
        sa.Column("tokens_out", sa.BigInteger, nullable=False),
        sa.Column("cost_pico", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint(
            "account_id",
            "span",
            "bucket_start",
            "customer",
            "feature",
            "model",
            "outcome",
        ),
        # SQLite keeps such a table in primary-key order, so a range of buckets
        # is one sequential read with no second lookup per row.
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_usage_rollups_customer",
        "usage_rollups",
        ["account_id", "customer", "span", "bucket_start"],
    )
    _backfill()


def downgrade() -> None:
    op.drop_table("usage_rollups")
