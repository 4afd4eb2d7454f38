"""A conversation as a tree of messages: the branch shown, versions, where a turn continues.

Every message follows its parent (a first question has none). Editing a question adds a
sibling of it, regenerating an answer a sibling of that answer; each set of siblings is one
message's versions, oldest first. The conversation remembers the message shown last
(`current_message_uuid`): the branch on screen is the path from the root to it, and it is the
path the model sees when the conversation continues.

Paths and subtrees are read with recursive CTEs (SQLite, deltadb and PostgreSQL all run
them), so no request loads a whole conversation to walk it in Python.
"""

from collections.abc import Iterable
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    bindparam,
    case,
    func,
    literal,
    select,
    update,
)

from backend.core.config import settings
from backend.models import Conversation, Message
from backend.services.errors import BadRequest, NotFound

_MESSAGES = Message.__table__
_CONVERSATIONS = Conversation.__table__
NOT_FOUND = "Message not found in this conversation"


class Node(NamedTuple):
    id: int
    uuid: str
    parent_id: int | None
    role: str


def _path_cte(limit: Any) -> Any:
    """Ids from `leaf` up to the root (depth 0 at the leaf), at most `limit` of them."""
    path = (
        select(_MESSAGES.c.id, _MESSAGES.c.parent_id, literal(0, Integer).label("depth"))
        .where(_MESSAGES.c.id == bindparam("leaf"))
        .cte("path", recursive=True)
    )
    parent = _MESSAGES.alias("parent")
    return path.union_all(
        select(parent.c.id, parent.c.parent_id, path.c.depth + 1).where(
            parent.c.id == path.c.parent_id, path.c.depth + 1 < limit
        )
    )


_PATH = _path_cte(bindparam("limit", type_=Integer))
# Statements on the per-message path are built once: building one costs more than running it.
_PATH_IDS = select(_PATH.c.id).order_by(_PATH.c.depth.desc())
_CONTEXT = (
    select(_MESSAGES.c.role, _MESSAGES.c.content)
    .join(_PATH, _PATH.c.id == _MESSAGES.c.id)
    .order_by(_PATH.c.depth.desc())
)
_NODE_BY_UUID = select(
    _MESSAGES.c.id, _MESSAGES.c.uuid, _MESSAGES.c.parent_id, _MESSAGES.c.role
).where(
    _MESSAGES.c.uuid == bindparam("uuid"),
    _MESSAGES.c.conversation_id == bindparam("conversation_id"),
)
_NODE_BY_ID = select(
    _MESSAGES.c.id, _MESSAGES.c.uuid, _MESSAGES.c.parent_id, _MESSAGES.c.role
).where(_MESSAGES.c.id == bindparam("id"))
_NEWEST = (
    select(_MESSAGES.c.id, _MESSAGES.c.uuid, _MESSAGES.c.parent_id, _MESSAGES.c.role)
    .where(_MESSAGES.c.conversation_id == bindparam("conversation_id"))
    .order_by(_MESSAGES.c.position.desc())
    .limit(1)
)
_HAS_CHILD = select(_MESSAGES.c.id).where(_MESSAGES.c.parent_id == bindparam("id")).limit(1)


def _subtree() -> Any:
    below = (
        select(_MESSAGES.c.id)
        .where(_MESSAGES.c.id == bindparam("top"))
        .cte("below", recursive=True)
    )
    child = _MESSAGES.alias("child")
    return below.union_all(select(child.c.id).where(child.c.parent_id == below.c.id))


_BELOW = _subtree()
_NEWEST_BELOW = (
    select(_MESSAGES.c.uuid)
    .join(_BELOW, _BELOW.c.id == _MESSAGES.c.id)
    .order_by(_MESSAGES.c.position.desc())
    .limit(1)
)
SHOW = (
    update(_CONVERSATIONS)
    .where(_CONVERSATIONS.c.id == bindparam("conversation_id"))
    # updated_at as it was (the column's onupdate would set it): switching versions must not
    # move the chat in the sidebar, whose order is that of the last message.
    .values(current_message_uuid=bindparam("shown"), updated_at=_CONVERSATIONS.c.updated_at)
)
# A finished answer is shown only if its question still is (the user may have switched away):
# as a value for an UPDATE of the conversation that also changes other columns...
SHOWN_INSTEAD = case(
    (_CONVERSATIONS.c.current_message_uuid == bindparam("instead_of"), bindparam("shown")),
    else_=_CONVERSATIONS.c.current_message_uuid,
)
# ...or as an UPDATE of its own, which leaves the row alone when the question is not shown.
_SHOW_INSTEAD = (
    update(_CONVERSATIONS)
    .where(
        _CONVERSATIONS.c.id == bindparam("conversation_id"),
        _CONVERSATIONS.c.current_message_uuid == bindparam("instead_of"),
    )
    .values(current_message_uuid=bindparam("shown"), updated_at=_CONVERSATIONS.c.updated_at)
)
# Where the next message goes: after everything the conversation holds by now (other turns
# may have landed meanwhile), computed by the INSERT itself.
NEXT_POSITION = (
    select(func.coalesce(func.max(_MESSAGES.c.position), -1) + 1)
    .where(_MESSAGES.c.conversation_id == bindparam("in_conversation"))
    .scalar_subquery()
)


def node(*, connection: Connection, conversation_id: int, uuid: str) -> Node:
    """A message of the conversation by its uuid; NotFound for any other."""
    found = connection.execute(
        _NODE_BY_UUID, {"uuid": uuid, "conversation_id": conversation_id}
    ).first()
    if found is None:
        raise NotFound(NOT_FOUND)
    return Node(*found)


