"""A built-in OpenAI-compatible chat API that answers deterministically, offline.

In mock mode the service's own `openai` client talks to this app exactly as it would to a
real provider, so the real client code runs in every test and demo. It is also mounted at
/mock-openai/v1 for anyone who wants to point another client at it.

Prompts can steer it, which the tests and the frontend use to show error handling:
`[mock-error:429]` (any 4xx or 5xx status) answers with that error, `[mock-break]` cuts the
stream off half-way.
"""

import asyncio
import hashlib
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from backend.core.config import settings

MOCK_MODELS = ["gpt-4o-mini", "gpt-4o", "mock-model"]
_ERROR_TRIGGER = re.compile(r"\[mock-error:([45]\d\d)\]")  # client and server errors only
_TOKEN = re.compile(r"\S+\s*")


def count_tokens(text: str) -> int:
    """The mock's tokenizer: one token per word (with its trailing space)."""
    return len(_TOKEN.findall(text))


def split_tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def prompt_tokens(messages: list[dict[str, Any]]) -> int:
    # Like real chat models, each message costs a few tokens of framing.
    return sum(count_tokens(str(message.get("content") or "")) + 3 for message in messages) + 3


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return str(message.get("content") or "")
    return ""


def mock_answer(messages: list[dict[str, Any]]) -> str:
    """The same conversation always gets the same answer."""
    question = " ".join(last_user_text(messages).split())
    digest = hashlib.sha256(question.encode()).hexdigest()[:8]
    quoted = question if len(question) <= 80 else question[:77] + "..."
    turn = sum(1 for message in messages if message.get("role") == "user")
    return (
        f'Mock answer #{turn} ({digest}): you said "{quoted}". '
        "This reply comes from Open Chat's built-in offline model."
    )


def _error(status: int, message: str) -> JSONResponse:
    kind = {401: "invalid_request_error", 429: "rate_limit_exceeded"}.get(status, "api_error")
    body = {"error": {"message": message, "type": kind, "param": None, "code": str(status)}}
    return JSONResponse(body, status_code=status)


def _tool_call(body: dict[str, Any], question: str) -> dict[str, Any] | None:
    """Propose a call to the first offered tool the question names (for tool-use features)."""
    for tool in body.get("tools") or []:
        name = str((tool.get("function") or {}).get("name") or "")
        if name and name in question:
            call_id = "call_" + hashlib.sha256(question.encode()).hexdigest()[:12]
            function = {"name": name, "arguments": "{}"}
            return {"id": call_id, "type": "function", "function": function}
    return None


def _usage(messages: list[dict[str, Any]], answer: str) -> dict[str, int]:
    prompt, completion = prompt_tokens(messages), count_tokens(answer)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _completion(body: dict[str, Any], answer: str, tool_call: dict[str, Any] | None) -> dict:
    message: dict[str, Any] = {"role": "assistant", "content": None if tool_call else answer}
    if tool_call:
        message["tool_calls"] = [tool_call]
    return {
        "id": "chatcmpl-mock-" + hashlib.sha256(answer.encode()).hexdigest()[:16],
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if tool_call else "stop",
            }
        ],
        "usage": _usage(body["messages"], "" if tool_call else answer),
    }


async def _stream(body: dict[str, Any], answer: str, *, broken: bool) -> AsyncIterator[str]:
    base = {
        "id": "chatcmpl-mock-" + hashlib.sha256(answer.encode()).hexdigest()[:16],
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body["model"],
    }
    pieces = split_tokens(answer)
    delay = settings.MOCK_OPENAI_DELAY_MS / 1000
    for index, piece in enumerate(pieces):
        if delay and index:
            await asyncio.sleep(delay)
        if broken and index == len(pieces) // 2:
            # Ends the response without a finish_reason or [DONE], like a dropped connection.
            raise ConnectionResetError("mock stream broken on purpose")
        delta = {"role": "assistant", "content": piece} if index == 0 else {"content": piece}
        choice = {"index": 0, "delta": delta, "finish_reason": None}
        yield f"data: {json.dumps({**base, 'choices': [choice]})}\n\n"
    stop = {"index": 0, "delta": {}, "finish_reason": "stop"}
    yield f"data: {json.dumps({**base, 'choices': [stop]})}\n\n"
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = _usage(body["messages"], answer)
        yield f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n"
    yield "data: [DONE]\n\n"


async def chat_completions(request: Request) -> JSONResponse | StreamingResponse:
    try:
        body = await request.json()
        messages, model = body["messages"], body["model"]
        assert isinstance(messages, list) and isinstance(model, str)
    except (ValueError, KeyError, TypeError, AssertionError):
        return _error(400, "Expected a JSON body with 'model' and a list of 'messages'.")
    question = last_user_text(messages)
    if trigger := _ERROR_TRIGGER.search(question):
        return _error(int(trigger.group(1)), f"Mock error {trigger.group(1)} requested.")
    answer = mock_answer(messages)
    if body.get("stream"):
        stream = _stream(body, answer, broken="[mock-break]" in question)
        return StreamingResponse(stream, media_type="text/event-stream")
    return JSONResponse(_completion(body, answer, _tool_call(body, question)))


async def list_models(request: Request) -> JSONResponse:
    data = [
        {"id": name, "object": "model", "created": 0, "owned_by": "mock"} for name in MOCK_MODELS
    ]
    return JSONResponse({"object": "list", "data": data})


mock_openai_app = Starlette(
    routes=[
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
    ]
)
