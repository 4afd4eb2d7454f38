"""The search index: every stored message's words as rows of `search_terms`, kept on write.

`index_message` is the one function called wherever message text is stored (a question, an
answer, an import, a restored snapshot): it writes one row per distinct word of the text with
the owner's id, so a search reads a few index ranges instead of every message. Messages added
through the ORM are indexed by the `after_flush` hook below; the Core INSERTs of the chat's
per-message path call `index_message` themselves. A deleted message (or conversation, or user)
takes its rows with it (`ON DELETE CASCADE`); `reindex_message` is for text changed in place.

On the encrypted store every row is its own sealed entity, so the index reveals nothing the
messages do not: which words a message holds is as sealed as the message itself.
"""

from typing import Any

from sqlalchemy import Connection, delete, event, insert, select
from sqlalchemy import inspect as orm_inspect
from sqlalchemy.orm import Session

from backend.core import sealing
from backend.models import Conversation, Message, SearchTerm
from backend.services import words

# A pasted book would otherwise add tens of thousands of rows: its commonest words are kept.
MAX_TERMS_PER_MESSAGE = 2000

_TERMS = SearchTerm.__table__
_INSERT = insert(_TERMS)


def index_rows(
    *, user_id: int, message_id: int, conversation_id: int, content: str
) -> list[dict[str, Any]]:
    counted, length = words.term_counts(content)
    return [
        {
            "user_id": user_id,
            "message_id": message_id,
            "conversation_id": conversation_id,
            "term": term,
            "occurrences": occurrences,
            "words": length,
            "weight": words.weight(occurrences, length),
        }
        for term, occurrences in counted.most_common(MAX_TERMS_PER_MESSAGE)
    ]


def index_message(
    *,
    connection: Connection,
    user_id: int | None,
    conversation_id: int,
    message_id: int,
    content: str,
) -> None:
    """Make a newly stored message findable by its owner (anonymous quick chats are not).

    A zero-access owner's text is sealed as it is written: its words are not indexed (they
    would be readable with the master key); their search opens their own text instead."""
    state = sealing.current()
    if user_id is None or (state is not None and state.seal_writes):
        return
    rows = index_rows(
        user_id=user_id, message_id=message_id, conversation_id=conversation_id, content=content
    )
    if rows:
        connection.execute(_INSERT, rows)


def reindex_message(
    *,
    connection: Connection,
    user_id: int | None,
    conversation_id: int,
    message_id: int,
    content: str,
) -> None:
    """A message whose text changed: its old words go, its new ones come."""
    connection.execute(delete(_TERMS).where(_TERMS.c.message_id == message_id))
    index_message(
        connection=connection,
        user_id=user_id,
        conversation_id=conversation_id,
        message_id=message_id,
        content=content,
    )


def _owners(connection: Connection, conversation_ids: set[int]) -> dict[int, int | None]:
    statement = select(Conversation.id, Conversation.user_id).where(
        Conversation.id.in_(conversation_ids)
    )
    return {row.id: row.user_id for row in connection.execute(statement)}


def _text_changed(message: Message) -> bool:
    return orm_inspect(message).attrs.content.history.has_changes()


@event.listens_for(Session, "after_flush")
def _index_flushed_messages(session: Session, _flush_context: Any) -> None:
    added = [row for row in session.new if isinstance(row, Message)]
    changed = [row for row in session.dirty if isinstance(row, Message) and _text_changed(row)]
    if not added and not changed:
        return
    connection = session.connection()
    owners = _owners(connection, {m.conversation_id for m in added + changed})
    for message, index in [(m, index_message) for m in added] + [
        (m, reindex_message) for m in changed
    ]:
        index(
            connection=connection,
            user_id=owners.get(message.conversation_id),
            conversation_id=message.conversation_id,
            message_id=message.id,
            content=message.content,
        )
