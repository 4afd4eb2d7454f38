"""Server-wide settings an admin changes in the admin UI, stored in the database.

One today: whether zero-access conversations are required for everyone (docs/PRIVACY.md).
The environment variable ZERO_ACCESS_REQUIRED, when set, wins over the stored choice. The
value is read at every sign-in and by every request of a user who has not turned the mode
on, so it is kept for a few seconds: a change made through this process is seen at once,
other worker processes see it within REQUIRED_TTL_SECONDS.
"""

import json
import logging
import time

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.core.config import settings
from backend.models import ServerSetting, User, UserContentKey, utcnow
from backend.schemas import ZeroAccessRequirementPublic
from backend.services.errors import Conflict

logger = logging.getLogger(__name__)

ZERO_ACCESS_REQUIRED = "zero_access_required"
REQUIRED_TTL_SECONDS = 5.0
_cached_required: tuple[float, bool] | None = None


def forget_cached() -> None:
    global _cached_required
    _cached_required = None


def _stored(*, session: Session, name: str) -> ServerSetting | None:
    return session.get(ServerSetting, name)


def zero_access_required(*, session: Session) -> bool:
    """Whether every user must have zero-access on: the configuration's, else the admin's."""
    global _cached_required
    if settings.ZERO_ACCESS_REQUIRED is not None:
        return settings.ZERO_ACCESS_REQUIRED
    now = time.monotonic()
    if _cached_required is not None and now - _cached_required[0] < REQUIRED_TTL_SECONDS:
        return _cached_required[1]
    stored = session.scalar(
        select(ServerSetting.value).where(ServerSetting.name == ZERO_ACCESS_REQUIRED)
    )
    required = stored is not None and json.loads(stored) is True
    _cached_required = (now, required)
    return required


def zero_access_requirement(*, session: Session) -> ZeroAccessRequirementPublic:
    """What the admin UI shows: the value, where it comes from, who set it and when."""
    users = session.scalar(select(func.count()).select_from(User)) or 0
    sealed = session.scalar(select(func.count()).select_from(UserContentKey)) or 0
    row = _stored(session=session, name=ZERO_ACCESS_REQUIRED)
    by = None
    if row is not None and row.updated_by_id is not None:
        by = session.scalar(select(User.username).where(User.id == row.updated_by_id))
    if settings.ZERO_ACCESS_REQUIRED is not None:
        required, source = settings.ZERO_ACCESS_REQUIRED, "configuration"
    elif row is not None:
        required, source = json.loads(row.value) is True, "admin"
    else:
        required, source = False, "default"
    return ZeroAccessRequirementPublic(
        required=required,
        source=source,  # type: ignore[arg-type]
        updated_at=row.updated_at if row is not None else None,
        updated_by=by,
        users_without=max(users - sealed, 0),
    )


def set_zero_access_required(
    *, session: Session, admin: User, required: bool
) -> ZeroAccessRequirementPublic:
    """The admin's choice, stored with who made it; 409 while the configuration decides."""
    if settings.ZERO_ACCESS_REQUIRED is not None:
        raise Conflict(
            "The server's configuration sets this (ZERO_ACCESS_REQUIRED); "
            "change it there and restart the server."
        )
    row = _stored(session=session, name=ZERO_ACCESS_REQUIRED)
    before = row is not None and json.loads(row.value) is True
    if row is None:
        row = ServerSetting(name=ZERO_ACCESS_REQUIRED, value="false")
        session.add(row)
    row.value = json.dumps(required)
    row.updated_by_id = admin.id
    row.updated_at = utcnow()
    session.commit()
    forget_cached()
    logger.info(
        "server_setting_changed",
        extra={
            "setting": ZERO_ACCESS_REQUIRED,
            "before": before,
            "after": required,
            "admin_id": admin.id,
            "admin": admin.username,
        },
    )
    return zero_access_requirement(session=session)
