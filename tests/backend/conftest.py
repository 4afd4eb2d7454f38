"""Shared fixtures for the backend suite.

The database under test is one parameter, OPENCHAT_TEST_DB: deltadb (the default), sqlite or
postgresql (a throwaway server started for the run, see tests/pg_cluster.py). `make test` runs
the API route tests on all three. The environment is set before `backend` is first imported,
because the service reads its settings once, at import. There is no fallback: a store that
fails to load is a failed run, not a run on another database.
"""

import atexit
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_TEST_DIR = Path(tempfile.mkdtemp(prefix="openchat-tests-"))
DATABASES = ("deltadb", "sqlite", "postgresql")


def _database_url(kind: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{_TEST_DIR}/openchat.db"
    if kind == "postgresql":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from pg_cluster import PostgresCluster

        cluster = PostgresCluster().start()
        atexit.register(cluster.stop)
        return cluster.url
    os.environ.setdefault("DELTADB_MASTER_KEY", secrets.token_hex(32))
    return f"deltadb:///{_TEST_DIR}/openchat"


TEST_DB = os.environ.get("OPENCHAT_TEST_DB", "deltadb")
if TEST_DB not in DATABASES:
    raise pytest.UsageError(f"OPENCHAT_TEST_DB must be one of {', '.join(DATABASES)}")
if TEST_DB == "deltadb":
    # The package imports its Alembic support quietly; import it here so a problem is loud.
    import deltadb_dialect.alembic_impl  # noqa: F401
os.environ.update(
    ENVIRONMENT="test",
    SECRET_KEY=secrets.token_urlsafe(32),
    DATABASE_URL=_database_url(TEST_DB),
    MOCK_OPENAI="true",
    LLM_MAX_RETRIES="0",
    LOG_LEVEL="INFO",
    ALLOW_REGISTRATION="true",
    ALLOW_ANONYMOUS_CHAT="false",
    # A model list as an operator would give one; the mock answers under its own name anyway
    # (the defaults without these are tested in test_settings_and_models_routes.py).
    AVAILABLE_MODELS="gpt-4o-mini,gpt-4o",
    DEFAULT_MODEL="gpt-4o-mini",
)
for _name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ADMIN_USERNAME", "ADMIN_PASSWORD"):
    os.environ.pop(_name, None)

from alembic import command  # noqa: E402
from fake_openai_server import FakeOpenAIServer  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import Engine, delete  # noqa: E402

from backend.core.db import alembic_config, engine  # noqa: E402
from backend.main import app  # noqa: E402
from backend.models import Base  # noqa: E402
from backend.services import (  # noqa: E402
    connections,
    model_access,
    search,
    server_settings,
    storage,
)


def pytest_report_header() -> str:
    return f"openchat backend store: {TEST_DB} ({os.environ['DATABASE_URL']})"


@pytest.fixture(scope="session")
def migrated_engine() -> Iterator[Engine]:
    """The service's engine on a database built by the real migrations, once per run."""
    command.upgrade(alembic_config(), "head")
    yield engine
    engine.dispose()


def pytest_sessionfinish() -> None:
    shutil.rmtree(_TEST_DIR, ignore_errors=True)


@pytest.fixture(autouse=True)
def clean_database(migrated_engine: Engine) -> Iterator[None]:
    """Each test starts from empty tables (cheaper than rebuilding the schema)."""
    yield
    with migrated_engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(delete(table))
    model_access.forget_cached_models()
    connections.forget_cached_connections()
    storage.forget_counts()
    server_settings.forget_cached()
    search.forget_counts()


@pytest.fixture
def client() -> Iterator[TestClient]:
    """A fresh client (no cookies) with the app's startup checks run."""
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def test_dir() -> Path:
    return _TEST_DIR


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeOpenAIServer]:

    server = FakeOpenAIServer().start()
    yield server
    server.stop()


@pytest.fixture
def real_provider(
    fake_openai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> FakeOpenAIServer:
    """Point the server's provider at the loopback fake instead of the built-in mock."""
    from fake_openai_server import received

    from backend.core.config import settings

    monkeypatch.setattr(settings, "MOCK_OPENAI", False)
    monkeypatch.setattr(settings, "OPENAI_API_KEY", "sk-server-key")
    monkeypatch.setattr(settings, "OPENAI_BASE_URL", fake_openai.base_url)
    monkeypatch.setattr(settings, "LLM_TIMEOUT_SECONDS", 1.0)
    received.clear()
    return fake_openai


@pytest.fixture
def user_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """Personal provider connections allowed, with loopback exempt from the private-address
    refusal so that a user's connection can reach the loopback fake provider."""
    from backend.core.config import settings

    monkeypatch.setattr(settings, "ALLOW_USER_CONNECTIONS", True)
    monkeypatch.setattr(settings, "EGRESS_ALLOW_PRIVATE_NETWORKS", ["127.0.0.0/8"])


@pytest.fixture(scope="module")
def http_server() -> Iterator[str]:
    """The SDK-built MCP test server over Streamable HTTP on loopback; yields its URL."""
    from mcp_test_servers import http_tools_server  # tests/backend/mcp, on the path there

    with http_tools_server() as url:
        yield url
