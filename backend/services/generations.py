"""Answers that belong to the server: generated to their end whether or not anyone watches.

`start()` runs the answer pipeline in a task of its own, so a closed tab or a reload does not
stop it; the answer is stored when complete (or, after Stop, as stopped with what was
written). Anyone allowed to read the conversation can `follow()` it from any point: the
same events as the asking request, resumed after the number of characters the follower
already has (the SSE event id of every delta is that number, so `Last-Event-ID` works).

Several worker processes: the row in `answer_generations` is the shared state. The worker
running an answer writes what was streamed so far into it every half second (a heartbeat);
a follower served by another worker polls that row, and Stop sets its `stop_requested`.
The row is deleted in the transaction that stores the answer, so "still running" and
"stored" are never both true, and a stored answer is stored once.
"""

import asyncio
import logging
from bisect import bisect_right
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.core.db import run_quick_in_session
from backend.models import (
    AnswerGeneration,
    Conversation,
    Message,
    ToolExecution,
    new_uuid,
    utcnow,
)
from backend.schemas import ConversationPublic, MessagePublic, ToolTurnPublic
from backend.services import answering, chat
from backend.services.answering import AnswerOptions, Delta, Failed, Finished, ToolEvent
from backend.services.chat import ChatTurn
from backend.services.conversations import Owner, read_owned_conversation
from backend.services.errors import Conflict

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 0.5
POLL_SECONDS = 0.25
# A running row not written for this long lost its worker (killed, restarted).
STALE_AFTER = timedelta(seconds=15)
BUSY = "An answer is still being written in this chat. Wait for it, or press Stop."
LOST = "The server restarted while this answer was being written. Try again."

# A follower sees (event name, data, SSE id or None).
Item = tuple[str, dict[str, Any], int | None]


@dataclass
class Generation:
    """One answer being written in this process."""

    uuid: str
    conversation_id: int
    started: dict[str, Any]  # the `start` event's data
    text: str = ""
    ends: list[int] = field(default_factory=list)  # where each streamed delta ends in `text`
    tool_events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    terminal: tuple[str, dict[str, Any]] | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    version: int = 0
    finished: "asyncio.Future[Finished | Failed] | None" = None

    async def touch(self) -> None:
        async with self.changed:
            self.version += 1
            self.changed.notify_all()


# Running answers of this process by conversation id; the tasks are kept so none is collected.
_running: dict[int, Generation] = {}
_tasks: set[asyncio.Task[None]] = set()


def running_here(conversation_id: int) -> Generation | None:
    return _running.get(conversation_id)


# --- the shared row -------------------------------------------------------------------------


def _live(row: AnswerGeneration) -> bool:
    return row.status == "running" and utcnow() - row.updated_at < STALE_AFTER


def ensure_idle(*, session: Session, conversation_id: int) -> AnswerGeneration | None:
    """Conflict if an answer is being written in the conversation (by any worker); else the
    row a failed or abandoned answer left, if any."""
    row = session.scalars(
        select(AnswerGeneration).where(AnswerGeneration.conversation_id == conversation_id)
    ).first()
    if row is not None and _live(row):
        raise Conflict(BUSY)
    return row


def register(*, session: Session, turn: ChatTurn, uuid: str, left: AnswerGeneration | None) -> None:
    """Add the answer's shared row to the session's transaction. The caller made sure that
    no answer is running (``left``: the row an earlier answer left, as `ensure_idle` found
    it), and commits: a concurrent registration fails that commit."""
    if left is not None:  # a failed or abandoned answer of an earlier question makes way
        session.execute(
            delete(AnswerGeneration).where(AnswerGeneration.conversation_id == turn.conversation_id)
        )
    session.add(
        AnswerGeneration(
            uuid=uuid,
            conversation_id=turn.conversation_id,
            user_message_uuid=turn.user_message.uuid,
            model=turn.model,
        )
    )


def commit_registered(session: Session) -> None:
    """Commit a transaction that registered an answer; Conflict if another worker registered
    one for the same conversation meanwhile (then nothing of the transaction is kept)."""
    try:
        session.commit()
    except IntegrityError as error:
        session.rollback()
        raise Conflict(BUSY) from error


def _register(*, session: Session, turn: ChatTurn, uuid: str) -> None:
    left = ensure_idle(session=session, conversation_id=turn.conversation_id)
    register(session=session, turn=turn, uuid=uuid, left=left)
    commit_registered(session)


def _heartbeat(*, session: Session, uuid: str, content: str) -> bool:
    """Write what was streamed so far; True when another worker asked to stop."""
    session.execute(
        update(AnswerGeneration)
        .where(AnswerGeneration.uuid == uuid, AnswerGeneration.status == "running")
        .values(content=content, updated_at=utcnow())
    )
    stop = session.scalar(
        select(AnswerGeneration.stop_requested).where(AnswerGeneration.uuid == uuid)
    )
    session.commit()
    return bool(stop)


