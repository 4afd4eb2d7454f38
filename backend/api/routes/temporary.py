"""Temporary chats: answers to a conversation the page keeps, of which nothing is stored."""

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from backend.api.answers import answer_unstored
from backend.api.deps import CurrentUser
from backend.api.routes.messages import ANSWER_RESPONSES
from backend.core.db import run_quick_in_session
from backend.schemas import TemporaryChatRequest, ToolTurnPublic
from backend.services import temporary
from backend.services.answering import AnswerOptions

router = APIRouter(tags=["temporary chat"])


@router.post(
    "/temporary-chat", status_code=201, response_model=ToolTurnPublic, responses=ANSWER_RESPONSES
)
async def temporary_answer(
    request: Request, user: CurrentUser, body: TemporaryChatRequest
) -> ToolTurnPublic | StreamingResponse:
    """Answer the last question of `messages`, as JSON or streamed like any question.

    Nothing is stored: no conversation, message or answer (no tools are offered, as their
    log would be). The question counts toward the usage limits and the day's token usage."""
    turn = await run_quick_in_session(temporary.start_temporary_turn, user=user, body=body)
    return await answer_unstored(request, turn, AnswerOptions(keep=temporary.keep_nothing))
