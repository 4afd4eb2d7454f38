"""Messages form a tree: each follows a parent; a conversation remembers the branch shown

Revision ID: 0006_message_tree
Revises: 0005_mcp_servers
Create Date: 2026-12-02

Existing conversations become single-branch trees: every message follows the one before it
(by position), and the branch shown ends at the newest message.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_message_tree"
down_revision: str | None = "0006_content_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Correlated subqueries: portable (SQLite, deltadb, PostgreSQL), one statement per table.
LINK_PARENTS = """
UPDATE messages SET parent_id = (
    SELECT earlier.id FROM messages AS earlier
    WHERE earlier.conversation_id = messages.conversation_id
      AND earlier.position < messages.position
    ORDER BY earlier.position DESC LIMIT 1
)
"""
SHOW_NEWEST = """
UPDATE conversations SET current_message_uuid = (
    SELECT newest.uuid FROM messages AS newest
    WHERE newest.conversation_id = conversations.id
    ORDER BY newest.position DESC LIMIT 1
)
"""


def upgrade() -> None:
    # Plain ADD COLUMNs: a batch rebuild of `messages` or `conversations` would drop tables
    # other rows point at (their answers' `responses`, their messages).
    op.add_column("messages", sa.Column("parent_id", sa.Integer(), nullable=True))
    op.create_index(op.f("ix_messages_parent_id"), "messages", ["parent_id"], unique=False)
    op.add_column(
        "conversations", sa.Column("current_message_uuid", sa.String(length=36), nullable=True)
    )
    op.execute(LINK_PARENTS)
    op.execute(SHOW_NEWEST)


def downgrade() -> None:
    # Every version stays, in the order it was written: a flat history again.
    op.drop_column("conversations", "current_message_uuid")
    op.drop_index(op.f("ix_messages_parent_id"), table_name="messages")
    op.drop_column("messages", "parent_id")
