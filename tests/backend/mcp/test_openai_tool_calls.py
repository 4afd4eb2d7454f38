"""MCP tools through a real OpenAI-compatible server: the chat service asks the loopback fake
provider (real HTTP, the `openai` client, streamed and in one piece), which asks for a tool of
a real MCP server (stdio and Streamable HTTP); the call is run, approved, edited or rejected,
and the next request to the provider carries the tool's result."""

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from chat_factories import ChatUser, create_conversation, create_user, parse_sse, send_message
from fake_openai_server import FakeOpenAIServer, received
from fastapi.testclient import TestClient
from mcp_test_servers import stdio_entry

from backend.mcp import runtime

BASE = "/api/admin/mcp-servers"
SSE = {"Accept": "text/event-stream"}


@pytest.fixture
def admin() -> ChatUser:
    return create_user(is_admin=True)


@pytest.fixture
def provider(real_provider: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The fake provider, with time for a tool round (a tool call and its answer)."""
    from backend.core.config import settings

    monkeypatch.setattr(settings, "LLM_TIMEOUT_SECONDS", 10.0)
    yield
    received.clear()


def _add_server(client: TestClient, admin: ChatUser, name: str, config: dict, **body: Any) -> None:
    created = client.post(
        BASE, json={"name": name, "config": config, **body}, headers=admin.headers
    )
    assert created.status_code == 201, created.text
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        servers = client.get(BASE, headers=admin.headers).json()["data"]
        if any(s["name"] == name and s["healthy"] and s["tools"] for s in servers):
            return
        time.sleep(0.2)
    pytest.fail(f"the MCP server {name} never became healthy")


def _completions() -> list[dict[str, Any]]:
    return [r["body"] for r in received if "body" in r]


def _tool_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in body["messages"] if m["role"] == "tool"]


def test_an_auto_tool_called_by_the_model_sends_its_result_back_in_one_piece(
    client: TestClient, admin: ChatUser, provider: None
) -> None:
    _add_server(client, admin, "tests", stdio_entry(), tool_policies={"echo": "auto"})
    alice = create_user()
    chat = create_conversation(client, alice)
    turn = send_message(client, alice, chat["uuid"], 'TOOL tests__echo {"text": "ping"}')
    assert turn.status_code == 201, turn.text
    body = turn.json()
    [execution] = body["tool_executions"]
    assert (execution["server"], execution["status"], execution["result"]) == (
        "tests",
        "succeeded",
        "ping",
    )
    first, second = _completions()
    assert not first.get("stream") and not second.get("stream")
    offered = {t["function"]["name"]: t["function"] for t in first["tools"]}
    assert offered["tests__echo"]["description"].startswith("[tests] ")
    assert "calculator" in offered and "tests__echo" in offered
    [call_message] = [m for m in second["messages"] if m.get("tool_calls")]
    [tool_message] = _tool_messages(second)
    call_id = call_message["tool_calls"][0]["id"]
    assert call_id.startswith("call_fake_") and tool_message["tool_call_id"] == call_id
    # The result goes back marked as data from the server, never as instructions.
    assert tool_message["content"].startswith("[Output of the tool echo from the MCP server tests")
    assert tool_message["content"].endswith("\nping")
    assert body["assistant_message"]["content"].endswith("\nping")


def test_a_streamed_call_waits_for_approval_and_the_edited_arguments_are_used(
    client: TestClient, admin: ChatUser, provider: None
) -> None:
    _add_server(client, admin, "tests", stdio_entry())  # default policy: ask
    alice = create_user()
    chat = create_conversation(client, alice)
    first = parse_sse(
        client.post(
            f"/api/conversations/{chat['uuid']}/messages",
            json={"content": 'TOOL tests__echo {"text": "original words"}'},
            headers={**alice.headers, **SSE},
        ).text
    )
    assert [name for name, _ in first] == ["start", "tool_call", "done"]
    pending = first[1][1]["execution"]
    # Streamed in two pieces by the provider, the arguments arrive whole.
    assert pending["arguments"] == {"text": "original words"} and pending["status"] == "pending"
    assert len(_completions()) == 1 and _completions()[0]["stream"] is True
    url = f"/api/conversations/{chat['uuid']}/tool-executions/{pending['uuid']}/approve"
    second = parse_sse(
        client.post(
            url, json={"arguments": {"text": "edited words"}}, headers={**alice.headers, **SSE}
        ).text
    )
    assert second[1][0] == "tool_result"
    assert second[1][1]["execution"]["result"] == "edited words"
    done = second[-1][1]
    assert second[-1][0] == "done" and done["assistant_message"]["content"].endswith("edited words")
    follow_up = _completions()[-1]
    [call_message] = [m for m in follow_up["messages"] if m.get("tool_calls")]
    assert json.loads(call_message["tool_calls"][0]["function"]["arguments"]) == {
        "text": "edited words"
    }
    [tool_message] = _tool_messages(follow_up)
    assert tool_message["content"].endswith("\nedited words")
    assert "original words" not in tool_message["content"]


def test_a_rejection_over_http_tells_the_model_the_reason(
    client: TestClient,
    admin: ChatUser,
    provider: None,
    http_server: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from backend.core.config import settings

    monkeypatch.setattr(settings, "EGRESS_ALLOW_PRIVATE_NETWORKS", ["127.0.0.0/8"])
    _add_server(client, admin, "web", {"url": http_server})
    alice = create_user()
    chat = create_conversation(client, alice)
    turn = send_message(client, alice, chat["uuid"], 'TOOL web__echo {"text": "my plans"}').json()
    [pending] = turn["tool_executions"]
    assert pending["server"] == "web" and pending["status"] == "pending"
    url = f"/api/conversations/{chat['uuid']}/tool-executions/{pending['uuid']}/reject"
    rejected = client.post(url, json={"reason": "keep it private"}, headers=alice.headers)
    assert rejected.status_code == 201, rejected.text
    [tool_message] = _tool_messages(_completions()[-1])
    assert "rejected" in tool_message["content"] and "keep it private" in tool_message["content"]
    assert "keep it private" in rejected.json()["assistant_message"]["content"]
    log = client.get(f"/api/conversations/{chat['uuid']}/tool-executions", headers=alice.headers)
    [logged] = log.json()["data"]
    assert logged["status"] == "rejected" and logged["approved_by"] == alice.username


def test_an_approved_call_over_http_that_times_out_tells_the_model_it_failed(
    client: TestClient,
    admin: ChatUser,
    provider: None,
    http_server: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from backend.core.config import settings

    monkeypatch.setattr(settings, "EGRESS_ALLOW_PRIVATE_NETWORKS", ["127.0.0.0/8"])
    monkeypatch.setattr(runtime.registry, "call_timeout", 1.5)
    _add_server(client, admin, "web", {"url": http_server}, tool_policies={"slow": "auto"})
    alice = create_user()
    chat = create_conversation(client, alice)
    turn = send_message(client, alice, chat["uuid"], 'TOOL web__slow {"seconds": 30}').json()
    [execution] = turn["tool_executions"]
    assert execution["status"] == "failed" and "did not answer within" in execution["result"]
    [tool_message] = _tool_messages(_completions()[-1])
    assert "did not answer within 1.5 s" in tool_message["content"]


def test_a_tool_the_user_may_not_use_is_never_offered_to_the_provider(
    client: TestClient, admin: ChatUser, provider: None
) -> None:
    _add_server(client, admin, "tests", stdio_entry(), access="users", users=["nobody"])
    alice = create_user()
    chat = create_conversation(client, alice)
    turn = send_message(client, alice, chat["uuid"], 'TOOL tests__echo {"text": "x"}').json()
    assert turn["tool_executions"] == []
    [only] = _completions()
    assert not any(t["function"]["name"].startswith("tests__") for t in only["tools"])
    assert "No tool named tests__echo was offered" in turn["assistant_message"]["content"]


def test_a_failing_tool_is_logged_and_the_provider_is_told_why(
    client: TestClient, admin: ChatUser, provider: None
) -> None:
    _add_server(client, admin, "tests", stdio_entry(), tool_policies={"fail": "auto"})
    alice = create_user()
    chat = create_conversation(client, alice)
    turn = send_message(client, alice, chat["uuid"], "TOOL tests__fail {}").json()
    [execution] = turn["tool_executions"]
    assert execution["status"] == "failed" and "Error executing tool fail" in execution["result"]
    [tool_message] = _tool_messages(_completions()[-1])
    assert "Error executing tool fail" in tool_message["content"]
    audit = client.get("/api/admin/tool-executions?server=tests", headers=admin.headers).json()
    assert audit["data"][0]["execution"]["status"] == "failed"