def parent_of(*, connection: Connection, child: Node) -> Node | None:
    if child.parent_id is None:
        return None
    found = connection.execute(_NODE_BY_ID, {"id": child.parent_id}).first()
    return Node(*found) if found else None


def shown(*, connection: Connection, conversation_id: int, current_uuid: str | None) -> Node | None:
    """The message the conversation shows last: the remembered one, else the newest."""
    if current_uuid is not None:
        found = connection.execute(
            _NODE_BY_UUID, {"uuid": current_uuid, "conversation_id": conversation_id}
        ).first()
        if found is not None:
            return Node(*found)
    newest = connection.execute(_NEWEST, {"conversation_id": conversation_id}).first()
    return Node(*newest) if newest else None


def path_ids(*, connection: Connection, leaf_id: int, limit: int = 1_000_000) -> list[int]:
    """The ids from the root to `leaf_id`, root first (the last `limit` of them)."""
    return list(connection.scalars(_PATH_IDS, {"leaf": leaf_id, "limit": limit}))


def read_context(*, connection: Connection, leaf_id: int | None) -> list[dict[str, Any]]:
    """What the model sees before a new message: the path to `leaf_id`, oldest first, the
    last LLM_CONTEXT_MESSAGES of it."""
    if leaf_id is None:
        return []
    values = {"leaf": leaf_id, "limit": settings.LLM_CONTEXT_MESSAGES}
    return [
        {"role": role, "content": content}
        for role, content in connection.execute(_CONTEXT, values).all()
    ]


def has_children(*, connection: Connection, message_id: int) -> bool:
    return connection.scalar(_HAS_CHILD, {"id": message_id}) is not None


def newest_leaf_below(*, connection: Connection, message_id: int) -> str:
    """The newest message in the subtree of `message_id` (itself when it has none below):
    where a branch opens when the user switches to it."""
    found = connection.scalar(_NEWEST_BELOW, {"top": message_id})
    assert found is not None  # the subtree holds the message itself
    return str(found)


def versions(
    *, connection: Connection, conversation_id: int, parent_ids: Iterable[int | None]
) -> dict[int | None, list[str]]:
    """For each parent, the uuids of its children (one message's versions), oldest first."""
    wanted = set(parent_ids)
    ids = [p for p in wanted if p is not None]
    condition: ColumnElement[bool] = _MESSAGES.c.parent_id.in_(ids)
    if None in wanted:
        condition = condition | _MESSAGES.c.parent_id.is_(None)
    rows = connection.execute(
        select(_MESSAGES.c.parent_id, _MESSAGES.c.uuid)
        .where(_MESSAGES.c.conversation_id == conversation_id, condition)
        .order_by(_MESSAGES.c.position)
    )
    found: dict[int | None, list[str]] = {p: [] for p in wanted}
    for parent_id, uuid in rows:
        found[parent_id].append(uuid)
    return found


def show(*, connection: Connection, conversation_id: int, uuid: str | None) -> None:
    connection.execute(SHOW, {"conversation_id": conversation_id, "shown": uuid})


def show_instead(
    *, connection: Connection, conversation_id: int, shown_uuid: str | None, instead_of: str
) -> None:
    values = {"conversation_id": conversation_id, "shown": shown_uuid, "instead_of": instead_of}
    connection.execute(_SHOW_INSTEAD, values)


def parent_for_question(
    *,
    connection: Connection,
    conversation_id: int,
    current_uuid: str | None,
    after: str | None,
    edits: str | None,
) -> Node | None:
    """What a new question follows: the message named by `after`, the parent of the question
    it `edits` (a new version of that question), or else the message shown last."""
    if edits is not None:
        edited = node(connection=connection, conversation_id=conversation_id, uuid=edits)
        if edited.role != "user":
            raise BadRequest("Only a question can be edited; regenerate an answer instead")
        return parent_of(connection=connection, child=edited)
    if after is not None:
        return node(connection=connection, conversation_id=conversation_id, uuid=after)
    return shown(connection=connection, conversation_id=conversation_id, current_uuid=current_uuid)


def question_to_answer(
    *, connection: Connection, conversation_id: int, current_uuid: str | None, target: str | None
) -> Node:
    """The question a regeneration answers: that of the answer named (or the question named),
    or else that of the message shown last."""
    if target is not None:
        found: Node | None = node(
            connection=connection, conversation_id=conversation_id, uuid=target
        )
    else:
        found = shown(
            connection=connection, conversation_id=conversation_id, current_uuid=current_uuid
        )
    if found is not None and found.role == "assistant":
        found = parent_of(connection=connection, child=found)
    if found is None or found.role != "user":
        raise BadRequest("There is no question to answer again in this conversation")
    return found


def linear_parents(count: int) -> list[int | None]:
    """Parents (as indexes) of a flat history: each message follows the one before it."""
    return [None, *range(count - 1)][:count]


def parents_by_uuid(uuids: list[str | None], parents: list[str | None]) -> list[int | None]:
    """Parents as indexes into the same list, from uuids (an export or a snapshot).

    A parent that is missing or comes later (not a tree in creation order) makes the message
    follow the one before it instead, so every history still imports as a tree."""
    index = {uuid: i for i, uuid in enumerate(uuids) if uuid is not None}
    linked: list[int | None] = []
    for i, parent in enumerate(parents):
        at = index.get(parent) if parent is not None else None
        if parent is None:
            linked.append(None)
        else:
            linked.append(at if at is not None and at < i else (i - 1 if i else None))
    return linked
