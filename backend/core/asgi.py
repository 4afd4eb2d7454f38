"""Small pieces the pure ASGI middleware share: answering with JSON before any route runs, and
learning the status an app answered with and how long it took."""

import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send


async def send_json(send: Send, status: int, body: bytes) -> None:
    """A complete JSON response of already-encoded `body`."""
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def call_observed(
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    finished: Callable[[int, float], None],
) -> None:
    """Run `app` and then call `finished(status, seconds)`, also when it raised: the status is
    500 unless a response had started (the server answers an escaped exception with a 500)."""
    started, status = time.perf_counter(), 500

    async def send_recording_status(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        await send(message)

    try:
        await app(scope, receive, send_recording_status)
    finally:
        finished(status, time.perf_counter() - started)
