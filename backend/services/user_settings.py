"""Per-user settings: a personal provider (API key, base URL) and a default model."""

from typing import Any

from sqlalchemy import Row, bindparam, select
from sqlalchemy.orm import Session

from backend.core.config import egress_policy_of, settings
from backend.core.egress import InvalidURL, check_url
from backend.llm.client import Provider, server_provider
from backend.models import User, UserSettings
from backend.schemas import SettingsPublic, SettingsUpdate
from backend.services import connections, model_access
from backend.services.errors import Forbidden, Unprocessable

_SETTINGS_OF_USER = select(UserSettings).where(UserSettings.user_id == bindparam("user_id"))
# Built once: every question reads the asker's settings (as a plain row: cheaper than an
# ORM object).
_SETTINGS_ROW_OF_USER = select(*UserSettings.__table__.c).where(
    UserSettings.__table__.c.user_id == bindparam("user_id")
)


def get_user_settings(*, session: Session, user_id: int) -> UserSettings | None:
    return session.scalars(_SETTINGS_OF_USER, {"user_id": user_id}).first()


def to_public(user_settings: UserSettings | None) -> SettingsPublic:
    key = user_settings.openai_api_key if user_settings else None
    return SettingsPublic(
        openai_base_url=user_settings.openai_base_url if user_settings else None,
        default_model=user_settings.default_model if user_settings else None,
        has_api_key=bool(key),
        api_key_hint=connections.key_hint(key),
        user_connections_allowed=settings.ALLOW_USER_CONNECTIONS,
    )


def _check_connection(changes: dict[str, Any]) -> None:
    """A personal key or URL only where the admin allows them, and only to allowed places."""
    if not (changes.get("openai_api_key") or changes.get("openai_base_url")):
        return  # clearing them is always allowed
    if not settings.ALLOW_USER_CONNECTIONS:
        raise Forbidden(
            "Personal provider connections are turned off on this server; "
            "an administrator can allow them."
        )
    if url := changes.get("openai_base_url"):
        try:
            check_url(url, policy=egress_policy_of(settings))
        except InvalidURL as error:
            raise Unprocessable(str(error)) from None


def update_user_settings(*, session: Session, user: User, update: SettingsUpdate) -> SettingsPublic:
    changes = update.model_dump(exclude_unset=True)
    _check_connection(changes)
    if changes.get("default_model"):
        model_access.ensure_allowed(session=session, user=user, model=changes["default_model"])
    user_settings = get_user_settings(session=session, user_id=user.id)
    if user_settings is None:
        user_settings = UserSettings(user_id=user.id)
        session.add(user_settings)
    for field, value in changes.items():
        setattr(user_settings, field, value or None)  # "" clears, like null
    session.commit()
    return to_public(user_settings)


def provider_for(
    *, session: Session, user_settings: "UserSettings | Row[Any] | None", model: str
) -> Provider:
    """The user's own provider when they configured one and the server allows it, else the
    admin connection offering the model, else the server's (see services/connections.py).

    A personal base URL never receives the server's key (a user could point it anywhere) and
    goes through the egress guard; answers from a personal key are not paid by the server.
    Settings stored while personal connections were allowed are ignored once they are not.
    """
    if (
        not settings.ALLOW_USER_CONNECTIONS
        or user_settings is None
        or not (user_settings.openai_api_key or user_settings.openai_base_url)
    ):
        return connections.provider_for_model(session=session, model=model) or server_provider()
    if user_settings.openai_base_url:
        return Provider(
            api_key=user_settings.openai_api_key or "none",
            base_url=user_settings.openai_base_url,
            guarded=True,
            paid_by_server=False,
        )
    return Provider(
        api_key=user_settings.openai_api_key or "",
        base_url=settings.OPENAI_BASE_URL,
        paid_by_server=False,
    )


def settings_of(*, session: Session, user: User | None) -> Row[Any] | None:
    """The user's settings for reading (None for anonymous callers and users without any)."""
    if user is None:
        return None
    return session.connection().execute(_SETTINGS_ROW_OF_USER, {"user_id": user.id}).first()
