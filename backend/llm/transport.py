"""An in-process HTTP transport to an ASGI app that streams the response as it is produced.

httpx's own ASGITransport buffers the whole body before returning, so a streamed answer from
the built-in mock would arrive in one piece. This one hands chunks over as the app sends them,
and turns an app that dies mid-response into a read error, like a dropped connection.
"""

import asyncio
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import httpx2
from starlette.types import ASGIApp

_END = object()


class _QueueStream(httpx2.AsyncByteStream):
    def __init__(self, queue: asyncio.Queue[Any], task: asyncio.Task[None], done: asyncio.Event):
        self._queue, self._task, self._done = queue, task, done

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (item := await self._queue.get()) is not _END:
            if isinstance(item, BaseException):
                raise httpx2.ReadError("the response ended abruptly") from item
            yield item

    async def aclose(self) -> None:
        self._done.set()  # tells the app the client has gone
        if not self._task.done():
            self._task.cancel()


class StreamingASGITransport(httpx2.AsyncBaseTransport):
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        # An AsyncClient's request always carries an async stream (httpx types either kind).
        body = b"".join([chunk async for chunk in request.stream])  # type: ignore[union-attr]
        queue: asyncio.Queue[Any] = asyncio.Queue()
        response_start: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        done, body_sent = asyncio.Event(), False

        async def receive() -> dict[str, Any]:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                response_start.set_result(dict(message))
            elif message["type"] == "http.response.body":
                if message.get("body"):
                    queue.put_nowait(message["body"])
                if not message.get("more_body", False):
                    queue.put_nowait(_END)

        async def run_app() -> None:
            try:
                await self.app(_scope_for(request), receive, send)
            except Exception as error:
                if not response_start.done():
                    response_start.set_exception(httpx2.ReadError(str(error)))
                queue.put_nowait(error)

        task = asyncio.create_task(run_app())
        start = await response_start
        stream = _QueueStream(queue, task, done)
        return httpx2.Response(start["status"], headers=start["headers"], stream=stream)


def _scope_for(request: httpx2.Request) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": request.method,
        "headers": [(key.lower(), value) for key, value in request.headers.raw],
        "scheme": request.url.scheme,
        "path": request.url.path,
        "raw_path": request.url.raw_path.split(b"?")[0],
        "query_string": request.url.query,
        "server": (request.url.host, request.url.port),
        "client": ("127.0.0.1", 0),
        "root_path": "",
    }
