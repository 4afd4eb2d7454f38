"""Zero-access conversations: a user's content sealed with a key the server holds only while
one of the user's sessions is in use (docs/PRIVACY.md).

The key's life: made when the mode is turned on (wrapped by the password and by a recovery
key shown once); unwrapped at each sign-in and kept for that session wrapped under a key
derived from the session's token; opened again from that on each request of the session
(`enter_request`), so the request and the tasks it starts can seal and open content
(backend/core/sealing.py); gone with the session. Turning the mode on or off converts the
user's existing content in bounded batches, each one transaction that also records where it
stands, so a conversion killed half-way resumes where it stopped at the user's next request.
"""

import asyncio
import base64
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Row,
    Table,
    Text,
    bindparam,
    delete,
    select,
    type_coerce,
    update,
)
from sqlalchemy.orm import Session

from backend.core import content_keys
from backend.core.config import settings
from backend.core.db import run_in_session, run_quick_in_session
from backend.core.password_pool import Admission, password_pool
from backend.core.sealing import SealedText, Sealing, enter, open_for_read, sealing
from backend.core.security import hash_token, verify_password
from backend.models import (
    AnswerGeneration,
    AuthSession,
    Conversation,
    ConversationSnapshot,
    Message,
    SearchTerm,
    SessionContentKey,
    ToolExecution,
    User,
    UserContentKey,
)
from backend.schemas import ZeroAccessStatus
from backend.services import auth_sessions, search_index, server_settings, throttle
from backend.services.auth_sessions import ContentKeyRow
from backend.services.errors import BadRequest, Conflict

logger = logging.getLogger(__name__)

SEALING, ON, OPENING = "sealing", "on", "opening"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


def material(*, session: Session, user_id: int) -> UserContentKey | None:
    return session.scalars(select(UserContentKey).where(UserContentKey.user_id == user_id)).first()


def _material_detached(*, session: Session, user_id: int) -> UserContentKey | None:
    row = material(session=session, user_id=user_id)
    if row is not None:
        session.expunge(row)
    return row


# --- the key held by a session --------------------------------------------------------------


def _session_id(*, session: Session, token: str) -> int | None:
    return session.scalar(select(AuthSession.id).where(AuthSession.token_hash == hash_token(token)))


def keep_for_session(*, session: Session, token: str, user_id: int, content_key: bytes) -> None:
    """The session (of `token`) holds the key from now on, wrapped under its token."""
    session_id = _session_id(session=session, token=token)
    if session_id is None:
        return
    session.execute(delete(SessionContentKey).where(SessionContentKey.session_id == session_id))
    wrapped = content_keys.wrap_for_session(token, content_key)
    session.add(
        SessionContentKey(session_id=session_id, user_id=user_id, wrapped_key=_b64(wrapped))
    )
    session.commit()


def _sealing_of(user_id: int, token: str, row: ContentKeyRow) -> Sealing | None:
    state, key_id, wrapped = row
    if state is None:
        return None
    key = None
    if wrapped is not None:
        try:
            key = content_keys.unwrap_for_session(token, _unb64(wrapped))
        except content_keys.WrongKey:
            key = None
        if key is not None and content_keys.key_id(key) != key_id:
            key = None  # a key from before a reset the recovery key has not undone
    return Sealing(user_id=user_id, key=key, seal_writes=state != OPENING)


def session_for_token(*, session: Session, token: str) -> tuple[User, ContentKeyRow, bool] | None:
    """The session's user, their mode and wrapped key (one query), and whether the server
    requires the mode of a user who has not turned it on (cached: no query most of the time)."""
    found = auth_sessions.user_and_content_key_for_token(session=session, token=token)
    if found is None:
        return None
    user, row = found
    awaited = row[0] is None and server_settings.zero_access_required(session=session)
    return user, row, awaited


def enter_request(*, user: User, token: str, row: ContentKeyRow, awaited: bool = False) -> None:
    """Set the caller's sealing for this request (and what it starts); resume a conversion.
    `row` came with the session's own lookup (session_for_token); `awaited`: the server
    requires the mode and this user has not turned it on, so no content may be written."""
    state = _sealing_of(user.id, token, row)
    enter(state, awaited=awaited)
    if state is not None and state.key is not None and row[0] != ON:
        ensure_converting(user_id=user.id, content_key=state.key)


# --- sign-in, password changes --------------------------------------------------------------


@dataclass(frozen=True)
class Unlocked:
    """What a sign-in unwrapped: the key (None: locked after a reset) and, when the mode was
    turned on at this sign-in because the admin requires it, the recovery key to show once."""

    content_key: bytes | None
    recovery_key: str | None = None
    converting: bool = False


