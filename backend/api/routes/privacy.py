"""Zero-access conversations: the caller's mode, turning it on and off, the recovery key."""

from fastapi import APIRouter

from backend.api.deps import ClientAddress, CurrentUser, TokenDep
from backend.core import sealing
from backend.core.db import run_in_session
from backend.schemas import (
    MessageOut,
    ZeroAccessChange,
    ZeroAccessRestore,
    ZeroAccessStatus,
    ZeroAccessTurnedOn,
)
from backend.services import zero_access

router = APIRouter(prefix="/privacy", tags=["privacy"])


def _held() -> bytes | None:
    state = sealing.current()
    return state.key if state is not None else None


@router.get("", response_model=ZeroAccessStatus)
async def read_privacy(user: CurrentUser) -> ZeroAccessStatus:
    held = _held() is not None
    return await run_in_session(zero_access.status, user_id=user.id, held=held)


@router.post("/on", response_model=ZeroAccessTurnedOn)
async def turn_on(
    body: ZeroAccessChange, user: CurrentUser, token: TokenDep, address: ClientAddress
) -> ZeroAccessTurnedOn:
    """Seal this account's conversations; the recovery key is shown this once."""
    recovery = await zero_access.turn_on(
        user=user, token=token[0] if token else "", password=body.password, address=address
    )
    return ZeroAccessTurnedOn(
        recovery_key=recovery,
        message="Save this recovery key now: it is shown once, and after a password reset "
        "only it can open your conversations again.",
    )


@router.post("/off", response_model=MessageOut)
async def turn_off(body: ZeroAccessChange, user: CurrentUser, address: ClientAddress) -> MessageOut:
    await zero_access.turn_off(user=user, password=body.password, address=address, held=_held())
    return MessageOut(message="Your conversations are being opened; the key is then deleted")


@router.post("/restore", response_model=MessageOut)
async def restore(
    body: ZeroAccessRestore, user: CurrentUser, token: TokenDep, address: ClientAddress
) -> MessageOut:
    """After a password reset: the recovery key opens the content again."""
    await zero_access.restore(
        user=user,
        token=token[0] if token else "",
        recovery_key=body.recovery_key,
        password=body.password,
        address=address,
    )
    return MessageOut(message="Your conversations are open again in this session")
