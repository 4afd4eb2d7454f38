"""Provider connections an admin adds in the UI, and which connection answers a model.

Precedence, for each answer: a user's own connection (when ALLOW_USER_CONNECTIONS lets them
have one); else the first enabled admin connection that offers the model; else the server's
connection from the environment (OPENAI_API_KEY / OPENAI_BASE_URL), or the built-in mock
when it has no key. The models connections offer are added to the global model list.

Connections are read for every question, so the enabled ones are kept for a few seconds (a
change made through this process is seen at once; other workers see it within the TTL).
"""

import json
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.core.config import egress_policy_of, settings
from backend.core.egress import InvalidURL, check_url
from backend.llm.client import Provider
from backend.models import ProviderConnection
from backend.schemas import (
    ConnectionCreate,
    ConnectionPublic,
    ConnectionsPublic,
    ConnectionUpdate,
)
from backend.services.errors import Conflict, NotFound, Unprocessable

CONNECTIONS_TTL_SECONDS = 5.0


@dataclass(frozen=True)
class _Enabled:
    base_url: str
    api_key: str | None
    models: tuple[str, ...]


_cached: tuple[float, list[_Enabled]] | None = None


def forget_cached_connections() -> None:
    global _cached
    _cached = None


def key_hint(key: str | None) -> str | None:
    """The last four characters of a key (only "…" for a key too short to show any)."""
    if not key:
        return None
    return f"…{key[-4:]}" if len(key) >= 12 else "…"


def _models_of(row: ProviderConnection) -> list[str]:
    try:
        models = json.loads(row.models or "[]")
    except ValueError:
        return []
    return [name for name in models if isinstance(name, str)] if isinstance(models, list) else []


def _public(row: ProviderConnection) -> ConnectionPublic:
    return ConnectionPublic(
        id=row.id,
        name=row.name,
        base_url=row.base_url,
        has_api_key=bool(row.api_key),
        api_key_hint=key_hint(row.api_key),
        models=_models_of(row),
        enabled=row.enabled,
    )


def server_connection_label() -> str:
    if settings.use_mock_llm:
        return "mock"
    return Provider(api_key="", base_url=settings.OPENAI_BASE_URL).host


def list_connections(*, session: Session) -> ConnectionsPublic:
    rows = session.scalars(select(ProviderConnection).order_by(ProviderConnection.id))
    return ConnectionsPublic(
        data=[_public(row) for row in rows],
        server_connection=server_connection_label(),
        guarded=settings.GUARD_ADMIN_CONNECTIONS,
    )


def check_admin_url(url: str) -> None:
    """With GUARD_ADMIN_CONNECTIONS, admins' URLs are held to the users' rules when stored."""
    if not settings.GUARD_ADMIN_CONNECTIONS:
        return
    try:
        check_url(url, policy=egress_policy_of(settings))
    except InvalidURL as error:
        raise Unprocessable(str(error)) from None


def _saved(session: Session, row: ProviderConnection) -> ConnectionPublic:
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict("A connection with this name exists already") from None
    _forget_everything()
    return _public(row)


def _forget_everything() -> None:
    from backend.services import model_access  # model lists include connections' models

    forget_cached_connections()
    model_access.forget_cached_models()


def create_connection(*, session: Session, body: ConnectionCreate) -> ConnectionPublic:
    check_admin_url(body.base_url)
    row = ProviderConnection(
        name=body.name,
        base_url=body.base_url,
        api_key=body.api_key or None,
        models=json.dumps(list(dict.fromkeys(body.models))),
        enabled=body.enabled,
    )
    session.add(row)
    return _saved(session, row)


def get_connection(*, session: Session, connection_id: int) -> ProviderConnection:
    row = session.get(ProviderConnection, connection_id)
    if row is None:
        raise NotFound("Connection not found")
    return row


def update_connection(
    *, session: Session, connection_id: int, body: ConnectionUpdate
) -> ConnectionPublic:
    row = get_connection(session=session, connection_id=connection_id)
    changes = body.model_dump(exclude_unset=True)
    if changes.get("base_url"):
        check_admin_url(changes["base_url"])
    for name in ("name", "base_url", "enabled"):
        if changes.get(name) is not None:
            setattr(row, name, changes[name])
    if "api_key" in changes:
        row.api_key = changes["api_key"] or None  # "" or null removes the key
    if changes.get("models") is not None:
        row.models = json.dumps(list(dict.fromkeys(changes["models"])))
    return _saved(session, row)


def delete_connection(*, session: Session, connection_id: int) -> None:
    session.delete(get_connection(session=session, connection_id=connection_id))
    session.commit()
    _forget_everything()


def _enabled(session: Session) -> list[_Enabled]:
    global _cached
    if _cached and time.monotonic() - _cached[0] < CONNECTIONS_TTL_SECONDS:
        return _cached[1]
    rows = session.scalars(
        select(ProviderConnection)
        .where(ProviderConnection.enabled.is_(True))
        .order_by(ProviderConnection.id)
    )
    found = [
        _Enabled(base_url=row.base_url, api_key=row.api_key, models=tuple(_models_of(row)))
        for row in rows
    ]
    _cached = (time.monotonic(), found)
    return found


def connection_models(*, session: Session) -> list[str]:
    """The models the enabled connections offer, in order, without repeats."""
    return list(dict.fromkeys(name for c in _enabled(session) for name in c.models))


def provider_for(*, base_url: str, api_key: str | None) -> Provider:
    """An admin connection's provider: paid by the server; guarded only if the admin said so."""
    return Provider(
        api_key=api_key or "none",
        base_url=base_url,
        guarded=settings.GUARD_ADMIN_CONNECTIONS,
    )


def provider_for_model(*, session: Session, model: str) -> Provider | None:
    """The first enabled admin connection offering this model, or None."""
    for connection in _enabled(session):
        if model in connection.models:
            return provider_for(base_url=connection.base_url, api_key=connection.api_key)
    return None