def _new_material(*, user_id: int, password: str) -> tuple[UserContentKey, bytes, str]:
    content_key, recovery_key, salt = (
        content_keys.new_content_key(),
        content_keys.new_recovery_key(),
        content_keys.new_salt(),
    )
    derived = content_keys.password_key(password, salt)
    row = UserContentKey(
        user_id=user_id,
        key_id=content_keys.key_id(content_key),
        password_salt=_b64(salt),
        password_wrapped=_b64(content_keys.wrap_with_password_key(derived, content_key)),
        recovery_wrapped=_b64(content_keys.wrap_with_recovery_key(recovery_key, content_key)),
        state=SEALING,
        cursor="",
    )
    return row, content_key, recovery_key


def _open_with_password(row: UserContentKey, password: str) -> bytes | None:
    derived = content_keys.password_key(password, _unb64(row.password_salt))
    try:
        return content_keys.unwrap_with_password_key(derived, _unb64(row.password_wrapped))
    except content_keys.WrongKey:  # the password was reset by an admin since
        return None


def _store_material(
    *, session: Session, row: UserContentKey, keep_token: str | None = None
) -> None:
    """With `keep_token` (turned on in Settings): the user's other sessions end, as they could
    no longer read or write their content (they sign in again, which unwraps the key)."""
    if material(session=session, user_id=row.user_id) is not None:
        raise Conflict("Zero-access is already on (or being turned off); reload Settings.")
    session.add(row)
    if keep_token is not None:
        auth_sessions.revoke_user_sessions(
            session=session, user_id=row.user_id, keep_token=keep_token
        )
    session.commit()


async def unlock_at_sign_in(*, user: User, password: str, hashing: Admission) -> Unlocked | None:
    """After a correct password: the user's content key (None when the mode is off)."""
    row = await run_quick_in_session(_material_detached, user_id=user.id)
    if row is None:
        if not await run_quick_in_session(server_settings.zero_access_required):
            return None
        new, made, recovery = await hashing.run(_new_material_for, user.id, password)
        await run_in_session(_store_material, row=new)
        return Unlocked(content_key=made, recovery_key=recovery, converting=True)
    key: bytes | None = await hashing.run(_open_with_password, row, password)
    return Unlocked(content_key=key, converting=row.state != ON)


def _new_material_for(user_id: int, password: str) -> tuple[UserContentKey, bytes, str]:
    return _new_material(user_id=user_id, password=password)


async def after_sign_in(*, unlocked: Unlocked | None, token: str, user_id: int) -> None:
    """The new session holds the key; a conversion left unfinished goes on."""
    if unlocked is None or unlocked.content_key is None:
        return
    key = unlocked.content_key
    await run_in_session(keep_for_session, token=token, user_id=user_id, content_key=key)
    if unlocked.converting:
        ensure_converting(user_id=user_id, content_key=key)


@dataclass(frozen=True)
class PasswordWrap:
    salt: str
    wrapped: str


async def rewrap_for_password(
    *, user: User, current_password: str, new_password: str, hashing: Admission, held: bytes | None
) -> PasswordWrap | None:
    """The key wrapped under the new password (None: the mode is off, or the key is not
    available to rewrap: locked after a reset, when only the recovery key opens it)."""
    row = await run_quick_in_session(_material_detached, user_id=user.id)
    if row is None:
        return None
    key = (
        held if held is not None else await hashing.run(_open_with_password, row, current_password)
    )
    if key is None or content_keys.key_id(key) != row.key_id:
        return None
    salt = content_keys.new_salt()
    derived = await hashing.run(content_keys.password_key, new_password, salt)
    return PasswordWrap(_b64(salt), _b64(content_keys.wrap_with_password_key(derived, key)))


def store_password_wrap(*, session: Session, user_id: int, wrap: PasswordWrap | None) -> None:
    """In the password change's own transaction (the caller commits)."""
    if wrap is None:
        return
    session.execute(
        update(UserContentKey)
        .where(UserContentKey.user_id == user_id)
        .values(password_salt=wrap.salt, password_wrapped=wrap.wrapped)
    )


# --- turning the mode on and off, restoring with the recovery key -----------------------------


async def _check_password(*, user: User, password: str, address: str, hashing: Admission) -> None:
    """Like a sign-in: a wrong password counts as a failed one (throttled)."""
    keys = throttle.keys_for(account=throttle.account_name(user=user, login=""), address=address)
    await run_in_session(throttle.refuse_if_waiting, keys=keys)
    hashed = await run_quick_in_session(_hashed_password, user_id=user.id)
    if not await hashing.run(verify_password, password, hashed):
        await run_in_session(throttle.record_failure, keys=keys)
        raise BadRequest("The password is not correct.")


def _hashed_password(*, session: Session, user_id: int) -> str | None:
    return session.scalar(select(User.hashed_password).where(User.id == user_id))


