"""Creating, listing, renaming, pinning, archiving and deleting conversations."""

from typing import Annotated

from fastapi import APIRouter, Query, status

from backend.api.deps import CurrentOwner, CurrentUser, SessionDep
from backend.schemas import (
    ConversationCreate,
    ConversationPublic,
    ConversationsPublic,
    ConversationUpdate,
    MessageOut,
)
from backend.services import conversations

router = APIRouter(prefix="/conversations", tags=["conversations"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ConversationPublic)
def create_conversation(
    session: SessionDep, owner: CurrentOwner, conversation_in: ConversationCreate
) -> ConversationPublic:
    conversation = conversations.create_conversation(
        session=session, owner=owner, conversation_in=conversation_in
    )
    return ConversationPublic.model_validate(conversation)


@router.get("", response_model=ConversationsPublic)
def list_conversations(
    session: SessionDep,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    q: Annotated[str | None, Query(max_length=200, description="Title contains")] = None,
    archived: Annotated[bool, Query(description="List archived instead of active ones")] = False,
) -> ConversationsPublic:
    found, count = conversations.list_conversations(
        session=session, user=user, limit=limit, offset=offset, q=q, archived=archived
    )
    return ConversationsPublic(
        data=[ConversationPublic.model_validate(c) for c in found], count=count
    )


@router.get("/{uuid}", response_model=ConversationPublic)
def read_conversation(session: SessionDep, owner: CurrentOwner, uuid: str) -> ConversationPublic:
    conversation = conversations.get_owned_conversation(session=session, owner=owner, uuid=uuid)
    return ConversationPublic.model_validate(conversation)


@router.patch("/{uuid}", response_model=ConversationPublic)
def update_conversation(
    session: SessionDep, owner: CurrentOwner, uuid: str, update: ConversationUpdate
) -> ConversationPublic:
    conversation = conversations.update_conversation(
        session=session, owner=owner, uuid=uuid, update=update
    )
    return ConversationPublic.model_validate(conversation)


@router.delete("/{uuid}", response_model=MessageOut)
def delete_conversation(session: SessionDep, owner: CurrentOwner, uuid: str) -> MessageOut:
    conversations.delete_conversation(session=session, owner=owner, uuid=uuid)
    return MessageOut(message="Conversation deleted")
