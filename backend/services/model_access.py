"""Which models a user may use, and which one answers a given question."""

import time

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from backend.core.config import settings
from backend.models import AvailableModel, User, UserAllowedModel, UserSettings
from backend.schemas import AdminModelsPublic, ModelPublic, ModelsPublic
from backend.services import connections
from backend.services.errors import Forbidden

# The global list is read for every question and changes rarely, so it is kept for a few
# seconds. A change made through this process is seen at once; other worker processes see it
# within GLOBAL_MODELS_TTL_SECONDS.
GLOBAL_MODELS_TTL_SECONDS = 5.0
_cached_global_models: tuple[float, list[str]] | None = None


def forget_cached_models() -> None:
    global _cached_global_models
    _cached_global_models = None


def global_models(*, session: Session) -> list[str]:
    """The admin's list (or the AVAILABLE_MODELS setting until an admin stores one), then
    the models admin connections offer."""
    global _cached_global_models
    if (
        _cached_global_models
        and time.monotonic() - _cached_global_models[0] < GLOBAL_MODELS_TTL_SECONDS
    ):
        return list(_cached_global_models[1])
    stored = session.scalars(select(AvailableModel.name).order_by(AvailableModel.position))
    models = list(stored) or settings.available_models
    # What admin connections offer is on the list too (services/connections.py).
    models += [
        name for name in connections.connection_models(session=session) if name not in models
    ]
    _cached_global_models = (time.monotonic(), models)
    return list(models)


def global_models_public(*, session: Session) -> AdminModelsPublic:
    """The list the admin edits: without the connections' models (they are set per
    connection, and come and go with it)."""
    stored = session.scalars(select(AvailableModel.name).order_by(AvailableModel.position))
    models = list(stored) or settings.available_models
    return AdminModelsPublic(models=models, default_model=settings.default_model)


def set_global_models(*, session: Session, models: list[str]) -> AdminModelsPublic:
    names = list(dict.fromkeys(models))  # de-duplicated, order kept
    session.execute(delete(AvailableModel))
    session.add_all(AvailableModel(name=name, position=i) for i, name in enumerate(names))
    session.commit()
    forget_cached_models()
    return AdminModelsPublic(models=names, default_model=settings.default_model)


# Built once: every question checks the asker's list.
_ALLOWED_FOR_USER = (
    select(UserAllowedModel.model_name)
    .where(UserAllowedModel.user_id == bindparam("user_id"))
    .order_by(UserAllowedModel.model_name)
)


def user_allowed_list(*, session: Session, user_id: int) -> list[str]:
    return list(session.scalars(_ALLOWED_FOR_USER, {"user_id": user_id}))


def set_user_allowed_models(*, session: Session, user: User, models: list[str]) -> None:
    """An empty list removes the personal list, so the global one applies again."""
    session.execute(delete(UserAllowedModel).where(UserAllowedModel.user_id == user.id))
    session.add_all(
        UserAllowedModel(user_id=user.id, model_name=name) for name in dict.fromkeys(models)
    )


def allowed_models(*, session: Session, user: User | None) -> list[str]:
    personal = user_allowed_list(session=session, user_id=user.id) if user else []
    return personal or global_models(session=session)


def default_model_for(*, allowed: list[str], user_default: str | None) -> str | None:
    """The model used when nothing is chosen: the user's default, else the server's."""
    for candidate in (user_default, settings.default_model):
        if candidate and candidate in allowed:
            return candidate
    return allowed[0] if allowed else None


def models_for_user(*, session: Session, user: User) -> ModelsPublic:
    """What the model picker shows: the allowed models and the one used by default."""
    allowed = allowed_models(session=session, user=user)
    own = session.execute(
        select(
            UserSettings.default_model, UserSettings.openai_api_key, UserSettings.openai_base_url
        ).where(UserSettings.user_id == user.id)
    ).first()
    user_default = own.default_model if own else None
    own_connection = settings.ALLOW_USER_CONNECTIONS and own and (own[1] or own[2])
    offered = set(connections.connection_models(session=session))

    def offline(name: str) -> bool:
        """Answered by the mock: nobody's real connection offers it."""
        return settings.use_mock_llm and not own_connection and name not in offered

    return ModelsPublic(
        data=[ModelPublic(id=name, offline=offline(name)) for name in allowed],
        default_model=default_model_for(allowed=allowed, user_default=user_default),
    )


def ensure_allowed(*, session: Session, user: User | None, model: str) -> None:
    if model not in allowed_models(session=session, user=user):
        raise Forbidden(f"You are not allowed to use the model '{model}'")


def resolve_model(
    *,
    session: Session,
    user: User | None,
    conversation_default: str | None,
    override: str | None,
    user_default: str | None,
) -> str:
    """Message override, else conversation default, else user default, else server default."""
    allowed = allowed_models(session=session, user=user)
    for explicit in (override, conversation_default, user_default):
        if explicit:
            if explicit not in allowed:
                raise Forbidden(f"You are not allowed to use the model '{explicit}'")
            return explicit
    model = default_model_for(allowed=allowed, user_default=None)
    if model is None:
        raise Forbidden("No model is available to you; ask an administrator")
    return model
