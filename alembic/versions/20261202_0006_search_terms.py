"""The search index: each message's words, per user

Revision ID: 0006_search_terms
Revises: 0005_mcp_servers
Create Date: 2026-12-02
"""

import re
from collections import Counter
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_search_terms"
down_revision: str | None = "0006_message_tree"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As backend/services/words.py and search_index.py cut words (kept here as they were when
# this revision was written, so a later change there does not change what it does).
_WORD = re.compile(r"\w+")
MAX_TERM, MAX_TERMS_PER_MESSAGE, BATCH = 64, 2000, 500
K1, B, AVERAGE_WORDS = 1.2, 0.75, 60.0


def _weight(occurrences: int, length: int) -> float:
    return occurrences * (K1 + 1) / (occurrences + K1 * (1 - B + B * length / AVERAGE_WORDS))


def _rows(
    user_id: int, message_id: int, conversation_id: int, content: str
) -> list[dict[str, object]]:
    found = [w[:MAX_TERM] for w in _WORD.findall(content.lower())]
    return [
        {
            "user_id": user_id,
            "message_id": message_id,
            "conversation_id": conversation_id,
            "term": term,
            "occurrences": n,
            "words": len(found),
            "weight": _weight(n, len(found)),
        }
        for term, n in Counter(found).most_common(MAX_TERMS_PER_MESSAGE)
    ]


def upgrade() -> None:
    terms = op.create_table(
        "search_terms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("term", sa.String(length=64), nullable=False),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.Column("words", sa.Integer(), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_search_terms_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_search_terms_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_terms")),
    )
    op.create_index(
        op.f("ix_search_terms_message_id"), "search_terms", ["message_id"], unique=False
    )
    op.create_index(
        "ix_search_terms_by_weight",
        "search_terms",
        ["user_id", "term", "weight", "message_id", "conversation_id"],
    )
    op.create_index(
        "ix_search_terms_by_message",
        "search_terms",
        ["user_id", "term", "message_id", "weight", "conversation_id"],
    )
    # Messages stored before this revision are indexed now, a batch at a time.
    connection = op.get_bind()
    statement = sa.text(
        "SELECT m.id, m.conversation_id, m.content, c.user_id FROM messages m"
        " JOIN conversations c ON c.id = m.conversation_id"
        " WHERE c.user_id IS NOT NULL AND m.id > :after ORDER BY m.id LIMIT :batch"
    )
    after = 0
    while True:
        batch = connection.execute(statement, {"after": after, "batch": BATCH}).all()
        if not batch:
            break
        rows = [
            r
            for m in batch
            # Zero-access content is sealed ("zs1:..."): never indexed, its words stay sealed.
            if not (m.content or "").startswith("zs1:")
            for r in _rows(m.user_id, m.id, m.conversation_id, m.content or "")
        ]
        if rows:
            connection.execute(sa.insert(terms), rows)
        after = batch[-1].id


def downgrade() -> None:
    op.drop_index("ix_search_terms_by_message", table_name="search_terms")
    op.drop_index("ix_search_terms_by_weight", table_name="search_terms")
    op.drop_index(op.f("ix_search_terms_message_id"), table_name="search_terms")
    op.drop_table("search_terms")