async def turn_on(*, user: User, token: str, password: str, address: str) -> str:
    """Make the key, keep it for this session, start sealing; the recovery key (shown once)."""
    with password_pool.admit() as hashing:
        await _check_password(user=user, password=password, address=address, hashing=hashing)
        row, key, recovery = await hashing.run(_new_material_for, user.id, password)
    await run_in_session(_store_material, row=row, keep_token=token)
    await run_in_session(keep_for_session, token=token, user_id=user.id, content_key=key)
    ensure_converting(user_id=user.id, content_key=key)
    return recovery


def _start_opening(*, session: Session, user_id: int) -> None:
    row = material(session=session, user_id=user_id)
    if row is None or row.state == OPENING:
        raise Conflict("Zero-access is already off (or being turned off).")
    row.state, row.cursor = OPENING, ""
    session.commit()


async def turn_off(*, user: User, password: str, address: str, held: bytes | None) -> None:
    """Open every sealed value again (needs the key: this session must hold it)."""
    if held is None:
        raise Conflict("This session does not hold your key: restore it with your recovery key.")
    with password_pool.admit() as hashing:
        await _check_password(user=user, password=password, address=address, hashing=hashing)
    if await run_quick_in_session(server_settings.zero_access_required):
        raise BadRequest("The administrator requires zero-access conversations on this server.")
    await run_in_session(_start_opening, user_id=user.id)
    ensure_converting(user_id=user.id, content_key=held)


async def restore(
    *, user: User, token: str, recovery_key: str, password: str, address: str
) -> None:
    """After an admin's password reset: the recovery key opens the content key, which is then
    wrapped under the current password and held by this session."""
    row = await run_quick_in_session(_material_detached, user_id=user.id)
    if row is None:
        raise BadRequest("Zero-access is not on for this account.")
    try:
        key = content_keys.unwrap_with_recovery_key(recovery_key, _unb64(row.recovery_wrapped))
    except content_keys.WrongKey:
        raise BadRequest("That recovery key does not open this account's content.") from None
    with password_pool.admit() as hashing:
        await _check_password(user=user, password=password, address=address, hashing=hashing)
        salt = content_keys.new_salt()
        derived = await hashing.run(content_keys.password_key, password, salt)
    wrap = PasswordWrap(_b64(salt), _b64(content_keys.wrap_with_password_key(derived, key)))
    await run_in_session(_store_restored, user_id=user.id, wrap=wrap)
    await run_in_session(keep_for_session, token=token, user_id=user.id, content_key=key)
    if row.state != ON:
        ensure_converting(user_id=user.id, content_key=key)


def _store_restored(*, session: Session, user_id: int, wrap: PasswordWrap) -> None:
    store_password_wrap(session=session, user_id=user_id, wrap=wrap)
    session.commit()


def status(*, session: Session, user_id: int, held: bool) -> ZeroAccessStatus:
    row = material(session=session, user_id=user_id)
    return ZeroAccessStatus(
        state="off" if row is None else row.state,  # type: ignore[arg-type]
        session_holds_key=held,
        required=server_settings.zero_access_required(session=session),
        converting=row is not None and row.state != ON,
        cursor=row.cursor if row is not None else "",
    )


def zero_access_user_ids(*, session: Session, user_ids: list[int]) -> set[int]:
    """Which of these users have the mode on (for the admin's warning before a reset)."""
    if not user_ids:
        return set()
    found = select(UserContentKey.user_id).where(UserContentKey.user_id.in_(user_ids))
    return set(session.scalars(found))


# --- converting existing content --------------------------------------------------------------


@dataclass(frozen=True)
class _Part:
    """A table holding a user's content: its sealed columns and how ownership is reached."""

    name: str
    table: Table
    columns: tuple[str, ...]


_PARTS = (
    _Part("conversations", Conversation.__table__, ("title",)),
    _Part("messages", Message.__table__, ("content",)),
    _Part("snapshots", ConversationSnapshot.__table__, ("name", "data")),
    _Part("tools", ToolExecution.__table__, ("arguments", "result", "reason")),
    _Part("generations", AnswerGeneration.__table__, ("content",)),
)


def _owned(part: _Part, user_id: int) -> ColumnElement[bool]:
    if part.name == "conversations":
        return part.table.c.user_id == user_id
    mine = select(Conversation.id).where(Conversation.user_id == user_id)
    return part.table.c.conversation_id.in_(mine.scalar_subquery())


def _position(cursor: str) -> tuple[int, int]:
    name, _, last = cursor.partition(":")
    names = [part.name for part in _PARTS]
    return (names.index(name), int(last or 0)) if name in names else (0, 0)


