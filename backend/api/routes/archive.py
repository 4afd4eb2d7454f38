"""Cleanup: archive idle conversations (admins only)."""

from fastapi import APIRouter

from backend.api.deps import AdminUser
from backend.core.db import run_in_session
from backend.schemas import ArchiveIdleRequest, ArchiveIdleResult
from backend.services import archive

router = APIRouter(prefix="/admin", tags=["admin"])


@router.post("/archive-idle", response_model=ArchiveIdleResult)
async def archive_idle(admin: AdminUser, body: ArchiveIdleRequest) -> ArchiveIdleResult:
    """Archive every conversation idle for `days` days; `dry_run` only lists them."""
    return await run_in_session(archive.archive_idle, days=body.days, dry_run=body.dry_run)
