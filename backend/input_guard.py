"""Refuse, before any route runs, input that no field may hold: NUL characters in the path or
query string, and lone UTF-16 surrogates in a JSON body.

Bodies already refuse NUL field by field (PostgreSQL cannot store it, see `schemas.SafeStr`);
query and path values get the same rule here, in one place. A JSON escape such as "\\ud800"
decodes to a string that cannot be encoded as UTF-8, so it failed later, wherever the value was
first encoded (password hashing, the store, the response) with a 500; refusing it while the
body is decoded makes it a 422 for every route, signed in or not.
"""

import json
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.core.asgi import send_json
from backend.errors import QUICKCHAT_PREFIX

# An escape that encodes half of a surrogate pair: only then can a decoded string hold one
# (raw surrogate bytes are not UTF-8, and the JSON decoder refuses them itself).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_NUL_IN_QUERY = re.compile(rb"%00|\x00")

NUL_MESSAGE = "must not contain NUL characters"
SURROGATE_MESSAGE = "must be valid Unicode: a lone UTF-16 surrogate (\\ud800-\\udfff) is not"


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            media: bytes = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return False


def has_lone_surrogate(body: bytes) -> bool:
    """Whether the JSON document holds a string (value or key) with a lone surrogate."""
    if not _SURROGATE_ESCAPE.search(body):
        return False  # the common case: no decoding here at all
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return False  # not JSON: the route's own decoding says so
    pending: list[Any] = [document]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _LONE_SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _refusal(scope: Scope, where: str, message: str) -> tuple[int, bytes]:
    if scope["path"].startswith(QUICKCHAT_PREFIX):  # that API's contract: 400 + status/message
        return 400, json.dumps({"status": "error", "message": f"{where}: {message}"}).encode()
    detail = [{"loc": [where], "msg": message, "type": "value_error"}]
    return 422, json.dumps({"detail": detail}).encode()


async def _read_body(receive: Receive) -> tuple[bytes, Message | None]:
    """The whole body (bounded by the size limit outside), or the disconnect that ended it."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), message
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), None


class InputGuardMiddleware:
    def __init__(self, app: ASGIApp, *, streamed_paths: frozenset[str] = frozenset()) -> None:
        self.app = app
        # Uploads read as a stream by their route, which cleans what it stores itself: never
        # read whole into memory here.
        self.streamed_paths = streamed_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"]:
            await send_json(send, *_refusal(scope, "path", NUL_MESSAGE))
            return
        if _NUL_IN_QUERY.search(scope["query_string"]):
            await send_json(send, *_refusal(scope, "query", NUL_MESSAGE))
            return
        if (
            scope["method"] in ("GET", "HEAD", "OPTIONS")
            or not _is_json(scope)
            or scope["path"] in self.streamed_paths
        ):
            await self.app(scope, receive, send)
            return
        body, ended = await _read_body(receive)
        if has_lone_surrogate(body):
            await send_json(send, *_refusal(scope, "body", SURROGATE_MESSAGE))
            return
        await self.app(scope, _replay(body, ended, receive), send)


def _replay(body: bytes, ended: Message | None, receive: Receive) -> Receive:
    """A `receive` that hands the app the body already read, then the connection's own."""
    first: list[Message] = [ended or {"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        return first.pop() if first else await receive()

    return replayed
