"""A small OpenAI-compatible server on loopback, for testing the real `openai` client.

What it does is chosen by the last user message: `FAIL <status>` answers with that HTTP
error, `SLOW` waits longer than the client's timeout, `BREAK` drops the connection in the
middle of a streamed answer, `USAGE <prompt> <completion>` reports those token counts
(whatever they are), `TOOL <name> <json arguments>` asks for that tool (if it was offered)
and, once the request carries the tool's result, answers with it. Anything else gets an
echo. Requests are recorded.
"""

import asyncio
import itertools
import json
import socket
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

fake_app = FastAPI()
received: list[dict[str, Any]] = []
# The authorization header of each `GET /v1/models`.
models_listed: list[str | None] = []
_call_ids = itertools.count(1)


def _answer_for(question: str) -> str:
    return f"Echo: {question}"


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> str:
    body = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n"


async def _stream(model: str, answer: str, *, broken: bool) -> AsyncIterator[str]:
    words = answer.split(" ")
    for index, word in enumerate(words):
        if broken and index == 2:
            raise RuntimeError("connection dropped on purpose")
        yield _chunk(model, {"content": word if index == 0 else " " + word})
        await asyncio.sleep(0)
    yield _chunk(model, {}, "stop")
    usage = {"prompt_tokens": 11, "completion_tokens": len(words), "total_tokens": 11 + len(words)}
    body = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [],
        "usage": usage,
    }
    yield f"data: {json.dumps(body)}\n\n"
    yield "data: [DONE]\n\n"


def _offered(body: dict[str, Any]) -> set[str]:
    return {tool["function"]["name"] for tool in body.get("tools") or ()}


def _tool_call(question: str, body: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """For `TOOL <name> <json>`: the call to propose, or (None, the answer to give)."""
    _, _, rest = question.partition(" ")
    name, _, arguments = rest.strip().partition(" ")
    last = body["messages"][-1]
    if last["role"] == "tool":  # the result came back: answer with it
        return None, f"The {name} tool said: {last['content']}"
    if name not in _offered(body):
        return None, f"No tool named {name} was offered"
    call_id = f"call_fake_{next(_call_ids)}"
    function = {"name": name, "arguments": arguments.strip() or "{}"}
    return {"id": call_id, "type": "function", "function": function}, ""


async def _stream_call(model: str, call: dict[str, Any]) -> AsyncIterator[str]:
    """A tool call as providers stream it: the name first, the arguments in pieces."""
    arguments = call["function"]["arguments"]
    half = len(arguments) // 2
    head = {"index": 0, "id": call["id"], "type": "function"}
    yield _chunk(
        model,
        {
            "role": "assistant",
            "tool_calls": [
                head
                | {"function": {"name": call["function"]["name"], "arguments": arguments[:half]}}
            ],
        },
    )
    yield _chunk(model, {"tool_calls": [{"index": 0, "function": {"arguments": arguments[half:]}}]})
    yield _chunk(model, {}, "tool_calls")
    yield "data: [DONE]\n\n"


def _call_reply(model: str, call: dict[str, Any]) -> dict[str, Any]:
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25},
    }


@fake_app.get("/v1/models")
async def list_models(request: Request) -> Any:
    received.append({"path": "/v1/models", "authorization": request.headers.get("authorization")})
    models_listed.append(request.headers.get("authorization"))
    names = ("fake-large", "fake-small")
    return {"object": "list", "data": [{"id": name, "object": "model"} for name in names]}


@fake_app.post("/v1/chat/completions", response_model=None)
async def chat_completions(request: Request) -> Any:
    body = await request.json()
    received.append({"body": body, "authorization": request.headers.get("authorization")})
    question = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
    if question.startswith("FAIL "):
        status = int(question.split()[1])
        return JSONResponse({"error": {"message": "failure requested", "type": "x"}}, status)
    if question.startswith("SLOW"):
        await asyncio.sleep(3)
    answer, model = _answer_for(question), f"{body['model']}-2026"
    if question.startswith("TOOL "):
        call, answer = _tool_call(question, body)
        if call is not None and body.get("stream"):
            return StreamingResponse(_stream_call(model, call), media_type="text/event-stream")
        if call is not None:
            return _call_reply(model, call)
    if body.get("stream"):
        return StreamingResponse(
            _stream(model, answer, broken=question.startswith("BREAK")),
            media_type="text/event-stream",
        )
    usage = {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}
    if question.startswith("USAGE "):
        prompt, completion = (int(part) for part in question.split()[1:3])
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
    choice = {
        "index": 0,
        "message": {"role": "assistant", "content": answer},
        "finish_reason": "stop",
    }
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [choice],
        "usage": usage,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FakeOpenAIServer:
    """Runs `fake_app` under a real uvicorn in a background thread."""

    def __init__(self) -> None:
        self.port = free_port()
        config = uvicorn.Config(fake_app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "FakeOpenAIServer":
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake OpenAI server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)
