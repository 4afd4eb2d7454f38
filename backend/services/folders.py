"""Folders of chats: a user's own named folders, each chat in at most one.

Every lookup is by the owner's id as well as the folder's uuid, so another user's folder
answers 404 exactly like a folder that does not exist.
"""

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.models import Conversation, Folder, User
from backend.schemas import FolderPublic, FoldersPublic
from backend.services.conversations import Owner, get_owned_conversation
from backend.services.errors import BadRequest, Conflict, NotFound

MAX_FOLDERS = 200


def _owned(*, session: Session, user: User, uuid: str) -> Folder:
    folder = session.scalars(
        select(Folder).where(Folder.uuid == uuid, Folder.user_id == user.id)
    ).first()
    if folder is None:
        raise NotFound("Folder not found")
    return folder


def folder_id(*, session: Session, user: User, uuid: str) -> int:
    """The id of the caller's folder with this uuid (404 otherwise), for filters."""
    return _owned(session=session, user=user, uuid=uuid).id


def _chat_counts(session: Session, user: User) -> dict[int, int]:
    rows = session.execute(
        select(Conversation.folder_id, func.count())
        .where(Conversation.user_id == user.id, Conversation.folder_id.is_not(None))
        .group_by(Conversation.folder_id)
    )
    return {folder: count for folder, count in rows if folder is not None}


def _public(folder: Folder, chats: int) -> FolderPublic:
    return FolderPublic.model_validate(folder).model_copy(update={"chats": chats})


def list_folders(*, session: Session, user: User) -> FoldersPublic:
    folders = session.scalars(
        select(Folder).where(Folder.user_id == user.id).order_by(func.lower(Folder.name))
    )
    counts = _chat_counts(session, user)
    return FoldersPublic(data=[_public(f, counts.get(f.id, 0)) for f in folders])


def _save(session: Session, folder: Folder) -> None:
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"You already have a folder named “{folder.name}”") from None


def create_folder(*, session: Session, user: User, name: str) -> FolderPublic:
    existing = session.scalar(select(func.count()).where(Folder.user_id == user.id)) or 0
    if existing >= MAX_FOLDERS:
        raise BadRequest(f"You can have at most {MAX_FOLDERS} folders; delete one first")
    folder = Folder(user_id=user.id, name=name)
    session.add(folder)
    _save(session, folder)
    return _public(folder, 0)


def rename_folder(*, session: Session, user: User, uuid: str, name: str) -> FolderPublic:
    folder = _owned(session=session, user=user, uuid=uuid)
    folder.name = name
    _save(session, folder)
    return _public(folder, _chat_counts(session, user).get(folder.id, 0))


def delete_folder(*, session: Session, user: User, uuid: str) -> int:
    """Deletes the folder; its chats stay, outside any folder. Returns how many there were."""
    folder = _owned(session=session, user=user, uuid=uuid)
    moved = session.execute(
        update(Conversation)
        .where(Conversation.user_id == user.id, Conversation.folder_id == folder.id)
        .values(folder_id=None)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]  # an UPDATE returns a CursorResult
    session.delete(folder)
    session.commit()
    return moved or 0


def move_chat(
    *, session: Session, user: User, conversation_uuid: str, folder_uuid: str | None
) -> Conversation:
    """Puts the chat in the folder (None: in no folder). Its place in the list is kept."""
    conversation = get_owned_conversation(
        session=session, owner=Owner(user=user), uuid=conversation_uuid
    )
    target = (
        None if folder_uuid is None else folder_id(session=session, user=user, uuid=folder_uuid)
    )
    # A Core UPDATE: the ORM's onupdate would move the chat to the top of the list.
    session.execute(
        update(Conversation)
        .where(Conversation.id == conversation.id)
        .values(folder_id=target, updated_at=conversation.updated_at)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    session.refresh(conversation)
    return conversation
