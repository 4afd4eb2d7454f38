"""Import jobs run in the background of the server process that received them.

A job reads its encrypted upload as a stream (`import_sources`), turns each conversation into
what is stored (`chatgpt_import.to_export`, or our own format as it is) and writes batches
bounded in conversations, messages and time, each its own short transaction, so other users'
requests run between them. Parsing runs in a worker thread outside the database's limiter:
it never holds the store. A server that starts resumes the jobs left unfinished by a crash or
a restart (`resume`), after the last batch they committed.
"""

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO, Any, cast

from anyio import to_thread
from pydantic import ValidationError
from sqlalchemy.orm import Session

from backend.core import sealing
from backend.core.config import settings
from backend.core.db import database_threads, run_in_session
from backend.schemas import ExportConversation
from backend.services import (
    chatgpt_import,
    import_jobs,
    import_sources,
    server_settings,
    zero_access,
)
from backend.services.errors import ServiceError
from backend.services.import_jobs import Batch, Claimed
from backend.services.import_spool import SpoolReader, SpoolUnreadable, job_key

logger = logging.getLogger(__name__)

# host:pid:start, so a restarted process (even with the same pid, as in a container) knows
# the jobs of its previous life are nobody's.
RUNNER = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
# A batch is written at least this often, even a small one: progress shows, and the job's
# heartbeat tells other processes it is alive.
PROGRESS_SECONDS = 2.0
# A write transaction of a job aims at this length (see ExportReader.adapt), within
# MIN_BATCH_WEIGHT and IMPORT_BATCH_MESSAGES rows (conversations + messages).
BATCH_SECONDS = 0.15
FIRST_BATCH_WEIGHT, MIN_BATCH_WEIGHT = 200, 20
# How often a server looks for jobs whose runner died (another worker, say).
RESUME_SECONDS = 60.0

NOT_CHATGPT = "not ChatGPT conversations (no id or no mapping of messages)"
NOT_OPENCHAT = "not valid Open Chat conversations"
NO_MESSAGES = "without messages (only hidden, tool or empty ones)"

_tasks: dict[str, "asyncio.Task[None]"] = {}


