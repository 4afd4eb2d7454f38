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

from backend.core.config import MOCK_MODEL, settings

# Whatever model a request names, the mock answers as itself: an answer is never recorded
# as coming from a real model that did not write it.
MOCK_MODELS = [MOCK_MODEL]
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


# Questions that ask for a built-in tool, with the arguments the mock passes.
_TOOL_INTENTS: list[tuple[str, re.Pattern[str], str | None]] = [
    (
        "calculator",
        re.compile(r"\b(?:calculate|compute|evaluate)\s+([-+*/%^().\d\s]+)", re.I),
        "expression",
    ),
    (
        "current_datetime",
        re.compile(
            r"what time is it|what(?:'s| is) the (?:date|time)|current (?:date|time)|today's date",
            re.I,
        ),
        None,
    ),
    (
        "search_conversations",
        re.compile(r"search (?:my )?(?:conversations|chats) for [\"']?(.+?)[\"']?[.?!]*$", re.I),
        "query",
    ),
]


def _intent_arguments(name: str, question: str) -> dict[str, Any] | None:
    for tool, pattern, argument in _TOOL_INTENTS:
        if tool == name and (match := pattern.search(question)):
            return {argument: match.group(1).strip()} if argument else {}
    return None


def _named_arguments(name: str, question: str) -> dict[str, Any] | None:
    """`... <tool> with {"json": "object"}`: the arguments a question spells out."""
    match = re.search(re.escape(name) + r"\s+(?:with\s+)?(\{.*\})", question, re.S)
    if match is None:
        return None
    try:
        arguments = json.loads(match.group(1))
    except ValueError:
        return None
    return arguments if isinstance(arguments, dict) else None


def _tool_call(body: dict[str, Any], question: str) -> dict[str, Any] | None:
    """Propose a call to the first offered tool the question names or asks for."""
    for tool in body.get("tools") or []:
        name = str((tool.get("function") or {}).get("name") or "")
        arguments = _intent_arguments(name, question) if name else None
        if name and arguments is None:
            arguments = _named_arguments(name, question)
        if name and (arguments is not None or name in question):
            call_id = "call_" + hashlib.sha256(question.encode()).hexdigest()[:12]
            function = {"name": name, "arguments": json.dumps(arguments or {})}
            return {"id": call_id, "type": "function", "function": function}
    return None


def tool_followup_answer(messages: list[dict[str, Any]]) -> str:
    """After a tool result, the mock reports it: "... the calculator tool returned 14."."""
    result = str(messages[-1].get("content") or "")
    if result.startswith("[Output of the tool "):  # the note on MCP results: not quoted
        result = result.partition("]\n")[2]
    names = {
        call.get("id"): (call.get("function") or {}).get("name")
        for message in messages
        for call in message.get("tool_calls") or []
    }
    name = names.get(messages[-1].get("tool_call_id")) or "tool"
    quoted = result if len(result) <= 300 else result[:297] + "..."
    return f"Mock answer: the {name} tool returned {quoted}"


async def _stream_tool_call(body: dict[str, Any], call: dict[str, Any]) -> AsyncIterator[str]:
    base = {"id": "chatcmpl-mock-" + call["id"], "object": "chat.completion.chunk"}
    base |= {"created": int(time.time()), "model": MOCK_MODEL}
    function = call["function"]
    first = {"index": 0, "id": call["id"], "type": "function"}
    first["function"] = {"name": function["name"], "arguments": ""}
    rest = {"index": 0, "function": {"arguments": function["arguments"]}}
    for delta in ({"role": "assistant", "tool_calls": [first]}, {"tool_calls": [rest]}):
        choice = {"index": 0, "delta": delta, "finish_reason": None}
        yield f"data: {json.dumps({**base, 'choices': [choice]})}\n\n"
    stop = {"index": 0, "delta": {}, "finish_reason": "tool_calls"}
    yield f"data: {json.dumps({**base, 'choices': [stop]})}\n\n"
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = _usage(body["messages"], "")
        yield f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n"
    yield "data: [DONE]\n\n"


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
        "model": MOCK_MODEL,
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
        "model": MOCK_MODEL,
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
        if not isinstance(messages, list) or not isinstance(model, str):
            raise TypeError("messages must be a list and model a string")
    except (ValueError, KeyError, TypeError):
        return _error(400, "Expected a JSON body with 'model' and a list of 'messages'.")
    question = last_user_text(messages)
    if trigger := _ERROR_TRIGGER.search(question):
        return _error(int(trigger.group(1)), f"Mock error {trigger.group(1)} requested.")
    after_tool = (
        bool(messages) and isinstance(messages[-1], dict) and messages[-1].get("role") == "tool"
    )
    answer = tool_followup_answer(messages) if after_tool else mock_answer(messages)
    tool_call = None if after_tool else _tool_call(body, question)
    if body.get("stream"):
        if tool_call:
            return StreamingResponse(
                _stream_tool_call(body, tool_call), media_type="text/event-stream"
            )
        stream = _stream(body, answer, broken="[mock-break]" in question)
        return StreamingResponse(stream, media_type="text/event-stream")
    return JSONResponse(_completion(body, answer, tool_call))


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
