"""MCP servers and the server and reason of each tool call

Revision ID: 0005_mcp_servers
Revises: 0003_storage_limits
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_mcp_servers"
down_revision: str | None = "0003_storage_limits"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mcp_servers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("access", sa.String(length=16), nullable=False),
        sa.Column("users", sa.Text(), nullable=False),
        sa.Column("tool_policies", sa.Text(), nullable=False),
        sa.Column("default_policy", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mcp_servers")),
        sa.UniqueConstraint("name", name=op.f("uq_mcp_servers_name")),
    )
    with op.batch_alter_table("tool_executions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("server", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tool_executions", schema=None) as batch_op:
        batch_op.drop_column("reason")
        batch_op.drop_column("server")
    op.drop_table("mcp_servers")
