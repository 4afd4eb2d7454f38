"""Administration: users (active, admin, allowed models) and the global model list."""

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from backend.api.deps import AdminUser, SessionDep
from backend.core.config import settings
from backend.models import User
from backend.schemas import (
    AdminModels,
    AdminModelsPublic,
    AdminUserPublic,
    AdminUsersPublic,
    AdminUserUpdate,
    UserPublic,
)
from backend.services import model_access, users

router = APIRouter(prefix="/admin", tags=["admin"])


def _admin_view(session: Session, user: User) -> AdminUserPublic:
    allowed = model_access.user_allowed_list(session=session, user_id=user.id)
    public = UserPublic.model_validate(user).model_dump()
    return AdminUserPublic(**public, allowed_models=allowed)


@router.get("/users", response_model=AdminUsersPublic)
def list_users(
    session: SessionDep,
    admin: AdminUser,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> AdminUsersPublic:
    found, count = users.list_users(session=session, limit=limit, offset=offset)
    return AdminUsersPublic(data=[_admin_view(session, user) for user in found], count=count)


@router.patch("/users/{user_id}", response_model=AdminUserPublic)
def update_user(
    session: SessionDep, admin: AdminUser, user_id: int, update: AdminUserUpdate
) -> AdminUserPublic:
    user = users.update_user_as_admin(session=session, admin=admin, user_id=user_id, update=update)
    return _admin_view(session, user)


@router.get("/models", response_model=AdminModelsPublic)
def read_models(session: SessionDep, admin: AdminUser) -> AdminModelsPublic:
    models = model_access.global_models(session=session)
    return AdminModelsPublic(models=models, default_model=settings.DEFAULT_MODEL)


@router.put("/models", response_model=AdminModelsPublic)
def replace_models(session: SessionDep, admin: AdminUser, body: AdminModels) -> AdminModelsPublic:
    models = model_access.set_global_models(session=session, models=body.models)
    return AdminModelsPublic(models=models, default_model=settings.DEFAULT_MODEL)
