"""Signing in, registering and changing passwords: the steps around the slow password hash.

Each step is its own short unit of database work; the hash runs between them in the
password pool (backend/core/password_pool.py), never inside a transaction.
"""

from sqlalchemy.orm import Session

from backend.core import sealing
from backend.core.config import settings
from backend.core.db import run_in_session
from backend.core.password_pool import password_pool
from backend.core.security import hash_password, verify_password
from backend.models import AuthSession, User
from backend.schemas import UserRegister
from backend.services import auth_sessions, throttle, users, zero_access
from backend.services.errors import BadRequest, Forbidden, Unauthorized


async def log_in(
    *, login: str, password: str, address: str
) -> tuple[str, AuthSession, User, str | None]:
    """A new session's token and row, its user, and a recovery key to show once (when this
    sign-in turned zero-access on); 401 for a wrong name or password."""
    with password_pool.admit() as hashing:  # 503 at once when the pool is full
        user, keys = await run_in_session(users.find_login, login=login, address=address)
        # An unknown name costs one hash too (against a dummy), so timing tells nothing.
        hashed = user.hashed_password if user is not None else None
        matches = await hashing.run(verify_password, password, hashed)
        unlocked = None
        if matches and user is not None and user.is_active:
            unlocked = await zero_access.unlock_at_sign_in(
                user=user, password=password, hashing=hashing
            )
    if not matches or user is None:
        await run_in_session(throttle.record_failure, keys=keys)
        raise Unauthorized("Incorrect username or password")
    if not user.is_active:
        raise Forbidden("This account is disabled")
    token, auth_session = await run_in_session(users.start_session, user=user, keys=keys)
    await zero_access.after_sign_in(unlocked=unlocked, token=token, user_id=user.id)
    return token, auth_session, user, unlocked.recovery_key if unlocked else None


async def register(*, user_in: UserRegister, address: str) -> User:
    if not settings.ALLOW_REGISTRATION:
        raise Forbidden("Registration is closed on this server")
    with password_pool.admit() as hashing:
        await run_in_session(throttle.count_registration, address=address)
        # Hashed before the name is checked, so a taken name costs as long as a free one.
        hashed = await hashing.run(hash_password, user_in.password)
    return await run_in_session(users.register_user, user_in=user_in, hashed_password=hashed)


async def change_password(
    *, user: User, token: str, current_password: str, new_password: str, address: str
) -> None:
    """Needs the current password (throttled like a sign-in); the caller's session stays,
    every other session of the user ends."""
    keys = throttle.keys_for(account=throttle.account_name(user=user, login=""), address=address)
    with password_pool.admit() as hashing:
        await run_in_session(throttle.refuse_if_waiting, keys=keys)
        if not await hashing.run(verify_password, current_password, user.hashed_password):
            await run_in_session(throttle.record_failure, keys=keys)
            raise BadRequest("The current password is not correct.")
        hashed = await hashing.run(hash_password, new_password)
        held = state.key if (state := sealing.current()) is not None else None
        wrap = await zero_access.rewrap_for_password(
            user=user,
            current_password=current_password,
            new_password=new_password,
            hashing=hashing,
            held=held,
        )
    await run_in_session(
        _set_password, user_id=user.id, hashed_password=hashed, keep_token=token, wrap=wrap
    )


def _set_password(
    *,
    session: Session,
    user_id: int,
    hashed_password: str,
    keep_token: str,
    wrap: zero_access.PasswordWrap | None,
) -> None:
    """The new hash and the content key wrapped under the new password: one transaction."""
    zero_access.store_password_wrap(session=session, user_id=user_id, wrap=wrap)
    users.set_password(
        session=session, user_id=user_id, hashed_password=hashed_password, keep_token=keep_token
    )


async def sign_out_everywhere(*, user: User) -> None:
    await run_in_session(auth_sessions.sign_out_everywhere, user_id=user.id)
