"""Usage: tokens charged to the server's budget, and counters brought into range

`usage_daily.budget_tokens` counts the tokens of answers the server paid for (its own key or
the built-in mock); answers from a user's own provider key are recorded in the other counters
but not charged to the server's daily budget. Existing rows were all charged, so the column
starts as prompt + completion tokens. Counters a provider drove out of range (negative, or
beyond a 32-bit INTEGER) are clamped to 0..2**31-1.

Revision ID: 0003_usage_budget_tokens
Revises: 0003_signin_counters_idle
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_usage_budget_tokens"
down_revision: str | None = "0003_signin_counters_idle"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MAX_COUNTER = 2**31 - 1
COUNTERS = (
    "conversations_created",
    "messages_sent",
    "prompt_tokens",
    "completion_tokens",
    "completion_ms_total",
)


def upgrade() -> None:
    # A plain ADD COLUMN, not a batch rebuild (see 0002: a rebuild on SQLite with foreign
    # keys on would cascade-delete rows).
    op.add_column(
        "usage_daily",
        sa.Column("budget_tokens", sa.Integer(), nullable=False, server_default="0"),
    )
    for name in COUNTERS:
        op.execute(f"UPDATE usage_daily SET {name} = 0 WHERE {name} < 0")
        op.execute(f"UPDATE usage_daily SET {name} = {MAX_COUNTER} WHERE {name} > {MAX_COUNTER}")
    op.execute(
        "UPDATE usage_daily SET budget_tokens = CASE "
        f"WHEN prompt_tokens > {MAX_COUNTER} - completion_tokens THEN {MAX_COUNTER} "
        "ELSE prompt_tokens + completion_tokens END"
    )


def downgrade() -> None:
    with op.batch_alter_table("usage_daily", schema=None) as batch_op:
        batch_op.drop_column("budget_tokens")
