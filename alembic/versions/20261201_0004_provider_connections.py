"""Provider connections an admin adds in the UI

`provider_connections`: a name, a base URL, an API key (encrypted at rest like every row on
deltadb; the API shows its last four characters only), the models users may pick from it,
and whether it is enabled.

Revision ID: 0004_provider_connections
Revises: 0003_usage_budget_tokens
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_provider_connections"
down_revision: str | None = "0003_usage_budget_tokens"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "provider_connections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("base_url", sa.String(length=512), nullable=False),
        sa.Column("api_key", sa.String(length=512), nullable=True),
        sa.Column("models", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_connections")),
        sa.UniqueConstraint("name", name=op.f("uq_provider_connections_name")),
    )


def downgrade() -> None:
    op.drop_table("provider_connections")
