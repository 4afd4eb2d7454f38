"""Usage analytics (own and, for admins, everyone's) and usage limits."""

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from backend.api.deps import AdminUser, CurrentUser
from backend.api.params import UserId, UserIdFilter
from backend.core.db import run_in_session
from backend.schemas import (
    MessageOut,
    MyLimitsPublic,
    UsageLimitsIn,
    UsageLimitsPublic,
    UsagePublic,
)
from backend.services import quotas, usage

router = APIRouter(tags=["usage"])

Start = Annotated[date | None, Query(description="First day (UTC), default 29 days before end")]
End = Annotated[date | None, Query(description="Last day (UTC), default today")]


@router.get("/usage", response_model=UsagePublic)
async def my_usage(user: CurrentUser, start: Start = None, end: End = None) -> UsagePublic:
    """The caller's daily usage per model, per-day totals and totals for the range."""
    return await run_in_session(
        usage.usage_report, user_id=user.id, start=start, end=end, admin=False
    )


@router.get("/usage/limits", response_model=MyLimitsPublic)
async def my_limits(user: CurrentUser) -> MyLimitsPublic:
    """The limits that apply to the caller and how much of them is used."""
    return await run_in_session(quotas.my_limits, user_id=user.id)


@router.get("/admin/usage", response_model=UsagePublic)
async def all_usage(
    admin: AdminUser,
    start: Start = None,
    end: End = None,
    user_id: UserIdFilter = None,
) -> UsagePublic:
    """Everyone's usage (or one user's), with per-user totals. Admins only."""
    return await run_in_session(
        usage.usage_report, user_id=user_id, start=start, end=end, admin=True
    )


@router.get("/admin/limits/default", response_model=UsageLimitsPublic)
async def read_default_limits(admin: AdminUser) -> UsageLimitsPublic:
    return await run_in_session(quotas.read_limits, user_id=None)


@router.put("/admin/limits/default", response_model=UsageLimitsPublic)
async def set_default_limits(admin: AdminUser, body: UsageLimitsIn) -> UsageLimitsPublic:
    """Limits for every user without their own value; null = unlimited."""
    return await run_in_session(quotas.set_limits, user_id=None, limits=body)


@router.get("/admin/users/{user_id}/limits", response_model=UsageLimitsPublic)
async def read_user_limits(admin: AdminUser, user_id: UserId) -> UsageLimitsPublic:
    return await run_in_session(quotas.read_limits, user_id=user_id)


@router.put("/admin/users/{user_id}/limits", response_model=UsageLimitsPublic)
async def set_user_limits(
    admin: AdminUser, user_id: UserId, body: UsageLimitsIn
) -> UsageLimitsPublic:
    """This user's own limits; a null field falls back to the default."""
    return await run_in_session(quotas.set_limits, user_id=user_id, limits=body)


@router.delete("/admin/users/{user_id}/limits", response_model=MessageOut)
async def clear_user_limits(admin: AdminUser, user_id: UserId) -> MessageOut:
    await run_in_session(quotas.set_limits, user_id=user_id, limits=UsageLimitsIn())
    return MessageOut(message="The default limits apply to this user again")
