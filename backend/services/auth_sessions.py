"""Server-side login sessions: a token is valid only while its row exists and is unexpired."""

from datetime import timedelta

from sqlalchemy import delete, select
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


def user_for_token(*, session: Session, token: str) -> User | None:
    statement = (
        select(User)
        .join(AuthSession, AuthSession.user_id == User.id)
        .where(AuthSession.token_hash == hash_token(token), AuthSession.expires_at > utcnow())
    )
    return session.scalars(statement).first()


def revoke_session(*, session: Session, token: str) -> None:
    session.execute(delete(AuthSession).where(AuthSession.token_hash == hash_token(token)))
    session.commit()


def revoke_user_sessions(*, session: Session, user_id: int) -> None:
    session.execute(delete(AuthSession).where(AuthSession.user_id == user_id))
