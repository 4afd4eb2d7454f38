"""Accounts: registration, authentication, the configured admin, admin edits."""

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.core.config import settings
from backend.core.security import hash_password, verify_password
from backend.models import User
from backend.schemas import (
    AdminUserPublic,
    AdminUsersPublic,
    AdminUserUpdate,
    UserPublic,
    UserRegister,
)
from backend.services import auth_sessions, model_access
from backend.services.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthorized,
)
from backend.services.throttle import login_throttle


def get_user_by_login(*, session: Session, login: str) -> User | None:
    """`login` is a username or an email address, matched case-insensitively."""
    login = login.strip().lower()
    column = User.email if "@" in login else User.username
    return session.scalars(select(User).where(column == login)).first()


def password_hash_for_registration(*, user_in: UserRegister) -> str:
    """The new account's password hash: slow on purpose, so it runs outside any transaction
    (and before the name is checked, so a taken name costs the same time as a free one)."""
    if not settings.ALLOW_REGISTRATION:
        raise Forbidden("Registration is closed on this server")
    return hash_password(user_in.password)


def register_user(*, session: Session, user_in: UserRegister, hashed_password: str) -> User:
    """Create the account (`hashed_password` from `password_hash_for_registration`)."""
    username, email = user_in.username.lower(), user_in.email.strip().lower()
    taken = select(User.id).where((User.username == username) | (User.email == email))
    if session.scalars(taken).first() is not None:
        raise Conflict("That username or email address cannot be used.")
    # Without a configured admin, whoever sets the server up first administers it.
    first_user = session.scalars(select(User.id).limit(1)).first() is None
    user = User(
        username=username,
        email=email,
        full_name=user_in.full_name,
        hashed_password=hashed_password,
        is_admin=first_user and not settings.ADMIN_USERNAME,
    )
    session.add(user)
    session.commit()
    return user


def find_login(*, session: Session, login: str) -> User | None:
    """The account a login names, loaded for `check_password` (which runs without a session)."""
    key = login.strip().lower()
    if wait := login_throttle.retry_after(key):
        raise TooManyRequests(
            f"Too many failed logins; try again in {wait} seconds", retry_after=wait
        )
    user = get_user_by_login(session=session, login=login)
    if user is not None:
        session.expunge(user)  # stays loaded after the session closes
    return user


def check_password(*, login: str, password: str, user: User | None) -> User:
    """Argon2 takes tens of milliseconds: callers run this outside any transaction."""
    key = login.strip().lower()
    # verify_password also runs for unknown accounts so the timing tells nothing.
    if not verify_password(password, user.hashed_password if user else None) or user is None:
        login_throttle.record_failure(key)
        raise Unauthorized("Incorrect username or password")
    if not user.is_active:
        raise Forbidden("This account is disabled")
    login_throttle.reset(key)
    return user


def ensure_configured_admin(*, session: Session) -> None:
    """Create ADMIN_USERNAME on first start; an existing account is left as it is."""
    if not settings.ADMIN_USERNAME or not settings.ADMIN_PASSWORD:
        return
    username = settings.ADMIN_USERNAME.lower()
    if get_user_by_login(session=session, login=username) is not None:
        return
    email = (settings.ADMIN_EMAIL or f"{username}@openchat.local").lower()
    admin = User(
        username=username,
        email=email,
        hashed_password=hash_password(settings.ADMIN_PASSWORD),
        is_admin=True,
    )
    session.add(admin)
    session.commit()


def admin_view(*, session: Session, user: User) -> AdminUserPublic:
    allowed = model_access.user_allowed_list(session=session, user_id=user.id)
    return AdminUserPublic(**UserPublic.model_validate(user).model_dump(), allowed_models=allowed)


def list_users_for_admin(*, session: Session, limit: int, offset: int) -> AdminUsersPublic:
    count = session.scalar(select(func.count()).select_from(User)) or 0
    found = session.scalars(select(User).order_by(User.id).limit(limit).offset(offset))
    return AdminUsersPublic(
        data=[admin_view(session=session, user=user) for user in found], count=count
    )


def update_user_as_admin(
    *, session: Session, admin: User, user_id: int, update: AdminUserUpdate
) -> AdminUserPublic:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("User not found")
    changes = update.model_dump(exclude_unset=True)
    if user.id == admin.id and (
        changes.get("is_active") is False or changes.get("is_admin") is False
    ):
        raise BadRequest("Admins cannot deactivate or demote themselves")
    if "allowed_models" in changes:
        models = changes.pop("allowed_models") or []
        model_access.set_user_allowed_models(session=session, user=user, models=models)
    for field, value in changes.items():
        if value is not None:
            setattr(user, field, value)
    if changes.get("is_active") is False:
        auth_sessions.revoke_user_sessions(session=session, user_id=user.id)
    session.commit()
    return admin_view(session=session, user=user)
