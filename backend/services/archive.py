"""Archiving conversations nobody touched for N days (admin action and CLI command).

Archived conversations leave the sidebar list (`GET /api/conversations` lists active ones by
default) but stay searchable and are restored with `PATCH {"archived": false}`.
"""

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from backend.models import Conversation, utcnow
from backend.schemas import ArchivedConversation, ArchiveIdleResult


def archive_idle(*, session: Session, days: int, dry_run: bool) -> ArchiveIdleResult:
    """Archive every user's conversations last updated more than `days` days ago."""
    cutoff = utcnow() - timedelta(days=days)
    idle = (
        Conversation.user_id.is_not(None),
        Conversation.archived.is_(False),
        Conversation.updated_at < cutoff,
    )
    found = session.scalars(
        select(Conversation).where(*idle).order_by(Conversation.updated_at, Conversation.id)
    ).all()
    listed = [
        ArchivedConversation(uuid=c.uuid, title=c.title, user_id=c.user_id, updated_at=c.updated_at)
        for c in found
    ]
    if not dry_run and found:
        # updated_at is kept as it was: archiving is not activity.
        session.execute(
            update(Conversation)
            .where(Conversation.id.in_([c.id for c in found]))
            .values(archived=True, updated_at=Conversation.updated_at)
            .execution_options(synchronize_session=False)
        )
        session.commit()
    return ArchiveIdleResult(dry_run=dry_run, count=len(listed), conversations=listed)
