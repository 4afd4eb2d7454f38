"""A small OpenAI-compatible provider on loopback, for what the built-in mock cannot show.

A test user points their Settings (base URL + key) at it, so the real backend streams from
it exactly as from any personal provider. The answer is chosen by a marker in the last user
message, and chunks are sent with a delay so the browser can be watched while it streams:

- ``[slow]``: a long plain answer, one word per chunk, 40 ms apart;
- ``[markdown]`` (or "reverse a list"): a short document with a heading, a list,
  a table and a fenced code block;
- ``[xss]``: hostile HTML and links that must come out inert;
- ``[math]``: inline and display TeX;
- anything else: a short answer.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SLOW_ANSWER = " ".join(f"Word{i}" + ("." if i % 12 == 11 else "") for i in range(90))

MARKDOWN_ANSWER = """## Reversing a list

Three ways, in order of preference:

1. **Slicing** makes a copy: `items[::-1]`
2. `reversed()` gives an iterator
3. `list.reverse()` works *in place*

```python
def reverse(items):
    return items[::-1]

print(reverse([1, 2, 3]))
```

| method | copies |
| --- | --- |
| slicing | yes |
| reverse() | no |
"""

XSS_ANSWER = (
    "Payloads follow. <script>window.__xss = 'script';</script>\n\n"
    "<img src=x onerror=\"window.__xss = 'img'\">\n\n"
    "[click me](javascript:window.__xss='link') and "
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)\n\n"
    '<a href="javascript:alert(1)">raw link</a> '
    "<svg onload=\"window.__xss='svg'\"></svg>"
    '<iframe src="javascript:alert(1)"></iframe>\n\n'
    "Done."
)

MATH_ANSWER = (
    "The area is $\\pi r^2$, and\n\n$$\n\\sum_{k=1}^{n} k = \\frac{n(n+1)}{2}\n$$\n\nDone."
)

WORD = re.compile(r"\S+\s*|\s+")


def _answer_for(question: str) -> tuple[str, float]:
    if "[slow]" in question:
        return SLOW_ANSWER, 0.04
    if "[markdown]" in question or "reverse a list" in question:
        return MARKDOWN_ANSWER, 0.005
    if "[xss]" in question:
        return XSS_ANSWER, 0.005
    if "[math]" in question:
        return MATH_ANSWER, 0.005
    return "A short answer from the fake provider.", 0.005


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        if self.path.rstrip("/").endswith("/models"):
            names = ("gpt-4o-mini", "fake-large")
            data = [{"id": name, "object": "model"} for name in names]
            self._json(200, {"object": "list", "data": data})
        else:
            self._json(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        messages = body.get("messages") or []
        self.server.asked.append(messages)  # type: ignore[attr-defined]
        question = next(
            (str(m.get("content") or "") for m in reversed(messages) if m.get("role") == "user"),
            "",
        )
        answer, delay = _answer_for(question)
        model = body.get("model") or "gpt-4o-mini"
        prompt_tokens = sum(len(str(m.get("content") or "").split()) + 3 for m in messages)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(answer.split()),
            "total_tokens": prompt_tokens + len(answer.split()),
        }
        base = {"id": "chatcmpl-fake", "created": int(time.time()), "model": model}
        if not body.get("stream"):
            message = {"role": "assistant", "content": answer}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            completion = {**base, "object": "chat.completion", "choices": [choice]}
            self._json(200, {**completion, "usage": usage})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

        def send(payload: dict[str, Any] | str) -> None:
            text = payload if isinstance(payload, str) else json.dumps(payload)
            self.wfile.write(f"data: {text}\n\n".encode())
            self.wfile.flush()

        try:
            for i, piece in enumerate(WORD.findall(answer)):
                delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
                chunk = {**base, "object": "chat.completion.chunk"}
                send({**chunk, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
                time.sleep(delay)
            stop = {"index": 0, "delta": {}, "finish_reason": "stop"}
            send({**base, "object": "chat.completion.chunk", "choices": [stop]})
            send({**base, "object": "chat.completion.chunk", "choices": [], "usage": usage})
            send("[DONE]")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away (Stop); nothing to do


class FakeProvider:
    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.asked = []  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def asked(self) -> list[list[dict[str, Any]]]:
        """The messages of every request so far, oldest first."""
        return self.server.asked  # type: ignore[attr-defined]

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> FakeProvider:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
