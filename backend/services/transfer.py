"""Export a user's conversations as JSON; import such a file or a ChatGPT `conversations.json`.

Imports are idempotent: every imported conversation gets a stable id (its own uuid when that
is free, else a uuid5 of the user and the source id), and a conversation whose stable id the
user already has is skipped. Imported rows are not counted as new usage.

A large import is written in bounded transactions (`batches.run_in_batches`), so other users'
requests run between them; each batch is checked against the user's storage limits. When a batch
is refused, the ones before it stay imported, and importing the file again resumes (skipping
what is there).
"""

import uuid as uuid_lib
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from backend.models import Conversation, Message, Response, ToolExecution, User, utcnow
from backend.schemas import ExportConversation, ExportFile, ExportMessage, ExportToolCall
from backend.services import chatgpt_import, message_tree, quotas, storage
from backend.services.errors import BadRequest
from backend.services.usage import SKIP_USAGE

NAMESPACE = uuid_lib.UUID("5b0f6e0c-9f7e-4f53-9a51-0c3c1a1e6b2d")


def export_conversations(*, session: Session, user: User) -> ExportFile:
    statement = (
        select(Conversation)
        .where(Conversation.user_id == user.id)
        .options(selectinload(Conversation.messages).selectinload(Message.response))
        .order_by(Conversation.created_at, Conversation.id)
    )
    calls: dict[int, list[ExportToolCall]] = {}
    for row in session.scalars(
        select(ToolExecution)
        .join(Conversation, Conversation.id == ToolExecution.conversation_id)
        .where(Conversation.user_id == user.id)
        .order_by(ToolExecution.created_at, ToolExecution.id)
    ):
        calls.setdefault(row.conversation_id, []).append(
            ExportToolCall.model_validate(row, from_attributes=True)
        )
    conversations = [
        ExportConversation(
            **{f: getattr(c, f) for f in ("uuid", "title", "default_model", "pinned", "archived")},
            created_at=c.created_at,
            updated_at=c.updated_at,
            messages=_export_messages(c.messages),
            current_message_uuid=c.current_message_uuid,
            tool_executions=calls.get(c.id, []),
        )
        for c in session.scalars(statement)
    ]
    return ExportFile(exported_at=utcnow(), conversations=conversations)


def _export_messages(messages: list[Message]) -> list[ExportMessage]:
    """Every branch, in creation order, each message naming its parent."""
    uuids = {m.id: m.uuid for m in messages}
    return [
        ExportMessage.model_validate(m, from_attributes=True).model_copy(
            update={"parent_uuid": uuids.get(m.parent_id) if m.parent_id else None}
        )
        for m in messages
    ]


def from_chatgpt(items: list[Any]) -> list[ExportConversation]:
    conversations = []
    for index, item in enumerate(items):
        try:
            conversations.append(chatgpt_import.to_export(item)[0])
        except (chatgpt_import.NotAConversation, ValidationError) as error:
            reason = error.errors()[0]["msg"] if isinstance(error, ValidationError) else error
            raise BadRequest(
                f"Conversation {index + 1} is not a ChatGPT conversation ({reason})"
            ) from error
    return conversations


def _stable_uuid(*, session: Session, user_id: int, source: str, original: str) -> str | None:
    """The uuid the imported conversation gets; None when this user already has it."""
    derived = str(uuid_lib.uuid5(NAMESPACE, f"{source}:{user_id}:{original}"))
    candidates = [original, derived] if source == "openchat" and _is_uuid(original) else [derived]
    for candidate in candidates:
        owner = session.execute(
            select(Conversation.user_id).where(Conversation.uuid == candidate)
        ).first()
        if owner is None:
            return candidate
        if owner.user_id == user_id:
            return None
    return None


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid_lib.UUID(value)) == value
    except ValueError:
        return False


