"""The search index keeps one SQL index: (user, term, message) holds what queries read

Revision ID: 0010_search_index_by_message
Revises: 0009_server_settings
Create Date: 2026-12-02

Every stored message writes one index row per distinct word, and each SQL index over those
rows costs a page write per word wherever that word's range lies: about 100 scattered pages
per answer for each index. The weight-ordered index only spared sorting one word's postings
(about a millisecond at 100,000 messages), so it goes; the rows stay as they are, and the
queries read the (user, term, message) index for everything.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010_search_index_by_message"
down_revision: str | None = "0009_server_settings"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_search_terms_by_weight", table_name="search_terms")


def downgrade() -> None:
    op.create_index(
        "ix_search_terms_by_weight",
        "search_terms",
        ["user_id", "term", "weight", "message_id", "conversation_id"],
    )
