"""Liveness, readiness, the provider's state, and the public server options the UI needs.

- `/health/live`: the process answers (no I/O), for restart decisions.
- `/health/ready`: the store answers and is migrated to this code's head, for routing traffic.
- `/health/provider`: whether the model provider answers (cached), reported, never failing
  readiness: a provider outage is not fixed by restarting or unrouting this process.
- `/health`: the store round trip, as before.
"""

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from backend.core.config import settings
from backend.core.db import run_in_session
from backend.schemas import (
    HealthPublic,
    LivenessPublic,
    ProviderHealthPublic,
    ReadinessPublic,
    ServerConfigPublic,
)
from backend.services import health as checks

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthPublic, responses={503: {"model": HealthPublic}})
async def health() -> HealthPublic | JSONResponse:
    try:
        await run_in_session(checks.read_the_store)
    except Exception:
        body = HealthPublic(status="error", database="error").model_dump()
        return JSONResponse(body, status_code=503)
    return HealthPublic(status="ok", database="ok")


@router.get("/health/live", response_model=LivenessPublic)
async def liveness() -> LivenessPublic:
    return LivenessPublic(status="ok")


def _store_state(*, session: Session) -> dict[str, Any]:
    checks.read_the_store(session=session)
    return {
        "database": "ok",
        "migrations": "ok" if checks.migrations_at_head(session=session) else "error",
    }


@router.get(
    "/health/ready", response_model=ReadinessPublic, responses={503: {"model": ReadinessPublic}}
)
async def readiness() -> ReadinessPublic | JSONResponse:
    checks.refresh_provider_check_soon()
    try:
        state = await run_in_session(_store_state)
    except Exception:
        state = {"database": "error", "migrations": "error"}
    ready = state["database"] == "ok" and state["migrations"] == "ok"
    body = ReadinessPublic(
        status="ok" if ready else "error",
        provider=checks.last_provider_check().status,
        **state,
    )
    if not ready:
        return JSONResponse(body.model_dump(), status_code=503)
    return body


@router.get("/health/provider", response_model=ProviderHealthPublic)
async def provider_health() -> ProviderHealthPublic:
    check = await checks.provider_check()
    return ProviderHealthPublic(
        status=check.status, checked_at=check.checked_at, detail=check.detail
    )


@router.get("/config", response_model=ServerConfigPublic)
async def server_config() -> ServerConfigPublic:
    return ServerConfigPublic(
        allow_registration=settings.ALLOW_REGISTRATION,
        allow_anonymous_chat=settings.ALLOW_ANONYMOUS_CHAT,
        mock_llm=settings.use_mock_llm,
        default_model=settings.default_model,
        max_message_chars=settings.MAX_MESSAGE_CHARS,
    )
