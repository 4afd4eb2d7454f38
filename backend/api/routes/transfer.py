"""Export all of the caller's conversations as JSON, and import such a file or ChatGPT's."""

from typing import Any

from fastapi import APIRouter, Body, status
from fastapi.responses import JSONResponse

from backend.api.deps import CurrentUser
from backend.core.db import run_in_session
from backend.schemas import ExportFile, ImportResult
from backend.services import transfer

router = APIRouter(tags=["export and import"])


@router.get("/export", response_model=ExportFile)
async def export_conversations(user: CurrentUser) -> JSONResponse:
    """Every conversation of the caller with its messages, as a downloadable JSON file."""
    exported = await run_in_session(transfer.export_conversations, user=user)
    day = exported.exported_at.date().isoformat() if exported.exported_at else "export"
    headers = {"Content-Disposition": f'attachment; filename="openchat-{user.username}-{day}.json"'}
    return JSONResponse(exported.model_dump(mode="json"), headers=headers)


@router.post(
    "/import",
    status_code=status.HTTP_201_CREATED,
    response_model=ImportResult,
    responses={400: {"description": "Not an Open Chat export nor a ChatGPT conversations.json"}},
)
async def import_conversations(
    user: CurrentUser,
    payload: Any = Body(
        description="An Open Chat export (object) or ChatGPT's conversations.json (list)"
    ),
) -> ImportResult:
    """Conversations already imported (same stable id) are skipped, so re-importing is safe."""
    return await run_in_session(transfer.import_conversations, user=user, payload=payload)