def _convert_batch(*, session: Session, user_id: int, limit: int) -> bool:
    """Convert the next `limit` rows (one transaction, with the cursor); True when done."""
    row = material(session=session, user_id=user_id)
    if row is None or row.state == ON:
        return True
    sealing_now = row.state == SEALING
    index, last = _position(row.cursor)
    part = _PARTS[index]
    raw = [type_coerce(part.table.c[name], Text).label(name) for name in part.columns]
    found = session.execute(
        select(part.table.c.id, *raw)
        .where(_owned(part, user_id), part.table.c.id > last)
        .order_by(part.table.c.id)
        .limit(limit)
    ).all()
    converted = (_converted(found_row, part, sealing_now) for found_row in found)
    changes = [change for change in converted if change is not None]
    if changes:
        statement = (
            update(part.table)
            .where(part.table.c.id == bindparam("row_id"))
            .values({name: bindparam(f"new_{name}", type_=SealedText()) for name in part.columns})
        )
        session.execute(statement, changes)
    if part.name == "messages":
        _follow_in_search_index(
            session=session, user_id=user_id, found=found, sealing_now=sealing_now
        )
    done = _advance(row, found=found, index=index, limit=limit, part=part)
    if done:
        _finish(session=session, row=row)
    session.commit()
    return done


def _follow_in_search_index(
    *, session: Session, user_id: int, found: Sequence[Row[Any]], sealing_now: bool
) -> None:
    """Sealed messages leave the word index (their words would stay readable there); opened
    ones enter it again, so search finds them once the mode is off."""
    ids = [row.id for row in found]
    if not ids:
        return
    session.execute(delete(SearchTerm).where(SearchTerm.message_id.in_(ids)))
    if sealing_now:
        return
    connection = session.connection()
    rows = session.execute(
        select(Message.id, Message.conversation_id, Message.content).where(Message.id.in_(ids))
    )
    for message_id, conversation_id, content in rows:
        search_index.index_message(
            connection=connection,
            user_id=user_id,
            conversation_id=conversation_id,
            message_id=message_id,
            content=content,
        )


def _converted(found_row: Row[Any], part: _Part, sealing_now: bool) -> dict[str, object] | None:
    """The row's new values (through SealedText: sealed or plain), None if nothing changes."""
    values: dict[str, object] = {"row_id": found_row.id}
    change = False
    for name in part.columns:
        value = getattr(found_row, name)
        if value is not None and content_keys.is_sealed(value) != sealing_now:
            change = True
        values[f"new_{name}"] = None if value is None else _plain(value)
    return values if change else None


def _plain(stored: str) -> str:
    return open_for_read(stored)


def _advance(
    row: UserContentKey, *, found: Sequence[Any], index: int, limit: int, part: _Part
) -> bool:
    if len(found) == limit:
        row.cursor = f"{part.name}:{found[-1].id}"
        return False
    if index + 1 < len(_PARTS):
        row.cursor = f"{_PARTS[index + 1].name}:0"
        return False
    return True


def _finish(*, session: Session, row: UserContentKey) -> None:
    if row.state == SEALING:
        row.state, row.cursor = ON, ""
        return
    # Off: the key is no longer needed by anything, so nothing of it stays.
    session.execute(delete(SessionContentKey).where(SessionContentKey.user_id == row.user_id))
    session.delete(row)


_converting: dict[int, asyncio.Task[None]] = {}


def ensure_converting(*, user_id: int, content_key: bytes) -> None:
    """Run (or go on with) the user's conversion in this process, unless it already runs."""
    running = _converting.get(user_id)
    if running is not None and not running.done():
        return
    task = asyncio.get_running_loop().create_task(
        _convert(user_id=user_id, content_key=content_key), name=f"zero-access-{user_id}"
    )
    _converting[user_id] = task


async def _convert(*, user_id: int, content_key: bytes) -> None:
    pause = settings.ZERO_ACCESS_BATCH_PAUSE_MS / 1000
    try:
        while True:
            state = await run_quick_in_session(_material_detached, user_id=user_id)
            if state is None or state.state == ON:
                return
            held = Sealing(user_id=user_id, key=content_key, seal_writes=state.state == SEALING)
            with sealing(held):
                done = await run_in_session(
                    _convert_batch, user_id=user_id, limit=settings.ZERO_ACCESS_BATCH_ROWS
                )
            if done:
                logger.info("zero_access_converted", extra={"user_id": user_id})
                return
            await asyncio.sleep(pause)
    except Exception:  # resumed at the user's next request
        logger.exception("zero_access_conversion_failed", extra={"user_id": user_id})
    finally:
        _converting.pop(user_id, None)


async def wait_for_conversion(user_id: int) -> None:
    """For tests and shutdown: until this process's conversion of the user has stopped."""
    task = _converting.get(user_id)
    if task is not None:
        await asyncio.shield(task)
