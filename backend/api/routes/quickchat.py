"""The minimal quick chat contract: `GET /chat/history` and `POST /chat/message`.

Logged-in callers use their own quick-chat conversation. Anonymous callers get one tied to
a random cookie, but only when ALLOW_ANONYMOUS_CHAT is on.
"""

import secrets

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.responses import JSONResponse

from backend.api.deps import OptionalUser
from backend.core.config import settings
from backend.core.db import run_in_session
from backend.core.security import hash_token
from backend.schemas import QuickChatExchange, QuickChatReply, QuickChatRequest
from backend.services import answering, quickchat, turns
from backend.services.answering import AnswerOptions, Failed
from backend.services.conversations import Owner

router = APIRouter(prefix="/chat", tags=["quick chat"])

ANONYMOUS_COOKIE = "openchat_anon"
ERROR_RESPONSES: dict[int | str, dict] = {
    400: {"description": 'Invalid body: {"status": "error", "message": "..."}'},
    502: {"description": 'The model failed: {"status": "error", "message": "..."}'},
}


def _owner(request: Request, response: Response, user: OptionalUser) -> Owner:
    if user is not None:
        return Owner(user=user)
    if not settings.ALLOW_ANONYMOUS_CHAT:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Not authenticated")
    token = request.cookies.get(ANONYMOUS_COOKIE)
    if not token:
        token = secrets.token_urlsafe(32)
        response.set_cookie(
            ANONYMOUS_COOKIE, token, httponly=True, samesite="lax", secure=settings.cookie_secure
        )
    return Owner(anonymous_key=hash_token(token))


@router.get("/history", response_model=list[QuickChatExchange], response_model_by_alias=True)
async def chat_history(
    request: Request, response: Response, user: OptionalUser
) -> list[QuickChatExchange]:
    owner = _owner(request, response, user)
    return await run_in_session(quickchat.history, owner=owner)


@router.post("/message", response_model=QuickChatReply, responses=ERROR_RESPONSES)
async def chat_message(
    request: Request, response: Response, user: OptionalUser, body: QuickChatRequest
) -> QuickChatReply | JSONResponse:
    owner = _owner(request, response, user)
    turn = await run_in_session(turns.start_quick_turn, owner=owner, content=body.message)
    outcome = await answering.answer_at_once(turn, AnswerOptions())
    if isinstance(outcome, Failed):
        failure = JSONResponse(
            {"status": "error", "message": outcome.detail}, status_code=outcome.status
        )
        for cookie in response.headers.getlist("set-cookie"):  # keep a new anonymous cookie
            failure.headers.append("set-cookie", cookie)
        return failure
    assert outcome.result.assistant_message is not None  # no tools were offered
    return QuickChatReply(response=outcome.result.assistant_message.content)
