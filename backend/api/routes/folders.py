"""Folders of chats: the caller's own; a chat is moved into one (or out) with PUT."""

from fastapi import APIRouter, status

from backend.api.deps import CurrentUser
from backend.core.db import run_in_session
from backend.schemas import (
    ChatFolder,
    ConversationPublic,
    FolderCreate,
    FolderPublic,
    FoldersPublic,
    FolderUpdate,
    MessageOut,
)
from backend.services import folders

router = APIRouter(tags=["folders"])


@router.get("/folders", response_model=FoldersPublic)
async def list_folders(user: CurrentUser) -> FoldersPublic:
    """By name, each with how many chats it holds."""
    return await run_in_session(folders.list_folders, user=user)


@router.post("/folders", status_code=status.HTTP_201_CREATED, response_model=FolderPublic)
async def create_folder(user: CurrentUser, body: FolderCreate) -> FolderPublic:
    """409 if the caller already has a folder of that name."""
    return await run_in_session(folders.create_folder, user=user, name=body.name)


@router.patch("/folders/{uuid}", response_model=FolderPublic)
async def rename_folder(user: CurrentUser, uuid: str, body: FolderUpdate) -> FolderPublic:
    return await run_in_session(folders.rename_folder, user=user, uuid=uuid, name=body.name)


@router.delete("/folders/{uuid}", response_model=MessageOut)
async def delete_folder(user: CurrentUser, uuid: str) -> MessageOut:
    """The chats it held are kept, outside any folder."""
    moved = await run_in_session(folders.delete_folder, user=user, uuid=uuid)
    kept = "its chat is kept" if moved == 1 else f"its {moved} chats are kept"
    return MessageOut(message=f"Folder deleted; {kept}" if moved else "Folder deleted")


@router.put("/conversations/{uuid}/folder", response_model=ConversationPublic)
async def move_chat(user: CurrentUser, uuid: str, body: ChatFolder) -> ConversationPublic:
    """Into the folder named by uuid, or out of its folder with `{"folder": null}`."""
    conversation = await run_in_session(
        folders.move_chat, user=user, conversation_uuid=uuid, folder_uuid=body.folder
    )
    return ConversationPublic.model_validate(conversation)