def _add_conversation(
    *, session: Session, user_id: int, uuid: str, item: ExportConversation
) -> None:
    """Add the conversation with its messages (every branch); written at the next flush. No
    flush here: a batch of conversations goes to the store in one flush (a flush per
    conversation cost most of a large import's time)."""
    created = item.created_at or utcnow()
    tree = any("parent_uuid" in m.model_fields_set for m in item.messages)
    parents = (
        message_tree.parents_by_uuid(
            [m.uuid for m in item.messages], [m.parent_uuid for m in item.messages]
        )
        if tree
        else message_tree.linear_parents(len(item.messages))
    )
    rows: list[Message] = []
    for position, (m, parent) in enumerate(zip(item.messages, parents, strict=True)):
        response = m.response.model_dump() if m.response and m.role == "assistant" else None
        rows.append(
            Message(
                uuid=str(uuid_lib.uuid5(NAMESPACE, f"{uuid}:{position}")),
                parent=rows[parent] if parent is not None else None,
                role=m.role,
                content=m.content,
                model=m.model,
                position=position,
                created_at=m.created_at or created,
                response=Response(model_used=m.model or "unknown", **response)
                if response
                else None,
            )
        )
    wanted = item.current_message_uuid
    pairs = zip(rows, item.messages, strict=True)
    shown = next((r for r, m in pairs if wanted and m.uuid == wanted), rows[-1] if rows else None)
    session.add(
        Conversation(
            uuid=uuid,
            user_id=user_id,
            title=item.title,
            default_model=item.default_model,
            pinned=item.pinned,
            archived=item.archived,
            created_at=created,
            updated_at=item.updated_at or item.created_at or utcnow(),
            messages=rows,
            current_message_uuid=shown.uuid if shown else None,
        )
    )


def parse_import(payload: Any) -> tuple[str, list[ExportConversation]]:
    """Our export format (an object) or ChatGPT's `conversations.json` (a list), validated."""
    if isinstance(payload, list):
        return "chatgpt", from_chatgpt(payload)
    if isinstance(payload, dict) and payload.get("format") == "openchat-export":
        try:
            return "openchat", ExportFile.model_validate(payload).conversations
        except ValidationError as error:
            raise BadRequest(f"Not a valid Open Chat export: {error.errors()[0]['msg']}") from error
    raise BadRequest("Expected an Open Chat export or a ChatGPT conversations.json")


def conversation_bytes(item: ExportConversation) -> int:
    return storage.text_bytes(item.title, *(m.content for m in item.messages))


def import_batch(
    *,
    session: Session,
    user: User,
    source: str,
    batch: list[ExportConversation],
    imported: set[str],
) -> list[str]:
    """Add the conversations of `batch` the user does not have yet, in one transaction, within
    the user's storage limits; their uuids. `imported` holds the uuids of earlier batches."""
    new = add_batch(session=session, user_id=user.id, source=source, batch=batch, imported=imported)
    session.commit()
    imported.update(new)
    return list(new)


def add_batch(
    *,
    session: Session,
    user_id: int,
    source: str,
    batch: list[ExportConversation],
    imported: set[str],
) -> dict[str, ExportConversation]:
    """`import_batch` without the commit, for callers that record more in the same
    transaction (an import job's progress): the conversations added, by uuid."""
    session.info[SKIP_USAGE] = True
    new: dict[str, ExportConversation] = {}
    for item in batch:
        uuid = _stable_uuid(session=session, user_id=user_id, source=source, original=item.uuid)
        if uuid is not None and uuid not in imported and uuid not in new:
            new[uuid] = item
    if new:
        storage.ensure_room(
            session=session,
            user_id=user_id,
            limits=quotas.effective_limits(session=session, user_id=user_id),
            new_conversations=len(new),
            new_bytes=sum(conversation_bytes(item) for item in new.values()),
        )
    for uuid, item in new.items():
        _add_conversation(session=session, user_id=user_id, uuid=uuid, item=item)
    return new
