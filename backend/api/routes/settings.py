"""The caller's own settings: provider key and URL, default model."""

from fastapi import APIRouter

from backend.api.deps import CurrentUser, SessionDep
from backend.schemas import SettingsPublic, SettingsUpdate
from backend.services import user_settings

router = APIRouter(prefix="/settings", tags=["settings"])


@router.get("", response_model=SettingsPublic)
def read_settings(session: SessionDep, user: CurrentUser) -> SettingsPublic:
    return user_settings.to_public(
        user_settings.get_user_settings(session=session, user_id=user.id)
    )


@router.put("", response_model=SettingsPublic)
def update_settings(
    session: SessionDep, user: CurrentUser, update: SettingsUpdate
) -> SettingsPublic:
    return user_settings.update_user_settings(session=session, user=user, update=update)
