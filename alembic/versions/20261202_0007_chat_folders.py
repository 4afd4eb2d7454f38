"""Folders of chats

Revision ID: 0007_chat_folders
Revises: 0006_search_terms
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_chat_folders"
down_revision: str | None = "0006_search_terms"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "folders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_folders_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_folders")),
        sa.UniqueConstraint("user_id", "name", name=op.f("uq_folders_user_id_name")),
        sa.UniqueConstraint("uuid", name=op.f("uq_folders_uuid")),
    )
    # A plain ADD COLUMN: rebuilding `conversations` on SQLite would cascade-delete messages.
    op.add_column("conversations", sa.Column("folder_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("conversations", "folder_id")
    op.drop_table("folders")
