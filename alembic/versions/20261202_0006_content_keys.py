"""Content keys for zero-access conversations; titles and snapshot names wide enough to seal

Revision ID: 0006_content_keys
Revises: 0005_mcp_servers
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_content_keys"
down_revision: str | None = "0006_mcp_oauth"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "user_content_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("password_salt", sa.String(length=64), nullable=False),
        sa.Column("password_wrapped", sa.String(length=128), nullable=False),
        sa.Column("recovery_wrapped", sa.String(length=128), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("cursor", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_content_keys_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_content_keys")),
    )
    with op.batch_alter_table("user_content_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_content_keys_user_id"), ["user_id"], unique=True)
    op.create_table(
        "session_content_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("wrapped_key", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["auth_sessions.id"],
            name=op.f("fk_session_content_keys_session_id_auth_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_session_content_keys_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_content_keys")),
    )
    with op.batch_alter_table("session_content_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_session_content_keys_session_id"), ["session_id"], unique=True
        )
        batch_op.create_index(
            batch_op.f("ix_session_content_keys_user_id"), ["user_id"], unique=False
        )
    # A sealed title or snapshot name is longer than the 200 characters it seals.
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.alter_column("title", existing_type=sa.String(length=200), type_=sa.Text())
    with op.batch_alter_table("conversation_snapshots", schema=None) as batch_op:
        batch_op.alter_column(
            "name", existing_type=sa.String(length=200), type_=sa.Text(), nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("conversation_snapshots", schema=None) as batch_op:
        batch_op.alter_column(
            "name", existing_type=sa.Text(), type_=sa.String(length=200), nullable=False
        )
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.alter_column("title", existing_type=sa.Text(), type_=sa.String(length=200))
    op.drop_table("session_content_keys")
    op.drop_table("user_content_keys")
