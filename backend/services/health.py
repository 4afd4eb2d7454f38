"""What the health routes check: the store, the migrations, and (cached) the model provider.

Readiness asks only what this process needs to serve: the store answers and its schema is the
one this code was written for. The provider is someone else's server: whether it answers is
reported beside readiness, never as a reason to take this process out of a load balancer.
"""

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Literal
from urllib.parse import urlsplit

import openai
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.core.db import alembic_config
from backend.llm.client import client_for, describe_upstream_error, server_provider
from backend.models import User

logger = logging.getLogger(__name__)

# How long one provider check stands before the next request makes a new one, and how long
# that check may take: probes come every few seconds, the provider need not see each one.
PROVIDER_CHECK_TTL_SECONDS = 60.0
PROVIDER_CHECK_TIMEOUT_SECONDS = 5.0

ProviderState = Literal["ok", "error", "mock", "unchecked"]


@cache
def migration_head() -> str | None:
    """The newest revision this code ships (read once: the scripts do not change at run time)."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def read_the_store(*, session: Session) -> None:
    # A real table, not `SELECT 1`: the point is to prove the store can be read.
    session.execute(select(User.id).limit(1)).all()


def migrations_at_head(*, session: Session) -> bool:
    current = MigrationContext.configure(session.connection()).get_current_revision()
    return current == migration_head()


@dataclass(frozen=True)
class ProviderCheck:
    status: ProviderState
    checked_at: datetime | None = None
    detail: str | None = None
    # When it was made on the monotonic clock (freshness must not follow wall-clock jumps).
    made_at: float | None = None


_last_check = ProviderCheck(status="unchecked")
_running: "asyncio.Task[ProviderCheck] | None" = None


def last_provider_check() -> ProviderCheck:
    """The latest result, without asking the provider."""
    return _last_check


async def provider_check() -> ProviderCheck:
    """The provider's state, asking it at most once per TTL (concurrent callers share one ask)."""
    global _running
    if _is_fresh(_last_check):
        return _last_check
    if _running is None or _running.done() or _running.get_loop() is not asyncio.get_running_loop():
        _running = asyncio.create_task(_ask_the_provider())
    return await asyncio.shield(_running)


def refresh_provider_check_soon() -> None:
    """Start a new check in the background when the last one is stale (readiness must not wait
    for a provider)."""
    global _running
    if _is_fresh(_last_check) or (_running is not None and not _running.done()):
        return
    _running = asyncio.create_task(_ask_the_provider())


def forget_provider_check() -> None:
    global _last_check, _running
    _last_check, _running = ProviderCheck(status="unchecked"), None


def _is_fresh(check: ProviderCheck) -> bool:
    if check.made_at is None:
        return False
    return time.monotonic() - check.made_at < PROVIDER_CHECK_TTL_SECONDS


async def _ask_the_provider() -> ProviderCheck:
    global _last_check
    _last_check = await _provider_state()
    return _last_check


async def _provider_state() -> ProviderCheck:
    provider = server_provider()
    if provider.is_mock:
        return _made("mock")
    try:
        client = client_for(provider).with_options(max_retries=0)
        await asyncio.wait_for(client.models.list(), PROVIDER_CHECK_TIMEOUT_SECONDS)
    except (TimeoutError, openai.OpenAIError) as error:
        detail = (
            f"The model provider did not answer within {PROVIDER_CHECK_TIMEOUT_SECONDS:g} s."
            if isinstance(error, TimeoutError)
            else describe_upstream_error(error).detail
        )
        host = urlsplit(provider.base_url or "https://api.openai.com").hostname
        logger.warning(
            "provider_unreachable", extra={"provider_host": host, "error": type(error).__name__}
        )
        return _made("error", detail=detail)
    return _made("ok")


def _made(status: ProviderState, *, detail: str | None = None) -> ProviderCheck:
    return ProviderCheck(
        status=status, checked_at=datetime.now(UTC), detail=detail, made_at=time.monotonic()
    )
