"""Asking the model for a prepared turn, as one JSON answer or as server-sent events.

No database session is open in here while the model is awaited: the turn was prepared and
committed before, and the answer is stored afterwards in a new short transaction.
"""

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import StreamingResponse

from backend.core.db import run_quick_in_session
from backend.llm import client as llm
from backend.llm.client import Completion, LLMError
from backend.schemas import ChatTurnPublic
from backend.services import chat
from backend.services.chat import ChatTurn

logger = logging.getLogger(__name__)

EVENT_STREAM = "text/event-stream"


def wants_event_stream(request: Request) -> bool:
    return EVENT_STREAM in request.headers.get("accept", "")


def _log_upstream_failure(turn: ChatTurn, error: LLMError) -> None:
    fields = {**error.log_fields(), "model": error.model or turn.model}
    logger.warning("llm_failed", extra={**fields, "conversation_id": turn.conversation_id})


async def answer_as_json(turn: ChatTurn) -> ChatTurnPublic:
    try:
        completion = await llm.complete(
            provider=turn.provider, model=turn.model, messages=turn.prompt
        )
    except LLMError as error:
        _log_upstream_failure(turn, error)
        raise HTTPException(error.status_code, error.detail) from error
    return await run_quick_in_session(chat.finish_turn, turn=turn, completion=completion)


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, default=str)}\n\n"


async def _events(turn: ChatTurn) -> AsyncIterator[str]:
    user_message = turn.user_message.model_dump(mode="json")
    start = {"conversation_uuid": turn.conversation.uuid, "user_message": user_message}
    yield _event("start", {**start, "model": turn.model})
    try:
        completion: Completion | None = None
        async for item in llm.stream(
            provider=turn.provider, model=turn.model, messages=turn.prompt
        ):
            if isinstance(item, Completion):
                completion = item
            else:
                yield _event("delta", {"content": item})
        assert completion is not None  # llm.stream always ends with one or raises
        result = await run_quick_in_session(chat.finish_turn, turn=turn, completion=completion)
    except LLMError as error:
        _log_upstream_failure(turn, error)
        failure = {"detail": error.detail, "status": error.status_code}
    except Exception:  # the stream has started: report in-band rather than cut it
        logger.exception("answer_failed", extra={"conversation_id": turn.conversation_id})
        failure = {"detail": "The answer could not be saved", "status": 500}
    else:
        yield _event("done", result.model_dump(mode="json"))
        return
    yield _event("error", {**failure, "user_message": user_message})


def answer_as_event_stream(turn: ChatTurn) -> StreamingResponse:
    # no-cache and no proxy buffering, or deltas arrive all at once.
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(_events(turn), media_type=EVENT_STREAM, headers=headers)