class ExportReader:
    """The batches of one job's upload, made in worker threads (one call at a time)."""

    def __init__(self, *, path: Path, claimed: Claimed) -> None:
        self._path, self._claimed = path, claimed
        self._closers: list[IO[bytes] | Any] = []
        self._items: Iterator[tuple[str, Any]] = iter(())
        self._index = 0
        self._reader: SpoolReader | None = None
        self._broken: import_sources.UnreadableExport | None = None
        self.max_weight = FIRST_BATCH_WEIGHT

    def open(self) -> None:
        key = job_key(self._claimed.salt)
        self._reader = SpoolReader(self._path, key=key, size=self._claimed.bytes_total)
        self._closers.append(self._reader)
        self._items = self._all_items(self._reader)

    def _all_items(self, spool: SpoolReader) -> Iterator[tuple[str, Any]]:
        reader = cast(IO[bytes], spool)  # a file in all but name: read, seek, tell
        head = reader.read(4)
        reader.seek(0)
        if not import_sources.is_zip(head):
            source, values = import_sources.items(reader)
            yield from ((source, value) for value in values)
            return
        archive = import_sources.open_zip(reader)
        self._closers.append(archive)
        for member in import_sources.conversation_members(archive):
            with archive.open(member) as stream:
                source, values = import_sources.items(stream)
                yield from ((source, value) for value in values)

    def next_batch(self) -> Batch | None:
        """The next batch, or None once the file is read. Bounded by IMPORT_BATCH_* and by
        PROGRESS_SECONDS; on resume, the conversations already handled are passed over."""
        if self._broken is not None:
            raise self._broken
        started = time.monotonic()
        batch: Batch | None = None
        weight = 0
        try:
            for source, value in self._items:
                self._index += 1
                batch = batch or Batch(source=source)
                if self._index > self._claimed.items_done:
                    weight += self._add(batch, source, value)
                if (
                    len(batch.conversations) >= settings.IMPORT_BATCH_CONVERSATIONS
                    or weight >= self.max_weight
                    or time.monotonic() - started > PROGRESS_SECONDS
                ):
                    break
        except import_sources.UnreadableExport as error:
            if batch is None:
                raise
            self._broken = error  # what came before the broken part is written first
        if batch is None:
            return None
        batch.weight = weight
        batch.items_done = max(self._index, self._claimed.items_done)
        batch.bytes_read = self._reader.tell() if self._reader else 0
        return batch

    def _add(self, batch: Batch, source: str, value: Any) -> int:
        """Parse one conversation into the batch; the rows it adds (its weight)."""
        try:
            if source == "chatgpt":
                conversation, skipped = chatgpt_import.to_export(value)
                batch.skipped_messages.update(skipped)
            else:
                conversation = ExportConversation.model_validate(value)
        except (chatgpt_import.NotAConversation, ValidationError):
            batch.skipped_conversations[NOT_CHATGPT if source == "chatgpt" else NOT_OPENCHAT] += 1
            return 0
        if not conversation.messages:
            batch.skipped_conversations[NO_MESSAGES] += 1
            return 0
        batch.conversations.append(conversation)
        return 1 + len(conversation.messages)

    def adapt(self, *, written: int, seconds: float) -> None:
        """Size the next batch so that its transaction takes about BATCH_SECONDS: how long
        a row takes varies with the store, its size and the load, and a transaction that
        runs long keeps every other user waiting that long."""
        if written and seconds > 0:
            wanted = int(written * BATCH_SECONDS / seconds)
            self.max_weight = max(MIN_BATCH_WEIGHT, min(wanted, settings.IMPORT_BATCH_MESSAGES))
        if seconds > 4 * BATCH_SECONDS:
            logger.info("import_batch_slow", extra={"rows": written, "seconds": round(seconds, 2)})

    def close(self) -> None:
        for closer in reversed(self._closers):
            with contextlib.suppress(Exception):
                closer.close()
        self._closers.clear()


def start(job_uuid: str) -> None:
    """Run the job in the background of this process (unless it runs here already)."""
    if job_uuid in _tasks:
        return
    task = asyncio.get_running_loop().create_task(_run(job_uuid), name=f"import {job_uuid}")
    _tasks[job_uuid] = task
    task.add_done_callback(lambda _: _tasks.pop(job_uuid, None))


async def _run(job_uuid: str) -> None:
    claimed = await run_in_session(import_jobs.claim, job_uuid=job_uuid, runner=RUNNER)
    if claimed is None:
        return
    path = import_jobs.spool_path(job_uuid)
    refusal = await run_in_session(_why_it_cannot_write, user_id=claimed.user_id)
    if refusal is not None:
        await _fail(claimed, refusal, path)
        return
    reader = ExportReader(path=path, claimed=claimed)
    try:
        await _import(reader, claimed)
    except asyncio.CancelledError:  # the server stops: the job resumes when it starts again
        raise
    except (import_sources.UnreadableExport, SpoolUnreadable, ServiceError, ImportRefused) as error:
        await _fail(claimed, str(getattr(error, "detail", error)), path)
    except FileNotFoundError:
        await _fail(claimed, "The uploaded file is gone from the server: upload it again.", path)
    except Exception:
        logger.exception("import_failed", extra={"job": job_uuid})
        await _fail(claimed, "The import stopped on an unexpected error: try again.", path)
    else:
        path.unlink(missing_ok=True)
    finally:
        await to_thread.run_sync(reader.close)


# A zero-access user's conversations are sealed with a key only their signed-in session holds:
# an import started by their upload runs with it; one resumed after a restart does not.
_SEALED_ELSEWHERE = (
    "The import stopped with the server, and your conversations are zero-access: only your "
    "signed-in session can write them. Upload the file again."
)