def _mark_failed(*, session: Session, uuid: str, detail: str, status: int) -> None:
    session.execute(
        update(AnswerGeneration)
        .where(AnswerGeneration.uuid == uuid)
        .values(status="failed", error=detail, error_status=status, updated_at=utcnow())
    )
    session.commit()


def _forget(*, session: Session, uuid: str) -> None:
    session.execute(delete(AnswerGeneration).where(AnswerGeneration.uuid == uuid))
    session.commit()


# --- running ----------------------------------------------------------------------------------


def _start_event(turn: ChatTurn, uuid: str) -> dict[str, Any]:
    return {
        "conversation_uuid": turn.conversation.uuid,
        "title": turn.conversation.title,
        "user_message": turn.user_message.model_dump(mode="json"),
        "model": turn.model,
        "generation_uuid": uuid,
    }


async def start(turn: ChatTurn, options: AnswerOptions) -> Generation:
    """Register and start the answer; it runs to its end whoever follows it."""
    uuid = turn.generation_uuid
    if uuid is None:  # not registered with the question
        uuid = new_uuid()
        await run_quick_in_session(_register, turn=turn, uuid=uuid)
    generation = Generation(
        uuid=uuid, conversation_id=turn.conversation_id, started=_start_event(turn, uuid)
    )
    generation.finished = asyncio.get_running_loop().create_future()
    _running[turn.conversation_id] = generation
    task = asyncio.create_task(_run(generation, turn, options), name=f"answer-{uuid}")
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return generation


async def _beat(generation: Generation) -> None:
    while generation.terminal is None:
        await asyncio.sleep(HEARTBEAT_SECONDS)
        if generation.terminal is not None:
            return
        try:
            stop = await run_quick_in_session(
                _heartbeat, uuid=generation.uuid, content=generation.text
            )
        except Exception:  # a missed beat is only a slower follower elsewhere
            logger.warning("answer_heartbeat_failed", exc_info=True)
            continue
        if stop:
            generation.stop.set()


async def _run(generation: Generation, turn: ChatTurn, options: AnswerOptions) -> None:
    beat = asyncio.create_task(_beat(generation))
    outcome: Finished | Failed = Failed("The answer could not be saved", 500)
    try:
        async for event in answering.answer(turn, options, stop=generation.stop):
            if isinstance(event, Delta):
                generation.text += event.text
                generation.ends.append(len(generation.text))
            elif isinstance(event, ToolEvent):
                data = {"execution": event.execution.model_dump(mode="json")}
                generation.tool_events.append((event.name, data))
            else:
                outcome = event
            await generation.touch()
    finally:
        beat.cancel()
        await _settle(generation, outcome, turn)


async def _settle(generation: Generation, outcome: Finished | Failed, turn: ChatTurn) -> None:
    try:
        if isinstance(outcome, Failed):
            await run_quick_in_session(
                _mark_failed, uuid=generation.uuid, detail=outcome.detail, status=outcome.status
            )
            await run_quick_in_session(chat.abandon_turn, turn=turn)
        elif outcome.result.pending:  # no answer was stored, so the row is still there
            await run_quick_in_session(_forget, uuid=generation.uuid)
    except Exception:
        logger.exception("answer_settle_failed", extra={"generation": generation.uuid})
    if isinstance(outcome, Finished):
        generation.terminal = ("done", outcome.result.model_dump(mode="json"))
    else:
        generation.terminal = ("error", _error(generation.started, outcome))
    _running.pop(generation.conversation_id, None)
    if generation.finished is not None and not generation.finished.done():
        generation.finished.set_result(outcome)
    await generation.touch()


def _error(started: dict[str, Any], failed: Failed) -> dict[str, Any]:
    return {
        "detail": failed.detail,
        "status": failed.status,
        "user_message": started["user_message"],
    }


async def wait(generation: Generation) -> Finished | Failed:
    """The outcome; the caller leaving does not cancel the answer."""
    assert generation.finished is not None
    return await asyncio.shield(generation.finished)


def request_stop(generation: Generation) -> None:
    generation.stop.set()


# --- following --------------------------------------------------------------------------------


async def follow_here(generation: Generation, *, after: int = 0) -> AsyncIterator[Item]:
    """The answer's events from `after` characters on, live, until it ends."""
    yield "start", {**generation.started, "resumed_from": after}, None
    sent_text, sent_tools = max(0, after), 0
    while True:
        seen = generation.version
        ended = generation.terminal is not None  # read first: all before it is then present
        while sent_tools < len(generation.tool_events):
            name, data = generation.tool_events[sent_tools]
            sent_tools += 1
            yield name, data, None
        # Delta by delta as they came (a follower that lags behind gets them in a row).
        while (index := bisect_right(generation.ends, sent_text)) < len(generation.ends):
            end = generation.ends[index]
            yield "delta", {"content": generation.text[sent_text:end]}, end
            sent_text = end
        if ended and generation.terminal is not None:
            yield generation.terminal[0], generation.terminal[1], None
            return
        async with generation.changed:
            while generation.version == seen:
                await generation.changed.wait()


