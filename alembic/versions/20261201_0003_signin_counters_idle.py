"""Sign-in counters (throttling shared by processes) and sessions' last use (idle timeout)

Revision ID: 0003_signin_counters_idle
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0003_signin_counters_idle"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sign_in_counters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("succeeded_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_counters")),
        sa.UniqueConstraint("scope", "key", name=op.f("uq_sign_in_counters_scope_key")),
    )
    with op.batch_alter_table("sign_in_counters", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sign_in_counters_last_at"), ["last_at"], unique=False)

    # Sessions that exist already start their idle clock now. `auth_sessions` has no child
    # tables, so the batch rebuild that makes the column NOT NULL on SQLite cascades nowhere.
    op.add_column(
        "auth_sessions", sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True)
    )
    sessions = sa.table("auth_sessions", sa.column("last_seen_at", sa.DateTime(timezone=True)))
    op.execute(sessions.update().values(last_seen_at=datetime.now(UTC)))
    with op.batch_alter_table("auth_sessions", schema=None) as batch_op:
        batch_op.alter_column(
            "last_seen_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("auth_sessions", schema=None) as batch_op:
        batch_op.drop_column("last_seen_at")
    with op.batch_alter_table("sign_in_counters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sign_in_counters_last_at"))
    op.drop_table("sign_in_counters")
