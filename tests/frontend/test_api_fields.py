"""`js/api.js` reads only fields the OpenAPI document describes, and follows its SSE events.

The client runs in the page against the real server; every JSON body it receives is wrapped
in a Proxy that records each field it reads (`data[].uuid`). Each read is then looked up in
the response schema of its operation in `/openapi.json`: a field the client reads that the
document does not describe (a renamed field, an alias guessed at) fails the test."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page

from .ui_helpers import Server, User

RECORDER = """async (calls) => {
  const api = await import('/js/api.js');
  const reads = [];
  const wrap = (value, op, path) => {
    if (value === null || typeof value !== 'object') return value;
    return new Proxy(value, {
      get(target, key, receiver) {
        const v = Reflect.get(target, key, receiver);
        if (typeof key === 'symbol' || key === 'then') return v; // promise machinery
        if (Array.isArray(target)) return /^\\d+$/.test(key) ? wrap(v, op, `${path}[]`) : v;
        const at = path ? `${path}.${key}` : key;
        reads.push([op, at]);
        return wrap(v, op, at);
      },
    });
  };
  const original = window.fetch;
  window.fetch = async (input, init = {}) => {
    const res = await original(input, init);
    const url = new URL(String(input.url ?? input), location.origin); // a URL, Request or string
    const op = `${(init.method || 'GET').toUpperCase()} ${url.pathname} ${res.status}`;
    const json = res.json.bind(res);
    res.json = async () => wrap(await json(), op, '');
    return res;
  };
  const ctx = {};
  try {
    for (const [name, args] of calls) {
      const text = JSON.stringify(args).replace(/"\\$(\\w+)"/g, (_, k) => JSON.stringify(ctx[k]));
      const filled = JSON.parse(text);
      const out = await api[name](...filled);
      if (name === 'createConversation') ctx.conversation = out.id;
      if (name === 'sendMessage') ctx.answer = out.assistant.id;
      if (name === 'createSnapshot') ctx.snapshot = out.id;
      if (name === 'listMessages') ctx.first = out.items[0].id;
    }
  } finally {
    window.fetch = original;
  }
  return reads;
}"""

USER_CALLS: list[tuple[str, list[Any]]] = [
    ("me", []),
    ("config", []),
    ("listModels", []),
    ("getSettings", []),
    ("createConversation", [{"title": "Fields"}]),
    ("sendMessage", ["$conversation", {"content": "first question"}]),
    ("sendMessage", ["$conversation", {"content": "second question"}]),
    ("listConversations", [{}]),
    ("listMessages", ["$conversation", {}]),
    ("showVersion", ["$conversation", "$first"]),
    ("getConversation", ["$conversation"]),
    ("updateConversation", ["$conversation", {"pinned": True}]),
    ("getConversationTools", ["$conversation"]),
    ("setConversationTools", ["$conversation", {"toolApproval": False}]),
    ("listToolExecutions", ["$conversation"]),
    ("createSnapshot", ["$conversation", "before"]),
    ("listSnapshots", ["$conversation"]),
    ("getSnapshot", ["$conversation", "$snapshot"]),
    ("search", [{"q": "question"}]),
    ("getUsage", [{}]),
    ("getMyLimits", []),
    ("importConversations", [{"format": "openchat-export", "conversations": []}]),
    ("deleteSnapshot", ["$conversation", "$snapshot"]),
    ("deleteConversation", ["$conversation"]),
]
ADMIN_CALLS: list[tuple[str, list[Any]]] = [
    ("adminListUsers", []),
    ("adminGetModels", []),
    ("adminGetUsage", [{}]),
    ("adminGetDefaultLimits", []),
    ("adminListConnections", []),
]


class OpenApi:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.schemas = document["components"]["schemas"]
        self.routes = [
            (method.upper(), re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), op)
            for path, ops in document["paths"].items()
            for method, op in ops.items()
        ]

    def response_schema(self, op_key: str) -> dict[str, Any] | None:
        method, path, status = op_key.split(" ")
        for route_method, pattern, op in self.routes:
            if route_method == method and pattern.match(path):
                content = op["responses"].get(status, {}).get("content", {})
                return content.get("application/json", {}).get("schema")
        raise AssertionError(f"{method} {path} is not in the OpenAPI document")

    def _resolve(self, schema: dict[str, Any]) -> list[dict[str, Any]]:
        if "$ref" in schema:
            return self._resolve(self.schemas[schema["$ref"].rsplit("/", 1)[1]])
        if "anyOf" in schema or "oneOf" in schema:
            return [
                s for part in schema.get("anyOf", schema.get("oneOf")) for s in self._resolve(part)
            ]
        return [schema]

    def has(self, schema: dict[str, Any], path: str) -> bool:
        """Whether `path` (fields separated by dots, `[]` for the items of an array) exists."""
        options = self._resolve(schema)
        for segment in path.split("."):
            name, items = segment.removesuffix("[]"), segment.endswith("[]")
            following = []
            for option in options:
                if option.get("type") == "object" and "properties" not in option:
                    return True  # a free-form object (tool arguments): anything may be in it
                if name in option.get("properties", {}):
                    following += self._resolve(option["properties"][name])
            if items:
                following = [
                    i
                    for f in following
                    if f.get("type") == "array"
                    for i in self._resolve(f["items"])
                ]
            if not following:
                return False
            options = following
        return True


def undocumented(spec: OpenApi, reads: list[list[str]]) -> set[str]:
    missing = set()
    for op_key, path in reads:
        schema = spec.response_schema(op_key)
        if schema is None or not spec.has(schema, path):
            missing.add(f"{op_key}: {path}")
    return missing


@pytest.fixture(scope="module")
def spec(server: Server) -> OpenApi:
    with server.client() as client:
        return OpenApi(client.get("/openapi.json").json())


def _record(page: Page, calls: list[tuple[str, list[Any]]]) -> list[list[str]]:
    page.goto("/js/api.js")  # any page of the origin that runs no script of its own
    return page.evaluate(RECORDER, [list(c) for c in calls])


def test_every_field_the_client_reads_is_in_the_openapi_document(
    page_as: Callable[..., Page], make_user: Callable[..., User], admin: User, spec: OpenApi
) -> None:
    reads = _record(page_as(make_user()), USER_CALLS)
    reads += _record(page_as(admin), ADMIN_CALLS)
    operations = {op for op, _ in reads}
    assert len(operations) >= 20, operations  # the recorder saw the client's calls
    assert {"PUT", "GET", "POST", "PATCH"} <= {op.split(" ")[0] for op in operations}
    missing = sorted(undocumented(spec, reads))
    assert not missing, "\n".join(missing)


def test_the_check_catches_a_field_the_document_does_not_have(spec: OpenApi) -> None:
    reads = [
        ["GET /api/conversations/abc/messages 200", "data[].versions"],
        ["GET /api/conversations/abc/messages 200", "data[].parent_id"],
        ["GET /api/conversations 200", "items"],
        ["PUT /api/conversations/abc/current 200", "current_message_uuid"],
    ]
    assert undocumented(spec, reads) == {
        "GET /api/conversations/abc/messages 200: data[].parent_id",
        "GET /api/conversations 200: items",
    }


STREAM = """async (conversation) => {
  const api = await import('/js/api.js');
  const csrf = api.readCookie('csrf_token');
  const res = await fetch(`/api/conversations/${conversation}/messages`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json', Accept: 'text/event-stream', 'X-CSRF-Token': csrf,
    },
    body: JSON.stringify({ content: 'Name a colour' }),
  });
  const names = [];
  for await (const evt of api.readSSE(res.body)) names.push(evt.event);
  return { names, client: api.SSE_EVENTS };
}"""


def test_the_client_follows_the_documented_answer_events(
    page_as: Callable[..., Page], make_user: Callable[..., User], spec: OpenApi
) -> None:
    user = make_user()
    conversation = user.api.post("/api/conversations", json={}).json()["uuid"]
    page = page_as(user)
    page.goto("/js/api.js")
    seen = page.evaluate(STREAM, conversation)
    documented: set[str] = set()
    for _, _, op in spec.routes:
        for response in op["responses"].values():
            stream = response.get("content", {}).get("text/event-stream", {})
            documented |= set(stream.get("x-events", []))
    assert set(seen["client"]) == documented  # api.js handles exactly the documented events
    assert seen["names"][0] == "start" and seen["names"][-1] == "done"
    assert set(seen["names"]) <= documented  # and the server sends no other
