"""The models the caller may choose from."""

from fastapi import APIRouter

from backend.api.deps import CurrentUser, SessionDep
from backend.schemas import ModelPublic, ModelsPublic
from backend.services import model_access, user_settings

router = APIRouter(prefix="/models", tags=["models"])


@router.get("", response_model=ModelsPublic)
def list_models(session: SessionDep, user: CurrentUser) -> ModelsPublic:
    allowed = model_access.allowed_models(session=session, user=user)
    own = user_settings.get_user_settings(session=session, user_id=user.id)
    default = model_access.default_model_for(
        allowed=allowed, user_default=own.default_model if own else None
    )
    return ModelsPublic(data=[ModelPublic(id=name) for name in allowed], default_model=default)