@dataclass(frozen=True)
class Shared:
    """A generation known from its row: running in another worker, or failed."""

    uuid: str
    conversation_id: int
    started: dict[str, Any]


def _row_state(*, session: Session, uuid: str) -> AnswerGeneration | None:
    row = session.scalars(select(AnswerGeneration).where(AnswerGeneration.uuid == uuid)).first()
    if row is not None:
        session.expunge(row)
    return row


def _stored_turn(*, session: Session, conversation_id: int, started: dict[str, Any]) -> dict:
    """The turn as stored once the row is gone: its answer, or a call waiting for approval."""
    question = started["user_message"]
    question_id = select(Message.id).where(Message.uuid == question["uuid"]).scalar_subquery()
    answer = session.scalars(  # the newest version: the one this generation stored
        select(Message)
        .where(Message.parent_id == question_id, Message.role == "assistant")
        .order_by(Message.position.desc())
        .limit(1)
    ).first()
    pending = session.scalar(
        select(ToolExecution.id).where(
            ToolExecution.question_uuid == question["uuid"], ToolExecution.status == "pending"
        )
    )
    conversation = session.get_one(Conversation, conversation_id)
    turn = ToolTurnPublic(
        conversation=ConversationPublic.model_validate(conversation),
        user_message=MessagePublic.model_validate(question),
        assistant_message=MessagePublic.model_validate(answer) if answer else None,
        pending=answer is None and pending is not None,
    )
    return turn.model_dump(mode="json")


async def follow_shared(shared: Shared, *, after: int = 0) -> AsyncIterator[Item]:
    """Follow an answer another worker writes, through its row."""
    yield "start", {**shared.started, "resumed_from": after}, None
    sent = max(0, after)
    while True:
        row = await run_quick_in_session(_row_state, uuid=shared.uuid)
        if row is None:  # stored (or left for approval): the turn as it is now
            done = await run_quick_in_session(
                _stored_turn, conversation_id=shared.conversation_id, started=shared.started
            )
            text = (done.get("assistant_message") or {}).get("content") or ""
            if len(text) > sent:
                yield "delta", {"content": text[sent:]}, len(text)
            yield "done", done, None
            return
        if len(row.content) > sent:
            yield "delta", {"content": row.content[sent:]}, len(row.content)
            sent = len(row.content)
        if row.status == "failed" or not _live(row):
            failed = Failed(row.error or LOST, row.error_status or 503)
            yield "error", _error(shared.started, failed), None
            return
        await asyncio.sleep(POLL_SECONDS)


def _find_shared(*, session: Session, owner: Owner, conversation_uuid: str) -> Shared | None:
    conversation = read_owned_conversation(session=session, owner=owner, uuid=conversation_uuid)
    row = session.scalars(
        select(AnswerGeneration).where(AnswerGeneration.conversation_id == conversation.id)
    ).first()
    if row is None:
        return None
    question = session.scalars(select(Message).where(Message.uuid == row.user_message_uuid)).first()
    if question is None:  # the history was cleared meanwhile
        return None
    started = {
        "conversation_uuid": conversation.uuid,
        "title": conversation.title,
        "user_message": MessagePublic.model_validate(question).model_dump(mode="json"),
        "model": row.model,
        "generation_uuid": row.uuid,
    }
    return Shared(uuid=row.uuid, conversation_id=conversation.id, started=started)


async def find(*, owner: Owner, conversation_uuid: str) -> Generation | Shared | None:
    """The conversation's answer being written (or failed last), for a follower or Stop.

    Ownership is checked first: another user's conversation is NotFound, as everywhere."""
    shared = await run_quick_in_session(
        _find_shared, owner=owner, conversation_uuid=conversation_uuid
    )
    if shared is None:
        return None
    return running_here(shared.conversation_id) or shared


def _ask_stop(*, session: Session, uuid: str) -> None:
    session.execute(
        update(AnswerGeneration).where(AnswerGeneration.uuid == uuid).values(stop_requested=True)
    )
    session.commit()


async def stop(found: Generation | Shared) -> None:
    if isinstance(found, Generation):
        request_stop(found)
    else:
        await run_quick_in_session(_ask_stop, uuid=found.uuid)


def follow(found: Generation | Shared, *, after: int = 0) -> AsyncIterator[Item]:
    if isinstance(found, Generation):
        return follow_here(found, after=after)
    return follow_shared(found, after=after)
