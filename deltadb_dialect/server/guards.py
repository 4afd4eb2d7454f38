"""ASGI guards in front of every route: security headers, and the loopback-only Host check of
development mode.

Both are plain ASGI so that they also cover the answers of the entity fast path, which never
reaches FastAPI's router.
"""

from __future__ import annotations

import ipaddress
import json

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
        body = json.dumps({"error": "a development-mode server answers only requests for a "
                           "loopback host name (localhost, 127.0.0.1, [::1]); set "
                           "DELTADB_ADMIN_KEY to serve other names"}).encode()
        await send({"type": "http.response.start", "status": 421,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
