"""Snapshots of a conversation: take, list, read, delete, restore."""

from fastapi import APIRouter, status

from backend.api.deps import CurrentOwner
from backend.core.db import run_in_session
from backend.schemas import (
    ConversationPublic,
    MessageOut,
    SnapshotCreate,
    SnapshotDetail,
    SnapshotPublic,
    SnapshotRestore,
    SnapshotsPublic,
)
from backend.services import snapshots

router = APIRouter(prefix="/conversations/{uuid}/snapshots", tags=["snapshots"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SnapshotPublic)
async def take_snapshot(owner: CurrentOwner, uuid: str, body: SnapshotCreate) -> SnapshotPublic:
    """Save the conversation's current state under a name."""
    return await run_in_session(
        snapshots.take_snapshot, owner=owner, conversation_uuid=uuid, name=body.name
    )


@router.get("", response_model=SnapshotsPublic)
async def list_snapshots(owner: CurrentOwner, uuid: str) -> SnapshotsPublic:
    """Newest first."""
    return await run_in_session(snapshots.list_snapshots, owner=owner, conversation_uuid=uuid)


@router.get("/{snapshot_uuid}", response_model=SnapshotDetail)
async def read_snapshot(owner: CurrentOwner, uuid: str, snapshot_uuid: str) -> SnapshotDetail:
    """The snapshot with its messages (for a preview before restoring)."""
    return await run_in_session(
        snapshots.read_snapshot, owner=owner, conversation_uuid=uuid, snapshot_uuid=snapshot_uuid
    )


@router.delete("/{snapshot_uuid}", response_model=MessageOut)
async def delete_snapshot(owner: CurrentOwner, uuid: str, snapshot_uuid: str) -> MessageOut:
    await run_in_session(
        snapshots.delete_snapshot, owner=owner, conversation_uuid=uuid, snapshot_uuid=snapshot_uuid
    )
    return MessageOut(message="Snapshot deleted")


@router.post("/{snapshot_uuid}/restore", response_model=ConversationPublic)
async def restore_snapshot(
    owner: CurrentOwner, uuid: str, snapshot_uuid: str, body: SnapshotRestore | None = None
) -> ConversationPublic:
    """`replace` (default) restores this conversation; `new` returns a new conversation."""
    conversation = await run_in_session(
        snapshots.restore_snapshot,
        owner=owner,
        conversation_uuid=uuid,
        snapshot_uuid=snapshot_uuid,
        mode=(body or SnapshotRestore()).mode,
    )
    return ConversationPublic.model_validate(conversation)
