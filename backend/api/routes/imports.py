"""Imports of large exports as background jobs: upload the file, then follow its progress."""

import time
from pathlib import Path
from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from backend.api.deps import CurrentUser
from backend.core import sealing
from backend.core.db import run_in_session
from backend.schemas import ImportJobPublic
from backend.services import import_jobs, import_runner, import_sources
from backend.services.errors import BadRequest
from backend.services.import_spool import SEGMENT, SpoolReader, SpoolWriter, job_key

router = APIRouter(tags=["export and import"])

# The upload's path: the body size limit and the JSON guard let it through (it is streamed
# to disk encrypted, up to MAX_IMPORT_BYTES, and parsed incrementally).
UPLOAD_PATH = "/api/imports"
# An upload under way says so this often (other processes take a silent one for crashed).
HEARTBEAT_SECONDS = 10.0


@router.post(
    "/imports",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ImportJobPublic,
    responses={
        400: {"description": "Empty, or neither a zip with conversations.json nor JSON"},
        409: {"description": "Another import of the caller is under way"},
        413: {"description": "Larger than MAX_IMPORT_BYTES"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The file itself as the body (not a form): ChatGPT's export .zip, "
            "its conversations.json, or an Open Chat export",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def start_import(
    request: Request,
    user: CurrentUser,
    filename: Annotated[str, Query(min_length=1, max_length=255)] = "upload",
) -> JSONResponse:
    """Store the upload (encrypted) and import it in the background; poll the job it returns.
    Conversations already imported (same ChatGPT conversation id) are skipped."""
    sealing.refuse_if_awaiting()  # the import would write plain content the server refuses
    job = await run_in_session(
        import_jobs.create, user_id=user.id, filename=filename, runner=import_runner.RUNNER
    )
    path = import_jobs.spool_path(job.uuid)
    try:
        size = await _receive(request, path, salt=job.salt, job_uuid=job.uuid)
        await to_thread.run_sync(_check_upload, path, job.salt, size)
    except BaseException:
        path.unlink(missing_ok=True)
        await run_in_session(import_jobs.discard, job_uuid=job.uuid)
        raise
    await run_in_session(import_jobs.queue, job_uuid=job.uuid, size=size)
    import_runner.start(job.uuid)
    body = await run_in_session(import_jobs.get, user_id=user.id, job_uuid=job.uuid)
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=status.HTTP_202_ACCEPTED,
        headers={"Location": f"{UPLOAD_PATH}/{job.uuid}"},
    )


async def _receive(request: Request, path: Path, *, salt: str, job_uuid: str) -> int:
    """The body, sealed segment by segment into `path`; its size. Encryption and writing run
    in a worker thread a segment at a time, never on the event loop."""
    writer = SpoolWriter(path, key=job_key(salt))
    pending = bytearray()
    beat = time.monotonic()
    try:
        async for chunk in request.stream():
            pending += chunk
            if len(pending) >= SEGMENT:
                await to_thread.run_sync(writer.write, bytes(pending))
                pending.clear()
                if time.monotonic() - beat > HEARTBEAT_SECONDS:
                    await run_in_session(import_jobs.beat, job_uuid=job_uuid)
                    beat = time.monotonic()
        await to_thread.run_sync(writer.write, bytes(pending))
        await to_thread.run_sync(writer.close)
    except ClientDisconnect:
        writer.abort()
        raise BadRequest("The upload was cut off before its end: try again.") from None
    except BaseException:
        writer.abort()
        raise
    return writer.size


def _check_upload(path: Path, salt: str, size: int) -> None:
    """Refuse now what can never be imported: an empty file, one that is neither JSON nor a
    zip, a zip without conversations.json. Everything else is found out by the job."""
    if size == 0:
        raise BadRequest("The file is empty.")
    with SpoolReader(path, key=job_key(salt), size=size) as reader:
        head = reader.read(64)
        try:
            import_sources.check_head(head)
            if import_sources.is_zip(head):
                reader.seek(0)
                with import_sources.open_zip(reader) as archive:  # type: ignore[arg-type]
                    import_sources.conversation_members(archive)
        except import_sources.UnreadableExport as error:
            raise BadRequest(str(error)) from error


@router.get("/imports", response_model=list[ImportJobPublic])
async def recent_imports(user: CurrentUser) -> list[ImportJobPublic]:
    """The caller's latest imports, newest first (Settings shows one under way)."""
    return await run_in_session(import_jobs.recent, user_id=user.id)


@router.get(
    "/imports/{job_uuid}",
    response_model=ImportJobPublic,
    responses={404: {"description": "No such import of the caller"}},
)
async def import_progress(job_uuid: str, user: CurrentUser) -> ImportJobPublic:
    """Progress: bytes read of those uploaded, conversations handled and added, what was
    skipped and why, and a failed import's reason."""
    return await run_in_session(import_jobs.get, user_id=user.id, job_uuid=job_uuid)
