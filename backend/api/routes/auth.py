"""Registration, login (cookie + bearer token), logout, password change, who am I."""

from datetime import datetime
from typing import Literal, TypedDict

from fastapi import APIRouter, Response, status

from backend.api.deps import ClientAddress, CurrentUser, TokenDep
from backend.core.config import settings
from backend.core.db import run_in_session
from backend.core.security import csrf_token_for
from backend.schemas import (
    LoginRequest,
    LoginResponse,
    MessageOut,
    PasswordChange,
    UserPublic,
    UserRegister,
)
from backend.services import auth_sessions, sign_in

router = APIRouter(prefix="/auth", tags=["auth"])


class _CookieOptions(TypedDict):
    expires: datetime
    secure: bool
    samesite: Literal["lax"]


def _set_login_cookies(response: Response, *, token: str, expires_at: datetime) -> None:
    common = _CookieOptions(expires=expires_at, secure=settings.cookie_secure, samesite="lax")
    response.set_cookie(settings.SESSION_COOKIE_NAME, token, httponly=True, **common)
    # Readable by the page's JavaScript, which echoes it in X-CSRF-Token (double submit).
    response.set_cookie(settings.CSRF_COOKIE_NAME, csrf_token_for(token), httponly=False, **common)


def _clear_login_cookies(response: Response) -> None:
    response.delete_cookie(settings.SESSION_COOKIE_NAME, samesite="lax")
    response.delete_cookie(settings.CSRF_COOKIE_NAME, samesite="lax")


@router.post("/register", status_code=status.HTTP_201_CREATED, response_model=UserPublic)
async def register(user_in: UserRegister, address: ClientAddress) -> UserPublic:
    user = await sign_in.register(user_in=user_in, address=address)
    return UserPublic.model_validate(user)


@router.post("/login", response_model=LoginResponse)
async def login(
    credentials: LoginRequest, response: Response, address: ClientAddress
) -> LoginResponse:
    token, auth_session, user, recovery_key = await sign_in.log_in(
        login=credentials.username, password=credentials.password, address=address
    )
    _set_login_cookies(response, token=token, expires_at=auth_session.expires_at)
    return LoginResponse(
        access_token=token,
        expires_at=auth_session.expires_at,
        csrf_token=csrf_token_for(token),
        user=UserPublic.model_validate(user),
        recovery_key=recovery_key,
    )


@router.post("/logout", response_model=MessageOut)
async def logout(user: CurrentUser, token: TokenDep, response: Response) -> MessageOut:
    if token is not None:
        await run_in_session(auth_sessions.revoke_session, token=token[0])
    _clear_login_cookies(response)
    return MessageOut(message="Logged out")


@router.post("/logout-everywhere", response_model=MessageOut)
async def logout_everywhere(user: CurrentUser, response: Response) -> MessageOut:
    """Ends every session of the caller, this one included."""
    await sign_in.sign_out_everywhere(user=user)
    _clear_login_cookies(response)
    return MessageOut(message="Signed out everywhere")


@router.post("/password", response_model=MessageOut)
async def change_password(
    body: PasswordChange, user: CurrentUser, token: TokenDep, address: ClientAddress
) -> MessageOut:
    """Needs the current password; this session stays, every other one ends."""
    await sign_in.change_password(
        user=user,
        token=token[0] if token else "",  # (CurrentUser means there is one)
        current_password=body.current_password,
        new_password=body.new_password,
        address=address,
    )
    return MessageOut(message="Password changed; your other sessions were signed out")


@router.get("/me", response_model=UserPublic)
async def read_me(user: CurrentUser) -> UserPublic:
    return UserPublic.model_validate(user)
