"""The OAuth state of MCP servers (tokens, registered client, authorization in progress)

Revision ID: 0006_mcp_oauth
Revises: 0005_mcp_servers
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_mcp_oauth"
down_revision: str | None = "0005_mcp_servers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("mcp_servers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("oauth", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mcp_servers", schema=None) as batch_op:
        batch_op.drop_column("oauth")
