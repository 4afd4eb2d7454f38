"""Export all of the caller's conversations as JSON, and import such a file or ChatGPT's."""

from typing import Any

from fastapi import APIRouter, Body, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from backend.api.deps import CurrentUser
from backend.core import sealing
from backend.core.config import settings
from backend.core.db import run_in_session
from backend.schemas import ExportFile, ImportResult
from backend.services import transfer
from backend.services.batches import run_in_batches
from backend.services.errors import ServiceError

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
    responses={
        400: {"description": "Not an Open Chat export nor a ChatGPT conversations.json"},
        403: {"description": "The import would exceed the caller's storage limits"},
    },
)
async def import_conversations(
    user: CurrentUser,
    payload: Any = Body(
        description="An Open Chat export (object) or ChatGPT's conversations.json (list)"
    ),
) -> ImportResult:
    """Conversations already imported (same stable id) are skipped, so re-importing is safe."""
    sealing.refuse_if_awaiting()
    # Parsing and validating is CPU work without the database: it never holds the store.
    source, items = await run_in_threadpool(transfer.parse_import, payload)
    imported: set[str] = set()
    try:
        uuids = await run_in_batches(
            transfer.import_batch,
            items,
            max_items=settings.IMPORT_BATCH_CONVERSATIONS,
            max_weight=settings.IMPORT_BATCH_MESSAGES,
            weight=lambda item: 1 + len(item.messages),
            user=user,
            source=source,
            imported=imported,
        )
    except ServiceError as error:
        if imported:  # earlier batches are committed: say so, so a retry is understood
            error.detail += f" ({len(imported)} conversations of this file were imported first.)"
        raise
    return ImportResult(
        # a str from the parser; pydantic checks at run time that it is a Literal's value
        source=source,  # type: ignore[arg-type]
        imported=len(uuids),
        skipped=len(items) - len(uuids),
        conversations=uuids,
    )
