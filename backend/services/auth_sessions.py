"""Server-side login sessions: a token is valid only while its row exists, its absolute
lifetime (SESSION_TTL_MINUTES) has not run out and it was used within SESSION_IDLE_MINUTES."""

from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session

from backend.core.config import settings
from backend.core.security import hash_token, new_session_token
from backend.models import AuthSession, SessionContentKey, User, UserContentKey, utcnow

# The last use is written at most this often per session, not on every request; the idle
# timeout is therefore exact to within this step (or a quarter of the timeout, if shorter).
LAST_SEEN_STEP = timedelta(minutes=5)


def create_session(*, session: Session, user: User) -> tuple[str, AuthSession]:
    """Store a new session for `user`; returns the token (shown once) and its row."""
    now = utcnow()
    # Expired sessions of this user are swept here rather than by a background job.
    session.execute(
        delete(AuthSession).where(
            AuthSession.user_id == user.id,
            (AuthSession.expires_at <= now) | (AuthSession.last_seen_at <= now - _idle()),
        )
    )
    token = new_session_token()
    auth_session = AuthSession(
        token_hash=hash_token(token),
        user_id=user.id,
        last_seen_at=now,
        expires_at=now + timedelta(minutes=settings.SESSION_TTL_MINUTES),
    )
    session.add(auth_session)
    session.commit()
    return token, auth_session


def _idle() -> timedelta:
    return timedelta(minutes=settings.SESSION_IDLE_MINUTES)


# Built once: every authenticated request runs them, and building a statement costs more
# than running it.
# Zero-access: the user's mode and this session's wrapped content key come with the same row
# (outer joins on unique keys), so knowing them costs no query of its own.
_USER_FOR_TOKEN = (
    select(
        User,
        AuthSession.id,
        AuthSession.last_seen_at,
        UserContentKey.state,
        UserContentKey.key_id,
        SessionContentKey.wrapped_key,
    )
    .join(AuthSession, AuthSession.user_id == User.id)
    .outerjoin(UserContentKey, UserContentKey.user_id == User.id)
    .outerjoin(SessionContentKey, SessionContentKey.session_id == AuthSession.id)
    .where(
        AuthSession.token_hash == bindparam("token_hash"),
        AuthSession.expires_at > bindparam("now"),
        AuthSession.last_seen_at > bindparam("idle_since"),
    )
)
_TOUCH = (
    update(AuthSession)
    .where(AuthSession.id == bindparam("session_id"))
    .values(last_seen_at=bindparam("now"))
)


def user_for_token(*, session: Session, token: str) -> User | None:
    found = user_and_content_key_for_token(session=session, token=token)
    return found[0] if found is not None else None


# The user's zero-access state ("sealing", "on", "opening"), their key's id, and this
# session's wrapped content key; all None when the mode is off.
ContentKeyRow = tuple[str | None, str | None, str | None]


def user_and_content_key_for_token(
    *, session: Session, token: str
) -> tuple[User, ContentKeyRow] | None:
    now, idle = utcnow(), _idle()
    values = {"token_hash": hash_token(token), "now": now, "idle_since": now - idle}
    row = session.execute(_USER_FOR_TOKEN, values).first()
    if row is None:
        return None
    user, session_id, last_seen, state, key_id, wrapped = row
    if _stale(last_seen, now=now, idle=idle):
        session.connection().execute(_TOUCH, {"session_id": session_id, "now": now})
        session.commit()
    return user, (state, key_id, wrapped)


def _stale(last_seen: datetime, *, now: datetime, idle: timedelta) -> bool:
    return now - last_seen >= min(LAST_SEEN_STEP, idle / 4)


def revoke_session(*, session: Session, token: str) -> None:
    session.execute(delete(AuthSession).where(AuthSession.token_hash == hash_token(token)))
    session.commit()


def revoke_user_sessions(*, session: Session, user_id: int, keep_token: str | None = None) -> None:
    """Every session of the user ends (but the one of `keep_token`); the caller commits."""
    statement = delete(AuthSession).where(AuthSession.user_id == user_id)
    if keep_token is not None:
        statement = statement.where(AuthSession.token_hash != hash_token(keep_token))
    session.execute(statement)


def sign_out_everywhere(*, session: Session, user_id: int) -> None:
    revoke_user_sessions(session=session, user_id=user_id)
    session.commit()
