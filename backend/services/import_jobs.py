"""Import jobs in the database: one per user at a time, progress recorded with each batch.

A job goes uploading → queued → running → done or failed. Each batch of conversations is
written in the same transaction as the job's progress (`record_batch`), so after a crash the
job resumes exactly after the last committed batch, and because every imported conversation
has a stable id (`transfer._stable_uuid`, from the ChatGPT conversation id), importing the
same export again, or resuming one, never adds a conversation twice.
"""

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from backend.models import ImportJob, utcnow
from backend.schemas import ExportConversation, ImportJobPublic
from backend.services import import_spool, transfer
from backend.services.errors import Conflict, NotFound

ACTIVE = ("uploading", "queued", "running")
ALREADY_IMPORTED = "already imported"


@dataclass(slots=True)
class Batch:
    """Conversations parsed from the export and where the parse is after them."""

    source: str
    conversations: list[ExportConversation] = field(default_factory=list)
    items_done: int = 0  # conversations of the export handled once this batch is written
    bytes_read: int = 0
    weight: int = 0  # rows to write: conversations and messages
    skipped_conversations: Counter[str] = field(default_factory=Counter)
    skipped_messages: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class Claimed:
    """What a runner needs of its job (read once, when it takes the job)."""

    id: int
    uuid: str
    user_id: int
    salt: str
    bytes_total: int
    items_done: int


def spool_path(job_uuid: str) -> Path:
    return import_spool.spool_dir() / f"{job_uuid}.spool"


def _mine(*, session: Session, user_id: int, job_uuid: str) -> ImportJob:
    job = session.scalars(
        select(ImportJob).where(ImportJob.uuid == job_uuid, ImportJob.user_id == user_id)
    ).first()
    if job is None:
        raise NotFound("No such import")
    return job


def create(*, session: Session, user_id: int, filename: str, runner: str) -> ImportJob:
    """A new job receiving its upload; 409 while the user has another one under way."""
    active = session.scalars(
        select(ImportJob).where(ImportJob.user_id == user_id, ImportJob.status.in_(ACTIVE))
    ).first()
    if active is not None and _abandoned(active):
        _end(active, "failed", "The server running this import stopped and did not resume it.")
        active = None
    if active is not None:
        raise Conflict(
            f"An import of {active.filename} is already under way: wait until it ends "
            "(Settings shows its progress), then import the next file."
        )
    job = ImportJob(
        user_id=user_id,
        filename=filename[:255],
        salt=import_spool.new_salt(),
        runner=runner,
        heartbeat_at=utcnow(),
    )
    session.add(job)
    session.commit()
    return job


