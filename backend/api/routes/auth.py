"""Registration, login (cookie + bearer token), logout, and who am I."""

from datetime import datetime

from fastapi import APIRouter, Response, status
from starlette.concurrency import run_in_threadpool

from backend.api.deps import CurrentUser, TokenDep
from backend.core.config import settings
from backend.core.db import run_in_session
from backend.core.security import csrf_token_for
from backend.schemas import LoginRequest, LoginResponse, MessageOut, UserPublic, UserRegister
from backend.services import auth_sessions, users

router = APIRouter(prefix="/auth", tags=["auth"])


def _set_login_cookies(response: Response, *, token: str, expires_at: datetime) -> None:
    common = {"expires": expires_at, "secure": settings.cookie_secure, "samesite": "lax"}
    response.set_cookie(settings.SESSION_COOKIE_NAME, token, httponly=True, **common)
    # Readable by the page's JavaScript, which echoes it in X-CSRF-Token (double submit).
    response.set_cookie(settings.CSRF_COOKIE_NAME, csrf_token_for(token), httponly=False, **common)


@router.post("/register", status_code=status.HTTP_201_CREATED, response_model=UserPublic)
async def register(user_in: UserRegister) -> UserPublic:
    hashed = await run_in_threadpool(users.password_hash_for_registration, user_in=user_in)
    user = await run_in_session(users.register_user, user_in=user_in, hashed_password=hashed)
    return UserPublic.model_validate(user)


@router.post("/login", response_model=LoginResponse)
async def login(credentials: LoginRequest, response: Response) -> LoginResponse:
    found = await run_in_session(users.find_login, login=credentials.username)
    user = await run_in_threadpool(
        users.check_password, login=credentials.username, password=credentials.password, user=found
    )
    token, auth_session = await run_in_session(auth_sessions.create_session, user=user)
    _set_login_cookies(response, token=token, expires_at=auth_session.expires_at)
    return LoginResponse(
        access_token=token,
        expires_at=auth_session.expires_at,
        csrf_token=csrf_token_for(token),
        user=UserPublic.model_validate(user),
    )


@router.post("/logout", response_model=MessageOut)
async def logout(user: CurrentUser, token: TokenDep, response: Response) -> MessageOut:
    if token is not None:
        await run_in_session(auth_sessions.revoke_session, token=token[0])
    response.delete_cookie(settings.SESSION_COOKIE_NAME, samesite="lax")
    response.delete_cookie(settings.CSRF_COOKIE_NAME, samesite="lax")
    return MessageOut(message="Logged out")


@router.get("/me", response_model=UserPublic)
async def read_me(user: CurrentUser) -> UserPublic:
    return UserPublic.model_validate(user)
