"""Named point-in-time snapshots of a conversation: take, list, read, delete, restore.

A snapshot stores the conversation's settings and every message (with its answer metadata)
as one JSON document. Restoring replaces the conversation's messages with the snapshot's, or
builds a new conversation from it; restored rows are not counted as new usage.
"""

import json
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from backend.models import (
    Conversation,
    ConversationSnapshot,
    Message,
    Response,
    new_uuid,
    utcnow,
)
from backend.schemas import SnapshotDetail, SnapshotPublic, SnapshotsPublic
from backend.services import message_tree
from backend.services.conversations import Owner, delete_messages, get_owned_conversation
from backend.services.errors import NotFound
from backend.services.usage import SKIP_USAGE

RESPONSE_FIELDS = (
    "model_used",
    "tokens_prompt",
    "tokens_completion",
    "tokens_total",
    "completion_time_ms",
    "finish_reason",
)


def message_state(message: Message, *, parent: int | None) -> dict[str, Any]:
    """One message as stored in a snapshot; `parent` is its parent's index in the list."""
    response = message.response
    return {
        "uuid": message.uuid,
        "parent": parent,
        "role": message.role,
        "content": message.content,
        "model": message.model,
        "position": message.position,
        "created_at": message.created_at.isoformat(),
        "response": {f: getattr(response, f) for f in RESPONSE_FIELDS} if response else None,
    }


def message_from_state(
    state: dict[str, Any], *, conversation_id: int, position: int, parent: Message | None
) -> Message:
    response = state.get("response")
    return Message(
        uuid=new_uuid(),
        conversation_id=conversation_id,
        parent=parent,
        role=state["role"],
        content=state["content"],
        model=state.get("model"),
        position=position,
        created_at=datetime.fromisoformat(state["created_at"])
        if state.get("created_at")
        else utcnow(),
        response=Response(**{f: response.get(f) for f in RESPONSE_FIELDS}) if response else None,
    )


def _messages(*, session: Session, conversation_id: int) -> list[Message]:
    statement = (
        select(Message)
        .where(Message.conversation_id == conversation_id)
        .options(selectinload(Message.response))
        .order_by(Message.position)
    )
    return list(session.scalars(statement))


def _public(snapshot: ConversationSnapshot, conversation_uuid: str) -> SnapshotPublic:
    return SnapshotPublic(
        uuid=snapshot.uuid,
        name=snapshot.name,
        conversation_uuid=conversation_uuid,
        message_count=snapshot.message_count,
        created_at=snapshot.created_at,
    )


def take_snapshot(
    *, session: Session, owner: Owner, conversation_uuid: str, name: str
) -> SnapshotPublic:
    conversation = get_owned_conversation(session=session, owner=owner, uuid=conversation_uuid)
    messages = _messages(session=session, conversation_id=conversation.id)
    index = {m.id: i for i, m in enumerate(messages)}
    state = {
        "title": conversation.title,
        "default_model": conversation.default_model,
        # Every branch, in creation order; the one shown is remembered too.
        "messages": [
            message_state(m, parent=None if m.parent_id is None else index.get(m.parent_id))
            for m in messages
        ],
        "current": next(
            (i for i, m in enumerate(messages) if m.uuid == conversation.current_message_uuid),
            None,
        ),
    }
    snapshot = ConversationSnapshot(
        conversation_id=conversation.id,
        name=name,
        message_count=len(messages),
        data=json.dumps(state),
    )
    session.add(snapshot)
    session.commit()
    return _public(snapshot, conversation.uuid)


def list_snapshots(*, session: Session, owner: Owner, conversation_uuid: str) -> SnapshotsPublic:
    conversation = get_owned_conversation(session=session, owner=owner, uuid=conversation_uuid)
    where = ConversationSnapshot.conversation_id == conversation.id
    found = session.scalars(
        select(ConversationSnapshot)
        .where(where)
        .order_by(ConversationSnapshot.created_at.desc(), ConversationSnapshot.id.desc())
    ).all()
    count = session.scalar(select(func.count()).select_from(ConversationSnapshot).where(where))
    return SnapshotsPublic(data=[_public(s, conversation.uuid) for s in found], count=count or 0)


def _owned_snapshot(
    *, session: Session, owner: Owner, conversation_uuid: str, snapshot_uuid: str
) -> tuple[Conversation, ConversationSnapshot]:
    conversation = get_owned_conversation(session=session, owner=owner, uuid=conversation_uuid)
    snapshot = session.scalars(
        select(ConversationSnapshot).where(ConversationSnapshot.uuid == snapshot_uuid)
    ).first()
    if snapshot is None or snapshot.conversation_id != conversation.id:
        raise NotFound("Snapshot not found")
    return conversation, snapshot


def read_snapshot(
    *, session: Session, owner: Owner, conversation_uuid: str, snapshot_uuid: str
) -> SnapshotDetail:
    conversation, snapshot = _owned_snapshot(
        session=session,
        owner=owner,
        conversation_uuid=conversation_uuid,
        snapshot_uuid=snapshot_uuid,
    )
    state = json.loads(snapshot.data)
    return SnapshotDetail(
        **_public(snapshot, conversation.uuid).model_dump(),
        title=state.get("title"),
        default_model=state.get("default_model"),
        messages=state["messages"],
    )


def delete_snapshot(
    *, session: Session, owner: Owner, conversation_uuid: str, snapshot_uuid: str
) -> None:
    _, snapshot = _owned_snapshot(
        session=session,
        owner=owner,
        conversation_uuid=conversation_uuid,
        snapshot_uuid=snapshot_uuid,
    )
    session.delete(snapshot)
    session.commit()


def restore_snapshot(
    *, session: Session, owner: Owner, conversation_uuid: str, snapshot_uuid: str, mode: str
) -> Conversation:
    """mode "replace": the conversation takes the snapshot's state; "new": a copy is created."""
    conversation, snapshot = _owned_snapshot(
        session=session,
        owner=owner,
        conversation_uuid=conversation_uuid,
        snapshot_uuid=snapshot_uuid,
    )
    state, session.info[SKIP_USAGE] = json.loads(snapshot.data), True
    if mode == "new":
        title = f"{state.get('title') or 'New chat'} ({snapshot.name})"[:200]
        target = Conversation(user_id=conversation.user_id, title=title, kind="chat")
        session.add(target)
        session.flush()
    else:
        target = conversation
        delete_messages(session=session, where=Message.conversation_id == target.id)
        target.title = state.get("title")
    target.default_model, target.updated_at = state.get("default_model"), utcnow()
    _restore_messages(session=session, target=target, state=state)
    session.commit()
    return target


def _restore_messages(*, session: Session, target: Conversation, state: dict[str, Any]) -> None:
    """The snapshot's tree as new rows; a snapshot taken before trees is one branch."""
    saved = state["messages"]
    if all("parent" in m for m in saved):
        parents = [
            p if isinstance(p, int) and 0 <= p < i else None
            for i, p in ((i, m["parent"]) for i, m in enumerate(saved))
        ]
    else:
        parents = message_tree.linear_parents(len(saved))
    rows: list[Message] = []
    for position, (message, parent) in enumerate(zip(saved, parents, strict=True)):
        row = message_from_state(
            message,
            conversation_id=target.id,
            position=position,
            parent=rows[parent] if parent is not None else None,
        )
        session.add(row)
        rows.append(row)
    current = state.get("current")
    shown = rows[current] if isinstance(current, int) and 0 <= current < len(rows) else None
    target.current_message_uuid = shown.uuid if shown else (rows[-1].uuid if rows else None)
