"""Alembic on deltadb: upgrade/downgrade/check, batch rebuilds keep children, migration lock."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, inspect, text

ENV_PY = '''
from alembic import context
from sqlalchemy import create_engine

import deltadb_dialect  # noqa: F401

config = context.config
engine = create_engine(config.get_main_option("sqlalchemy.url"))
with engine.connect() as connection:
    context.configure(connection=connection, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
'''

REV_1 = '''
"""parents and children"""
import time
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade():
    op.create_table("parent", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("name", sa.String(20)))
    op.create_table("child", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("parent_id", sa.Integer,
                              sa.ForeignKey("parent.id", ondelete="CASCADE")))
    op.execute("INSERT INTO parent VALUES (1, 'p')")
    op.execute("INSERT INTO child VALUES (10, 1), (11, 1)")
    time.sleep(0.5)  # widen the window in which a second process could interleave


def downgrade():
    op.drop_table("child")
    op.drop_table("parent")
'''

REV_2 = '''
"""batch-alter the parent: a table rebuild"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade():
    with op.batch_alter_table("parent", recreate="always") as batch:
        batch.alter_column("name", type_=sa.String(50), nullable=False)
        batch.add_column(sa.Column("note", sa.Text, nullable=True))


def downgrade():
    with op.batch_alter_table("parent", recreate="always") as batch:
        batch.drop_column("note")
        batch.alter_column("name", type_=sa.String(20), nullable=True)
'''


@pytest.fixture
def alembic_dir(tmp_path: Path, store_dir: Path, master_key: str) -> Path:
    root = tmp_path / "migrations"
    (root / "versions").mkdir(parents=True)
    (root / "env.py").write_text(ENV_PY)
    (root / "versions" / "0001_parents.py").write_text(REV_1)
    (root / "versions" / "0002_batch.py").write_text(REV_2)
    (tmp_path / "alembic.ini").write_text(textwrap.dedent(f"""
        [alembic]
        script_location = {root}
        sqlalchemy.url = deltadb:///{store_dir}
    """))
    return tmp_path


def _config(alembic_dir: Path) -> Config:
    return Config(str(alembic_dir / "alembic.ini"))


def test_upgrade_batch_rebuild_keeps_cascading_children(alembic_dir, store_dir) -> None:
    command.upgrade(_config(alembic_dir), "head")
    engine = create_engine(f"deltadb:///{store_dir}")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM child")).scalar() == 2
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0002"
        columns = {c["name"] for c in inspect(conn).get_columns("parent")}
    assert columns == {"id", "name", "note"}
    engine.dispose()
    command.downgrade(_config(alembic_dir), "base")
    engine = create_engine(f"deltadb:///{store_dir}")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    engine.dispose()


@pytest.mark.slow
def test_two_concurrent_upgrades_do_not_corrupt(alembic_dir, store_dir) -> None:
    script = ("import sys\nfrom alembic import command\nfrom alembic.config import Config\n"
              f"command.upgrade(Config({str(alembic_dir / 'alembic.ini')!r}), 'head')\n")
    runs = [subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    results = [(run.wait(timeout=120), run.stderr.read() if run.stderr else "") for run in runs]
    assert [code for code, _ in results] == [0, 0], results
    engine = create_engine(f"deltadb:///{store_dir}")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [
            "0002"]
        assert conn.execute(text("SELECT count(*) FROM child")).scalar() == 2
        assert conn.execute(text("SELECT count(*) FROM parent")).scalar() == 1
    engine.dispose()
