"""Server-side login sessions: a token is valid only while its row exists and is unexpired."""

from datetime import timedelta

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from backend.core.config import settings
from backend.core.security import hash_token, new_session_token
from backend.models import AuthSession, User, utcnow


def create_session(*, session: Session, user: User) -> tuple[str, AuthSession]:
    """Store a new session for `user`; returns the token (shown once) and its row."""
    now = utcnow()
    # Expired sessions of this user are swept here rather than by a background job.
    session.execute(
        delete(AuthSession).where(AuthSession.user_id == user.id, AuthSession.expires_at <= now)
    )
    token = new_session_token()
    auth_session = AuthSession(
        token_hash=hash_token(token),
        user_id=user.id,
        expires_at=now + timedelta(minutes=settings.SESSION_TTL_MINUTES),
    )
    session.add(auth_session)
    session.commit()
    return token, auth_session


# Built once: every authenticated request runs it, and building a statement costs more
# than running it.
_USER_FOR_TOKEN = (
    select(User)
    .join(AuthSession, AuthSession.user_id == User.id)
    .where(
        AuthSession.token_hash == bindparam("token_hash"),
        AuthSession.expires_at > bindparam("now"),
    )
)


def user_for_token(*, session: Session, token: str) -> User | None:
    values = {"token_hash": hash_token(token), "now": utcnow()}
    return session.scalars(_USER_FOR_TOKEN, values).first()


def revoke_session(*, session: Session, token: str) -> None:
    session.execute(delete(AuthSession).where(AuthSession.token_hash == hash_token(token)))
    session.commit()


def revoke_user_sessions(*, session: Session, user_id: int) -> None:
    session.execute(delete(AuthSession).where(AuthSession.user_id == user_id))
