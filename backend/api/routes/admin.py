"""Administration: users (active, admin, allowed models), the global model list, and whether
zero-access conversations are required for everyone."""

from typing import Annotated

from fastapi import APIRouter, Query

from backend.api.deps import AdminUser
from backend.api.params import Offset, UserId
from backend.core.db import run_in_session
from backend.core.password_pool import password_pool
from backend.core.security import hash_password
from backend.schemas import (
    AdminModels,
    AdminModelsPublic,
    AdminUserPublic,
    AdminUsersPublic,
    AdminUserUpdate,
    ZeroAccessRequirement,
    ZeroAccessRequirementPublic,
)
from backend.services import model_access, server_settings, users

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get("/users", response_model=AdminUsersPublic)
async def list_users(
    admin: AdminUser,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> AdminUsersPublic:
    return await run_in_session(users.list_users_for_admin, limit=limit, offset=offset)


@router.patch("/users/{user_id}", response_model=AdminUserPublic)
async def update_user(
    admin: AdminUser, user_id: UserId, update: AdminUserUpdate
) -> AdminUserPublic:
    """A `password` resets the user's password and ends all of their sessions."""
    hashed = None
    if update.password is not None:
        hashed = await password_pool.run(hash_password, update.password)
    return await run_in_session(
        users.update_user_as_admin,
        admin=admin,
        user_id=user_id,
        update=update,
        hashed_password=hashed,
    )


@router.get("/models", response_model=AdminModelsPublic)
async def read_models(admin: AdminUser) -> AdminModelsPublic:
    return await run_in_session(model_access.global_models_public)


@router.put("/models", response_model=AdminModelsPublic)
async def replace_models(admin: AdminUser, body: AdminModels) -> AdminModelsPublic:
    return await run_in_session(model_access.set_global_models, models=body.models)


@router.get("/zero-access", response_model=ZeroAccessRequirementPublic)
async def read_zero_access_requirement(admin: AdminUser) -> ZeroAccessRequirementPublic:
    return await run_in_session(server_settings.zero_access_requirement)


@router.put(
    "/zero-access",
    response_model=ZeroAccessRequirementPublic,
    responses={409: {"description": "The server's configuration (ZERO_ACCESS_REQUIRED) decides"}},
)
async def set_zero_access_requirement(
    admin: AdminUser, body: ZeroAccessRequirement
) -> ZeroAccessRequirementPublic:
    """Required: every user who has not turned zero-access on is asked to at their next
    sign-in (which turns it on and shows their recovery key) and cannot write content until
    then; users who have it keep it and cannot turn it off. Not required: nothing changes for
    anyone, and users may turn it off again."""
    return await run_in_session(
        server_settings.set_zero_access_required, admin=admin, required=body.required
    )