class ImportRefused(Exception):
    """The job may no longer write the user's conversations; the sentence says why."""


_MODE_REQUIRED = (
    "The import stopped: zero-access conversations are now required on this server. Turn the "
    "mode on in Settings, Privacy, then upload the file again."
)


def _why_it_cannot_write(*, session: Session, user_id: int) -> str | None:
    """Why this job may not write the user's conversations now, or None when it may."""
    if zero_access.material(session=session, user_id=user_id) is None:
        # Plain text is allowed only while the server does not require the mode.
        required = server_settings.zero_access_required(session=session)
        return _MODE_REQUIRED if required else None
    held = sealing.current()
    if held is None or held.user_id != user_id or held.key is None:
        return _SEALED_ELSEWHERE
    return None


async def _import(reader: ExportReader, claimed: Claimed) -> None:
    await to_thread.run_sync(reader.open)
    while (batch := await to_thread.run_sync(reader.next_batch)) is not None:
        started = time.perf_counter()
        await run_in_session(_record_allowed_batch, claimed=claimed, batch=batch)
        seconds = time.perf_counter() - started
        reader.adapt(written=batch.weight, seconds=seconds)
        if _others_use_the_store():
            # Leave the store to them for as long as the batch had it, so that a request
            # needing several transactions (a question, then its answer) finishes between two
            # batches instead of waiting for one at each step.
            await asyncio.sleep(seconds)
    await run_in_session(import_jobs.finish, job_id=claimed.id, bytes_read=claimed.bytes_total)
    logger.info("import_done", extra={"job": claimed.uuid})


def _record_allowed_batch(*, session: Session, claimed: Claimed, batch: Batch) -> None:
    """One batch, in the transaction that checks it may still be written: the admin may
    require zero-access while a job runs, and the job then stops before its next batch."""
    refusal = _why_it_cannot_write(session=session, user_id=claimed.user_id)
    if refusal is not None:
        raise ImportRefused(refusal)
    import_jobs.record_batch(
        session=session, job_id=claimed.id, user_id=claimed.user_id, batch=batch
    )


def _others_use_the_store() -> bool:
    """Whether other work took or waits for a database thread as this job's batch ended."""
    return database_threads.borrowed_tokens > 0 or database_threads.statistics().tasks_waiting > 0


async def _fail(claimed: Claimed, error: str, path: Path) -> None:
    path.unlink(missing_ok=True)  # plaintext never lingers; the encrypted upload neither
    await run_in_session(import_jobs.fail, job_id=claimed.id, error=error)
    logger.info("import_failed", extra={"job": claimed.uuid})


async def resume() -> None:
    """Start the jobs no live process runs; end uploads a crash cut off; remove the files of
    jobs that ended."""
    for job_uuid, status in await run_in_session(import_jobs.unfinished):
        if job_uuid in _tasks:
            continue
        if status == "uploading":
            if await run_in_session(import_jobs.abandon_upload, job_uuid=job_uuid, runner=RUNNER):
                import_jobs.spool_path(job_uuid).unlink(missing_ok=True)
            continue
        if import_jobs.spool_path(job_uuid).exists():  # else its upload is on another host
            start(job_uuid)
    await run_in_session(import_jobs.remove_ended_spools)


async def _keep_resuming() -> None:
    while True:
        try:
            await resume()
        except Exception:  # a database hiccup must not end the loop for good
            logger.exception("import_resume_failed")
        await asyncio.sleep(RESUME_SECONDS)


@contextlib.asynccontextmanager
async def running() -> AsyncIterator[None]:
    """For the app's lifespan: resume jobs now and every RESUME_SECONDS; on shutdown, stop
    the jobs of this process between two batches (they resume on the next start)."""
    resumer = asyncio.get_running_loop().create_task(_keep_resuming(), name="import resume")
    try:
        yield
    finally:
        tasks = [resumer, *_tasks.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
