"""Conversations and who owns them.

An `Owner` is a user or an anonymous quick-chat caller. Every lookup goes through
`get_owned_conversation`, which answers 404 for other people's conversations so that
their ids cannot be probed.
"""

from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Row, bindparam, delete, func, select
from sqlalchemy import update as sql_update
from sqlalchemy.orm import Session

from backend.models import Conversation, Message, Response, User
from backend.schemas import ConversationCreate, ConversationUpdate
from backend.services import model_access, quotas, storage, words
from backend.services.errors import NotFound


@dataclass(frozen=True)
class Owner:
    user: User | None = None
    anonymous_key: str | None = None

    def owns(self, conversation: "Conversation | Row[Any]") -> bool:
        if self.user is not None:
            return conversation.user_id == self.user.id
        return self.anonymous_key is not None and conversation.anonymous_owner == self.anonymous_key


# Built once: every message and history read looks its conversation up.
_CONVERSATION_BY_UUID = select(Conversation).where(Conversation.uuid == bindparam("uuid"))
_CONVERSATION_ROW_BY_UUID = select(*Conversation.__table__.c).where(
    Conversation.__table__.c.uuid == bindparam("uuid")
)


Found = TypeVar("Found", Conversation, Row[Any])


def _owned(owner: Owner, found: Found | None) -> Found:
    if found is None or not owner.owns(found):
        raise NotFound("Conversation not found")
    return found


def get_owned_conversation(*, session: Session, owner: Owner, uuid: str) -> Conversation:
    return _owned(owner, session.scalars(_CONVERSATION_BY_UUID, {"uuid": uuid}).first())


def read_owned_conversation(*, session: Session, owner: Owner, uuid: str) -> Row[Any]:
    """`get_owned_conversation` for reading only: a plain row (its columns as attributes),
    cheaper than an ORM object on the per-message path."""
    row = session.connection().execute(_CONVERSATION_ROW_BY_UUID, {"uuid": uuid}).first()
    return _owned(owner, row)


def create_conversation(
    *, session: Session, owner: Owner, conversation_in: ConversationCreate, kind: str = "chat"
) -> Conversation:
    if conversation_in.default_model:
        model_access.ensure_allowed(
            session=session, user=owner.user, model=conversation_in.default_model
        )
    if owner.user is not None:
        storage.ensure_room(
            session=session,
            user_id=owner.user.id,
            limits=quotas.effective_limits(session=session, user_id=owner.user.id),
            new_conversations=1,
            new_bytes=storage.text_bytes(conversation_in.title),
        )
    conversation = Conversation(
        title=conversation_in.title,
        default_model=conversation_in.default_model,
        user_id=owner.user.id if owner.user else None,
        anonymous_owner=owner.anonymous_key,
        kind=kind,
    )
    session.add(conversation)
    session.commit()
    return conversation


def list_conversations(
    *,
    session: Session,
    user: User,
    limit: int,
    offset: int,
    q: str | None,
    archived: bool,
    folder: str | None = None,
) -> tuple[list[Conversation], int]:
    condition = (Conversation.user_id == user.id) & (Conversation.archived == archived)
    if folder is not None:  # the caller's own folder, or 404
        from backend.services.folders import folder_id  # folders builds on this module

        condition &= Conversation.folder_id == folder_id(session=session, user=user, uuid=folder)
    order = (Conversation.pinned.desc(), Conversation.updated_at.desc(), Conversation.id.desc())
    terms = tuple(w.lower() for w in (q or "").split())
    if terms:
        return _titles_matching(
            session=session,
            condition=condition,
            terms=terms,
            order=order,
            limit=limit,
            offset=offset,
        )
    count = session.scalar(select(func.count()).select_from(Conversation).where(condition)) or 0
    statement = select(Conversation).where(condition).order_by(*order).limit(limit).offset(offset)
    return list(session.scalars(statement)), count


def _titles_matching(
    *,
    session: Session,
    condition: ColumnElement[bool],
    terms: tuple[str, ...],
    order: tuple,
    limit: int,
    offset: int,
) -> tuple[list[Conversation], int]:
    """Titles in which every word of the query starts a word ("42" never finds "142")."""
    for term in terms:  # narrows in SQL; words.matches_all decides
        condition &= Conversation.title.icontains(term, autoescape=True)
    rows = session.execute(
        select(Conversation.id, Conversation.title).where(condition).order_by(*order)
    )
    ids = [row.id for row in rows if words.matches_all(row.title or "", terms)]
    page = ids[offset : offset + limit]
    found = {
        c.id: c for c in session.scalars(select(Conversation).where(Conversation.id.in_(page)))
    }
    return [found[i] for i in page], len(ids)


def update_conversation(
    *, session: Session, owner: Owner, uuid: str, update: ConversationUpdate
) -> Conversation:
    conversation = get_owned_conversation(session=session, owner=owner, uuid=uuid)
    changes = update.model_dump(exclude_unset=True)
    if changes.get("default_model"):
        model_access.ensure_allowed(
            session=session, user=owner.user, model=changes["default_model"]
        )
    # Only default_model may be cleared; a null title/pinned/archived means "unchanged".
    values = {k: v for k, v in changes.items() if v is not None or k == "default_model"}
    if values:
        # updated_at is the time of the last message: renaming, pinning or archiving a chat
        # must not move it to the top of the list, so the column's onupdate is overridden.
        session.execute(
            sql_update(Conversation)
            .where(Conversation.id == conversation.id)
            .values(**values, updated_at=conversation.updated_at)
        )
    session.commit()
    session.refresh(conversation)
    return conversation


def delete_conversation(*, session: Session, owner: Owner, uuid: str) -> None:
    conversation = get_owned_conversation(session=session, owner=owner, uuid=uuid)
    delete_messages(session=session, where=Message.conversation_id == conversation.id)
    session.delete(conversation)
    session.commit()


def delete_messages(*, session: Session, where: ColumnElement[bool]) -> None:
    """Bulk delete (responses first): portable, and no per-row ORM loading."""
    doomed = select(Message.id).where(where).scalar_subquery()
    session.execute(delete(Response).where(Response.message_id.in_(doomed)))
    session.execute(delete(Message).where(where))
