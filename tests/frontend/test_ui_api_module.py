"""frontend/js/api.js in the browser: SSE parsing and error wording, plus a session that ends
while the user is typing."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page, expect

from .ui_helpers import User, open_chat

SSE_CHECK = """async (chunks) => {
  const api = await import('/js/api.js');
  const enc = new TextEncoder();
  const body = new ReadableStream({
    start(controller) {
      for (const c of chunks) controller.enqueue(enc.encode(c));
      controller.close();
    },
  });
  const out = [];
  for await (const evt of api.readSSE(body)) out.push(api.classifyEvent(evt));
  return out;
}"""


def test_sse_parser_handles_split_chunks_crlf_and_comments(page_as: Callable[..., Page]) -> None:
    page = page_as()
    page.goto("/login.html")
    chunks = [
        ": keep-alive\n\n",
        'event: start\ndata: {"user_message": {"uuid": "u1", "role": "user", "content": "hi"}}\n\n',
        'event: delta\ndata: {"con',  # an event split across network reads
        'tent": "Hel"}\n\nevent: delta\r\ndata: {"content": "lo \\u00e9"}\r\n\r\n',
        'event: done\ndata: {"conversation": {"uuid": "c1", "title": "Greeting"}, '
        '"assistant_message": {"uuid": "a1", "role": "assistant", "content": "Hello \\u00e9", '
        '"response": {"model_used": "gpt-4o", "tokens_prompt": 3, "tokens_completion": 2, '
        '"tokens_total": 5, "completion_time_ms": 40}}}\n\n',
    ]
    events = page.evaluate(SSE_CHECK, chunks)
    assert [e["type"] for e in events] == ["start", "delta", "delta", "done"]
    assert events[0]["user"]["id"] == "u1"
    assert events[1]["text"] + events[2]["text"] == "Hello é"
    done = events[3]
    assert done["title"] == "Greeting"
    assert done["assistant"]["meta"] == {
        "model": "gpt-4o",
        "promptTokens": 3,
        "completionTokens": 2,
        "totalTokens": 5,
        "timeMs": 40,
    }

    error = page.evaluate(
        SSE_CHECK,
        ['event: error\ndata: {"detail": "The provider is down.", "status": 502}\n\n'],
    )
    assert error == [{"type": "error", "status": 502, "message": "The provider is down."}]


def test_error_bodies_become_one_readable_sentence(page_as: Callable[..., Page]) -> None:
    page = page_as()
    page.goto("/login.html")
    messages = page.evaluate(
        """async () => {
          const { describeError } = await import('/js/api.js');
          return [
            describeError(401, {detail: 'Incorrect username or password'}),
            describeError(422, {detail: [
              {loc: ['body', 'password'], msg: 'String should have at least 8 characters'},
              {loc: ['body', 'email'], msg: 'Value error, not an email'}]}),
            describeError(503, null),
            describeError(500, '<html>proxy error</html>'),
            describeError(429, {detail: {message: 'Slow down'}}),
          ];
        }"""
    )
    assert messages == [
        "Incorrect username or password",
        "password: String should have at least 8 characters; email: not an email",
        "The service is unavailable right now. Try again shortly.",
        "Something went wrong on the server. Try again.",
        "Slow down",
    ]


def test_session_ending_while_typing_keeps_the_text(
    page_as: Callable[..., Page], make_user: Callable[..., User]
) -> None:
    user = make_user()
    page = page_as(user)
    open_chat(page)
    page.context.clear_cookies()  # the session ends (expired, revoked, signed out elsewhere)
    box = page.get_by_label("Message")
    box.fill("A long question I do not want to type again")
    box.press("Enter")
    expect(page).to_have_url(re.compile(r"/login\.html"))
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/$"))
    page.wait_for_selector("body[data-ready=true]")
    expect(page.get_by_label("Message")).to_have_value(
        "A long question I do not want to type again"
    )
