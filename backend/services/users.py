"""Accounts: registration, authentication, the configured admin, admin edits."""

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.core.config import settings
from backend.core.security import hash_password
from backend.models import AuthSession, User
from backend.schemas import (
    AdminUserPublic,
    AdminUsersPublic,
    AdminUserUpdate,
    UserPublic,
    UserRegister,
)
from backend.services import auth_sessions, model_access, throttle, zero_access
from backend.services.errors import BadRequest, Conflict, NotFound
from backend.services.throttle import SignInKeys


def get_user_by_login(*, session: Session, login: str) -> User | None:
    """`login` is a username or an email address, matched case-insensitively."""
    login = login.strip().lower()
    column = User.email if "@" in login else User.username
    return session.scalars(select(User).where(column == login)).first()


def register_user(*, session: Session, user_in: UserRegister, hashed_password: str) -> User:
    """Create the account (`hashed_password` was made in the password pool beforehand)."""
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


def find_login(*, session: Session, login: str, address: str) -> tuple[User | None, SignInKeys]:
    """The account a login names (loaded, for the password check that runs without a
    session) and its throttle keys; 429 while that account may not be tried from `address`."""
    user = get_user_by_login(session=session, login=login)
    keys = throttle.keys_for(account=throttle.account_name(user=user, login=login), address=address)
    throttle.refuse_if_waiting(session=session, keys=keys)
    if user is not None:
        session.expunge(user)  # stays loaded after the session closes
    return user, keys


def start_session(*, session: Session, user: User, keys: SignInKeys) -> tuple[str, AuthSession]:
    """After a correct password: forgive this address's failures and open a session."""
    throttle.record_success(session=session, keys=keys)
    return auth_sessions.create_session(session=session, user=user)


def set_password(*, session: Session, user_id: int, hashed_password: str, keep_token: str) -> None:
    """The new hash (from the password pool) replaces the old; every other session ends."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("User not found")
    user.hashed_password = hashed_password
    auth_sessions.revoke_user_sessions(session=session, user_id=user_id, keep_token=keep_token)
    session.commit()


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
    sealed = zero_access.zero_access_user_ids(session=session, user_ids=[user.id])
    return AdminUserPublic(
        **UserPublic.model_validate(user).model_dump(),
        allowed_models=allowed,
        zero_access=user.id in sealed,
    )


def list_users_for_admin(*, session: Session, limit: int, offset: int) -> AdminUsersPublic:
    count = session.scalar(select(func.count()).select_from(User)) or 0
    found = session.scalars(select(User).order_by(User.id).limit(limit).offset(offset))
    return AdminUsersPublic(
        data=[admin_view(session=session, user=user) for user in found], count=count
    )


def update_user_as_admin(
    *,
    session: Session,
    admin: User,
    user_id: int,
    update: AdminUserUpdate,
    hashed_password: str | None = None,
) -> AdminUserPublic:
    """`hashed_password` (from the password pool) is a reset: it ends the user's sessions."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("User not found")
    changes = update.model_dump(exclude_unset=True, exclude={"password"})
    if user.id == admin.id and (
        changes.get("is_active") is False or changes.get("is_admin") is False
    ):
        raise BadRequest("Admins cannot deactivate or demote themselves")
    if user.id == admin.id and hashed_password is not None:
        # Their own password needs the current one, like everyone's (POST /api/auth/password).
        raise BadRequest("Change your own password in Settings, with your current password")
    if "allowed_models" in changes:
        models = changes.pop("allowed_models") or []
        model_access.set_user_allowed_models(session=session, user=user, models=models)
    for field, value in changes.items():
        if value is not None:
            setattr(user, field, value)
    if hashed_password is not None:
        user.hashed_password = hashed_password
    if changes.get("is_active") is False or hashed_password is not None:
        auth_sessions.revoke_user_sessions(session=session, user_id=user.id)
    session.commit()
    return admin_view(session=session, user=user)
