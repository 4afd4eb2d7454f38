"""Per-user storage limits: how many conversations a user keeps and how many bytes of text.

The limits live beside the message rates in `usage_limits` (a user's own value, else the
default row's, else the server's built-in default from the settings). What is used is counted
from the rows themselves, so deleting conversations frees room and no counter can drift; on the
per-question path a recent count is reused while far from the limit (see `_estimate`). Stored
bytes are the UTF-8 size of message contents and titles.
"""

import time
from collections import OrderedDict
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.functions import GenericFunction
from sqlalchemy.types import BigInteger

from backend.core.config import settings
from backend.models import Conversation, Message
from backend.services.errors import Forbidden


class utf8_bytes(GenericFunction[int]):  # noqa: N801 - SQL function names are lower case
    """The UTF-8 size of a text value, in bytes, on every supported database."""

    type = BigInteger()
    inherit_cache = True


@compiles(utf8_bytes)
def _utf8_bytes_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    # SQLite's (and the deltadb replica's) length() counts characters; as a blob, bytes.
    return f"length(CAST({compiler.process(element.clauses, **kw)} AS BLOB))"


@compiles(utf8_bytes, "postgresql")
def _utf8_bytes_postgresql(element: Any, compiler: Any, **kw: Any) -> str:
    return f"octet_length({compiler.process(element.clauses, **kw)})"


def effective(limits: dict[str, int | None]) -> tuple[int, int]:
    """(max conversations, max stored bytes) from `quotas.effective_limits`' answer."""
    return (
        limits.get("max_conversations") or settings.MAX_CONVERSATIONS_PER_USER,
        limits.get("max_stored_bytes") or settings.MAX_STORED_BYTES_PER_USER,
    )


_MINE: BindParameter[int] = bindparam("user_id")
# Built once: on the per-question path, building a statement costs more than running it.
_CONVERSATION_COUNT = (
    select(func.count()).select_from(Conversation).where(Conversation.user_id == _MINE)
)
_STORED_BYTES = select(
    select(func.coalesce(func.sum(utf8_bytes(Message.content)), 0))
    .join(Conversation, Conversation.id == Message.conversation_id)
    .where(Conversation.user_id == _MINE)
    .scalar_subquery()
    + select(func.coalesce(func.sum(utf8_bytes(Conversation.title)), 0))
    .where(Conversation.user_id == _MINE)
    .scalar_subquery()
)


def conversation_count(*, session: Session, user_id: int) -> int:
    return session.connection().execute(_CONVERSATION_COUNT, {"user_id": user_id}).scalar() or 0


def stored_bytes(*, session: Session, user_id: int) -> int:
    return int(session.connection().execute(_STORED_BYTES, {"user_id": user_id}).scalar() or 0)


def _size(amount: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if amount >= scale:
            return f"{amount / scale:.1f} {unit}"
    return f"{amount} bytes"


def ensure_room(
    *,
    session: Session,
    user_id: int,
    limits: dict[str, int | None],
    new_conversations: int = 0,
    new_bytes: int = 0,
) -> None:
    """Refuse (403 with a sentence) what would take the user past a storage limit."""
    max_conversations, max_bytes = effective(limits)
    if new_conversations:
        have = conversation_count(session=session, user_id=user_id)
        if have + new_conversations > max_conversations:
            raise Forbidden(
                f"Conversation limit reached: {have} of at most {max_conversations} "
                f"conversations, and this would add {new_conversations}. Delete some, or ask "
                "an administrator for a higher limit."
            )
    if new_bytes:
        used = _estimate(session=session, user_id=user_id, max_bytes=max_bytes, adding=new_bytes)
        if used + new_bytes > max_bytes:
            raise Forbidden(
                f"Storage limit reached: {_size(used)} of {_size(max_bytes)} used, and this "
                f"would add {_size(new_bytes)}. Delete conversations, or ask an administrator "
                "for a higher limit."
            )


# Recently counted stored bytes per user (this process): counting sums every message of the
# user (~0.35 us a message here: 1.4 ms for 4,000), too much for each question. A question far
# from the limit adds its size to the last count instead; near the limit (past RECOUNT_SHARE of
# it) or once the count is RECOUNT_SECONDS old, it counts again (answers stored meanwhile
# are in that count). So a refusal always rests on an
# exact count, and what other processes stored in between can pass the limit only by what they
# stored in RECOUNT_SECONDS.
RECOUNT_SHARE, RECOUNT_SECONDS, REMEMBERED_USERS = 0.9, 60.0, 10_000
_counted: OrderedDict[int, tuple[float, int]] = OrderedDict()


def _estimate(*, session: Session, user_id: int, max_bytes: int, adding: int) -> int:
    now = time.monotonic()
    known = _counted.get(user_id)
    if (known is not None and now - known[0] < RECOUNT_SECONDS
            and known[1] + adding <= max_bytes * RECOUNT_SHARE):
        _counted[user_id] = (known[0], known[1] + adding)
        return known[1]
    used = stored_bytes(session=session, user_id=user_id)
    _counted[user_id] = (now, used + adding)
    _counted.move_to_end(user_id)
    while len(_counted) > REMEMBERED_USERS:
        _counted.popitem(last=False)
    return used


def forget_counts() -> None:
    _counted.clear()


def text_bytes(*texts: str | None) -> int:
    return sum(len(text.encode("utf-8", "surrogatepass")) for text in texts if text)
