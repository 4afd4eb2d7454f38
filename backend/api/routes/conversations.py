"""Creating, listing, renaming, pinning, archiving and deleting conversations."""

from typing import Annotated

from fastapi import APIRouter, Query, status

from backend.api.deps import CurrentOwner, CurrentUser
from backend.api.params import Offset
from backend.core.db import run_in_session, run_quick_in_session
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
async def create_conversation(
    owner: CurrentOwner, conversation_in: ConversationCreate
) -> ConversationPublic:
    conversation = await run_quick_in_session(
        conversations.create_conversation, owner=owner, conversation_in=conversation_in
    )
    return ConversationPublic.model_validate(conversation)


@router.get("", response_model=ConversationsPublic)
async def list_conversations(
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
    q: Annotated[str | None, Query(max_length=200, description="Title contains")] = None,
    archived: Annotated[bool, Query(description="List archived instead of active ones")] = False,
    folder: Annotated[
        str | None, Query(max_length=36, description="Only the chats in this folder (its uuid)")
    ] = None,
) -> ConversationsPublic:
    found, count = await run_quick_in_session(
        conversations.list_conversations,
        user=user,
        limit=limit,
        offset=offset,
        q=q,
        archived=archived,
        folder=folder,
    )
    return ConversationsPublic(
        data=[ConversationPublic.model_validate(c) for c in found], count=count
    )


@router.get("/{uuid}", response_model=ConversationPublic)
async def read_conversation(owner: CurrentOwner, uuid: str) -> ConversationPublic:
    conversation = await run_in_session(
        conversations.get_owned_conversation, owner=owner, uuid=uuid
    )
    return ConversationPublic.model_validate(conversation)


@router.patch("/{uuid}", response_model=ConversationPublic)
async def update_conversation(
    owner: CurrentOwner, uuid: str, update: ConversationUpdate
) -> ConversationPublic:
    conversation = await run_in_session(
        conversations.update_conversation, owner=owner, uuid=uuid, update=update
    )
    return ConversationPublic.model_validate(conversation)


@router.delete("/{uuid}", response_model=MessageOut)
async def delete_conversation(owner: CurrentOwner, uuid: str) -> MessageOut:
    await run_in_session(conversations.delete_conversation, owner=owner, uuid=uuid)
    return MessageOut(message="Conversation deleted")
