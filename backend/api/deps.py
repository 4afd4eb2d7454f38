"""Dependencies shared by the routes: caller identity, CSRF, admin check.

There is deliberately no request-wide database session dependency. FastAPI runs a sync
dependency's setup and teardown and the route in separate worker-thread hops, so a read
transaction would stay open between the route's hop and the teardown's, while its thread
serves other requests. The store serializes transactions behind a per-process lock, so that
parks the store (and a pooled connection) until a thread frees up; under the 50-user benchmark
it exhausted the pool (30 s timeouts). Routes instead run each unit of database work with
`run_in_session`, which opens, commits or rolls back, and closes within one hop.
"""

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from backend.core.config import settings
from backend.core.db import run_quick_in_session
from backend.core.security import csrf_token_matches
from backend.models import User
from backend.services import zero_access
from backend.services.conversations import Owner

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
CSRF_HEADER = "X-CSRF-Token"

# Dependencies are `async def` so they run on the event loop instead of costing a thread-pool
# hop each; the one that reads the database hands that read to `run_quick_in_session`.

bearer_scheme = HTTPBearer(auto_error=False, description="The access_token from /api/auth/login")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


def _token_of(
    request: Request, bearer: HTTPAuthorizationCredentials | None
) -> tuple[str, bool] | None:
    """The caller's session token and whether it came from the cookie."""
    if bearer is not None:
        return bearer.credentials, False
    cookie = request.cookies.get(settings.SESSION_COOKIE_NAME)
    return (cookie, True) if cookie else None


async def session_token(request: Request, bearer: BearerDep) -> tuple[str, bool] | None:
    return _token_of(request, bearer)


TokenDep = Annotated[tuple[str, bool] | None, Depends(session_token)]


async def get_optional_user(request: Request, bearer: BearerDep) -> User | None:
    """The logged-in user, or None without credentials. Invalid credentials are a 401.

    The lookup is one short transaction of its own, closed before the route runs. (Each
    level of dependencies costs FastAPI tens of microseconds per request: this chain, run by
    nearly every request, is kept short.)
    """
    token = _token_of(request, bearer)
    if token is None:
        return None
    value, from_cookie = token
    # Cookies are sent by browsers on their own; unsafe requests must prove same-origin.
    if from_cookie and request.method not in SAFE_METHODS and not csrf_token_matches(
        session_token=value,
        header=request.headers.get(CSRF_HEADER),
        cookie=request.cookies.get(settings.CSRF_COOKIE_NAME),
    ):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Missing or invalid CSRF token")
    found = await run_quick_in_session(zero_access.session_for_token, token=value)
    user = found[0] if found is not None else None
    if found is None or user is None or not user.is_active:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Session expired or revoked; log in again",
            headers={"WWW-Authenticate": "Bearer"},
        )
    # Zero-access: this session's content key (if it holds one) for this request only.
    zero_access.enter_request(user=user, token=value, row=found[1], awaited=found[2])
    return user


OptionalUser = Annotated[User | None, Depends(get_optional_user)]


def _required(user: User | None) -> User:
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Not authenticated",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


async def get_current_user(user: OptionalUser) -> User:
    return _required(user)


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_current_admin(user: CurrentUser) -> User:
    if not user.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Administrator rights required")
    return user


AdminUser = Annotated[User, Depends(get_current_admin)]


async def client_address(request: Request) -> str:
    """The caller's address as uvicorn reports it: the peer, or behind a reverse proxy
    (with --proxy-headers and --forwarded-allow-ips naming that proxy) the forwarded one."""
    return request.client.host if request.client else "unknown"


ClientAddress = Annotated[str, Depends(client_address)]


async def get_owner(user: OptionalUser) -> Owner:
    return Owner(user=_required(user))


CurrentOwner = Annotated[Owner, Depends(get_owner)]
