"""The caller's own settings: provider key and URL, default model."""

from fastapi import APIRouter

from backend.api.deps import CurrentUser
from backend.core.db import run_in_session
from backend.schemas import SettingsPublic, SettingsUpdate
from backend.services import user_settings

router = APIRouter(prefix="/settings", tags=["settings"])


@router.get("", response_model=SettingsPublic)
async def read_settings(user: CurrentUser) -> SettingsPublic:
    own = await run_in_session(user_settings.get_user_settings, user_id=user.id)
    return user_settings.to_public(own)


@router.put("", response_model=SettingsPublic)
async def update_settings(user: CurrentUser, update: SettingsUpdate) -> SettingsPublic:
    return await run_in_session(user_settings.update_user_settings, user=user, update=update)
