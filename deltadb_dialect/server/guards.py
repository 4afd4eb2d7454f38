"""ASGI guards in front of every route: security headers, and the loopback-only Host check of
development mode.

Both are plain ASGI so that they also cover the answers of the entity fast path, which never
reaches FastAPI's router.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

from deltadb_dialect.server.metrics import ASGIApp, Message, Receive, Scope, Send

# The management UI loads only its own files; nothing may frame it (clickjacking), and no
# page of it may run inline script, so an injected string can never execute.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
_NO_STORE = (b"cache-control", b"no-store")


class SecurityHeaders:
    """Adds the headers above to every HTTP response; API answers also get ``no-store``
    (they may carry documents or keys), the UI's static files keep their caching."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cacheable = scope["path"] == "/" or scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [h for h in SECURITY_HEADERS if h[0] not in present]
                if not cacheable and b"cache-control" not in present:
                    headers.append(_NO_STORE)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def is_loopback_host(host_header: str) -> bool:
    """Whether a ``Host`` header names this machine's loopback (``localhost``, ``127.x``,
    ``[::1]``, with or without a port)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        host = host[1:host.find("]")] if "]" in host else ""
    elif host.count(":") == 1:
        host = host.split(":")[0]
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LoopbackHostOnly:
    """Development mode: refuse requests whose ``Host`` is not a loopback name.

    A web page that rebinds its own DNS name to 127.0.0.1 reaches the server with its own
    name in ``Host``; refusing that name keeps such pages away from a development server.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
        if is_loopback_host(host):
            await self.app(scope, receive, send)
            return
        await _refuse(send, 421, "a development-mode server answers only requests for a "
                      "loopback host name (localhost, 127.0.0.1, [::1]); set "
                      "DELTADB_ADMIN_KEY to serve other names")


async def _refuse(send: Send, status: int, sentence: str) -> None:
    body = json.dumps({"error": sentence}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


# Only a JSON escape of half a surrogate pair can put one in a decoded string (raw surrogate
# bytes are not UTF-8); such a string cannot be encoded again, and failed wherever it was
# first encoded (a key check, the store) with a 500.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _holds_lone_surrogate(document: Any) -> bool:
    pending = [document]
    while pending:
        item = pending.pop()
        if isinstance(item, str) and _LONE_SURROGATE.search(item):
            return True
        if isinstance(item, dict):
            pending.extend([*item.keys(), *item.values()])
        elif isinstance(item, list):
            pending.extend(item)
    return False


class ValidUnicodeBodies:
    """Refuse, before any route or the fast path, a JSON body whose strings hold a lone
    UTF-16 surrogate: a 400 with a sentence instead of a 500 deep in the store."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        chunks, more, messages = [], True, []
        while more:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if _SURROGATE_ESCAPE.search(body):
            try:
                document = json.loads(body)
            except (ValueError, RecursionError):
                document = None  # not JSON: the route's own decoding says so
            if _holds_lone_surrogate(document):
                await _refuse(send, 400, "the body must be valid Unicode: a lone UTF-16 "
                              "surrogate (\\ud800-\\udfff) is not")
                return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)