def beat(*, session: Session, job_uuid: str) -> None:
    """The uploader is alive (a long upload must not look like a crashed one)."""
    session.execute(
        update(ImportJob)
        .where(ImportJob.uuid == job_uuid)
        .values(heartbeat_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.commit()


def queue(*, session: Session, job_uuid: str, size: int) -> None:
    job = session.scalars(select(ImportJob).where(ImportJob.uuid == job_uuid)).one()
    if job.status != "uploading":  # given up meanwhile (see `_abandoned`)
        raise Conflict("The upload took too long and was given up: upload the file again.")
    job.status, job.bytes_total = "queued", size
    session.commit()


def discard(*, session: Session, job_uuid: str) -> None:
    """Forget a job whose upload was refused or cut off (the caller was told why)."""
    if job := session.scalars(select(ImportJob).where(ImportJob.uuid == job_uuid)).first():
        session.delete(job)
        session.commit()


def claim(*, session: Session, job_uuid: str, runner: str) -> Claimed | None:
    """Take a job of this runner (queued by its upload), or one whose runner is gone (see
    `runner_gone`). The change is conditional on the row as read, so of two processes trying
    at once only one gets it."""
    job = session.scalars(select(ImportJob).where(ImportJob.uuid == job_uuid)).first()
    if job is None or job.status not in ("queued", "running"):
        return None
    if job.runner != runner and not runner_gone(job, me=runner):
        return None
    taken = session.execute(
        update(ImportJob)
        .where(
            ImportJob.id == job.id,
            ImportJob.status == job.status,
            ImportJob.runner == job.runner if job.runner else ImportJob.runner.is_(None),
        )
        .values(status="running", runner=runner, heartbeat_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.commit()
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return Claimed(job.id, job.uuid, job.user_id, job.salt, job.bytes_total, job.items_done)


# A runner that has not written progress for this long is taken for dead (a live one writes
# at least every few seconds, see import_runner.PROGRESS_SECONDS).
STALE_AFTER = timedelta(seconds=60)


# A job silent this long is given up: no server resumed it (its upload was on a host that is
# gone, say), and it must not keep its user from importing again.
ABANDONED_AFTER = timedelta(minutes=10)


def _abandoned(job: ImportJob) -> bool:
    return job.heartbeat_at is None or utcnow() - job.heartbeat_at > ABANDONED_AFTER


def runner_gone(job: ImportJob, *, me: str) -> bool:
    """Whether the process that ran `job` is gone: an earlier process of this host (`host:pid:
    start`), or any runner silent for STALE_AFTER."""
    if job.heartbeat_at is None or utcnow() - job.heartbeat_at > STALE_AFTER:
        return True
    host, _, rest = (job.runner or "").partition(":")
    my_host, _, my_rest = me.partition(":")
    if host != my_host:
        return False
    pid, my_pid = rest.partition(":")[0], my_rest.partition(":")[0]
    return pid == my_pid or not _alive(pid)  # same pid: this process, restarted


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def unfinished(*, session: Session) -> list[tuple[str, str]]:
    """(uuid, status) of every job not ended, oldest first: what a starting server resumes."""
    rows = session.execute(
        select(ImportJob.uuid, ImportJob.status)
        .where(ImportJob.status.in_(ACTIVE))
        .order_by(ImportJob.id)
    )
    return [(row.uuid, row.status) for row in rows]


def abandon_upload(*, session: Session, job_uuid: str, runner: str) -> bool:
    """Fail an upload cut off by a crash (its runner gone); whether it was."""
    job = session.scalars(select(ImportJob).where(ImportJob.uuid == job_uuid)).first()
    if job is None or job.status != "uploading" or not runner_gone(job, me=runner):
        return False
    _end(job, "failed", "The upload was interrupted (the server restarted): upload the file again.")
    session.commit()
    return True


def _counts(job: ImportJob) -> dict[str, Counter[str]]:
    stored = json.loads(job.skipped or "{}")
    return {kind: Counter(stored.get(kind, {})) for kind in ("conversations", "messages")}


def record_batch(*, session: Session, job_id: int, user_id: int, batch: Batch) -> None:
    """Write the batch's new conversations and the job's progress in one transaction."""
    new = transfer.add_batch(
        session=session,
        user_id=user_id,
        source=batch.source,
        batch=batch.conversations,
        imported=set(),
    )
    job = session.get_one(ImportJob, job_id)
    counts = _counts(job)
    counts["conversations"].update(batch.skipped_conversations)
    if present := len(batch.conversations) - len(new):
        counts["conversations"][ALREADY_IMPORTED] += present
    counts["messages"].update(batch.skipped_messages)
    job.skipped = json.dumps({kind: dict(counter) for kind, counter in counts.items()})
    job.source = batch.source
    job.imported += len(new)
    job.messages += sum(len(item.messages) for item in new.values())
    job.items_done, job.bytes_read = batch.items_done, batch.bytes_read
    job.heartbeat_at = utcnow()
    session.commit()


def finish(*, session: Session, job_id: int, bytes_read: int) -> None:
    job = session.get_one(ImportJob, job_id)
    job.bytes_read = max(job.bytes_read, bytes_read)
    _end(job, "done", None)
    session.commit()


def fail(*, session: Session, job_id: int, error: str) -> None:
    job = session.get_one(ImportJob, job_id)
    if job.imported:  # earlier batches are committed: say so, so a retry is understood
        error += (
            f" {job.imported} conversations were imported before it stopped; importing the "
            "file again adds only the others."
        )
    _end(job, "failed", error)
    session.commit()


def _end(job: ImportJob, status: str, error: str | None) -> None:
    job.status, job.error, job.finished_at, job.heartbeat_at = status, error, utcnow(), utcnow()
    job.runner = None


def public(job: ImportJob) -> ImportJobPublic:
    counts = _counts(job)
    return ImportJobPublic(
        uuid=job.uuid,
        filename=job.filename,
        status=job.status,  # type: ignore[arg-type]
        source=job.source,  # type: ignore[arg-type]
        bytes_total=job.bytes_total,
        bytes_read=job.bytes_read,
        conversations_done=job.items_done,
        imported=job.imported,
        messages=job.messages,
        skipped_conversations=dict(counts["conversations"]),
        skipped_messages=dict(counts["messages"]),
        error=job.error,
        created_at=job.created_at,
        finished_at=job.finished_at,
    )


def get(*, session: Session, user_id: int, job_uuid: str) -> ImportJobPublic:
    return public(_mine(session=session, user_id=user_id, job_uuid=job_uuid))


def recent(*, session: Session, user_id: int, limit: int = 5) -> list[ImportJobPublic]:
    jobs = session.scalars(
        select(ImportJob)
        .where(ImportJob.user_id == user_id)
        .order_by(ImportJob.id.desc())
        .limit(limit)
    )
    return [public(job) for job in jobs]


def remove_ended_spools(*, session: Session) -> None:
    """Delete uploads left on disk by jobs of this database that have ended (a crash between
    the job's end and the file's removal). Files of jobs unknown here are left alone: the
    folder may be another server's too."""
    for path in import_spool.spool_dir().glob("*.spool"):
        status = session.scalars(
            select(ImportJob.status).where(ImportJob.uuid == path.stem)
        ).first()
        if status is not None and status not in ACTIVE:
            path.unlink(missing_ok=True)
