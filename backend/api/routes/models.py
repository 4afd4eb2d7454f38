"""The models the caller may choose from."""

from fastapi import APIRouter

from backend.api.deps import CurrentUser
from backend.core.db import run_in_session
from backend.schemas import ModelsPublic
from backend.services import model_access

router = APIRouter(prefix="/models", tags=["models"])


@router.get("", response_model=ModelsPublic)
async def list_models(user: CurrentUser) -> ModelsPublic:
    return await run_in_session(model_access.models_for_user, user=user)
