"""Liveness with a real store round trip, and the public server options the UI needs."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.core.config import settings
from backend.core.db import run_in_session
from backend.models import User
from backend.schemas import HealthPublic, ServerConfigPublic

router = APIRouter(tags=["health"])


def _read_the_store(*, session: Session) -> None:
    # A real table, not `SELECT 1`: the point is to prove the store can be read.
    session.execute(select(User.id).limit(1)).all()


@router.get("/health", response_model=HealthPublic, responses={503: {"model": HealthPublic}})
async def health() -> HealthPublic | JSONResponse:
    try:
        await run_in_session(_read_the_store)
    except Exception:
        body = HealthPublic(status="error", database="error").model_dump()
        return JSONResponse(body, status_code=503)
    return HealthPublic(status="ok", database="ok")


@router.get("/config", response_model=ServerConfigPublic)
async def server_config() -> ServerConfigPublic:
    return ServerConfigPublic(
        allow_registration=settings.ALLOW_REGISTRATION,
        allow_anonymous_chat=settings.ALLOW_ANONYMOUS_CHAT,
        mock_llm=settings.use_mock_llm,
        default_model=settings.default_model,
        max_message_chars=settings.MAX_MESSAGE_CHARS,
    )
