"""Per-user storage limits: conversations and stored bytes

Revision ID: 0003_storage_limits
Revises: 0003_answer_generations
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_storage_limits"
down_revision: str | None = "0003_answer_generations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("usage_limits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("max_conversations", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("max_stored_bytes", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("usage_limits", schema=None) as batch_op:
        batch_op.drop_column("max_stored_bytes")
        batch_op.drop_column("max_conversations")
