"""Tool calls: the mock proposes them, auto mode runs them, approval mode waits; all logged."""

import pytest
from chat_factories import create_conversation, create_user, parse_sse, send_message
from fastapi.testclient import TestClient

from backend.services.calculator import CalculationError, calculate


def _executions(client: TestClient, user, uuid: str) -> list[dict]:  # noqa: ANN001
    response = client.get(f"/api/conversations/{uuid}/tool-executions", headers=user.headers)
    assert response.status_code == 200
    return response.json()["data"]


def test_calculator_tool_runs_automatically_and_is_logged(client: TestClient) -> None:
    alice = create_user()
    chat = create_conversation(client, alice)
    turn = send_message(client, alice, chat["uuid"], "calculate 2+3*4").json()
    assert turn["pending"] is False
    assert turn["assistant_message"]["content"] == "Mock answer: the calculator tool returned 14"
    [execution] = turn["tool_executions"]
    assert execution["tool_name"] == "calculator" and execution["arguments"] == {
        "expression": "2+3*4"
    }
    assert execution["status"] == "succeeded" and execution["approval"] == "auto"
    assert execution["result"] == "14" and execution["duration_ms"] >= 0
    assert execution["question_uuid"] == turn["user_message"]["uuid"]
    assert _executions(client, alice, chat["uuid"]) == [execution]
    # Tool-call tokens count toward the answer's usage.
    assert turn["assistant_message"]["response"]["tokens_prompt"] > 0


def test_plain_questions_and_disabled_tools_answer_as_before(client: TestClient) -> None:
    alice = create_user()
    chat = create_conversation(client, alice)
    plain = send_message(client, alice, chat["uuid"], "hello").json()
    assert plain["tool_executions"] == [] and plain["assistant_message"]["content"].startswith(
        "Mock answer #1"
    )
    client.patch(
        f"/api/conversations/{chat['uuid']}", json={"tools_enabled": False}, headers=alice.headers
    )
    off = send_message(client, alice, chat["uuid"], "calculate 1+1").json()
    assert off["assistant_message"]["content"].startswith("Mock answer #2")
    assert _executions(client, alice, chat["uuid"]) == []


def test_approval_mode_waits_then_approve_continues_the_answer(client: TestClient) -> None:
    alice = create_user()
    chat = create_conversation(client, alice)
    patched = client.patch(
        f"/api/conversations/{chat['uuid']}", json={"tool_approval": True}, headers=alice.headers
    )
    assert patched.json()["tool_approval"] is True
    turn = send_message(client, alice, chat["uuid"], "calculate (1+2)^3").json()
    assert turn["pending"] is True and turn["assistant_message"] is None
    [pending] = turn["tool_executions"]
    assert pending["status"] == "pending" and pending["result"] is None
    base = f"/api/conversations/{chat['uuid']}/tool-executions/{pending['uuid']}"
    approved = client.post(f"{base}/approve", headers=alice.headers)
    assert approved.status_code == 201, approved.text
    body = approved.json()
    assert body["assistant_message"]["content"] == "Mock answer: the calculator tool returned 27"
    [done] = body["tool_executions"]
    assert done["approval"] == "approved" and done["approved_by"] == alice.username
    assert done["result"] == "27" and done["decided_at"] is not None
    assert client.post(f"{base}/approve", headers=alice.headers).status_code == 409
    messages = client.get(
        f"/api/conversations/{chat['uuid']}/messages", headers=alice.headers
    ).json()
    assert [m["role"] for m in messages["data"]] == ["user", "assistant"]


def test_reject_and_permissions(client: TestClient) -> None:
    alice, bob = create_user(), create_user()
    chat = create_conversation(client, alice)
    client.patch(
        f"/api/conversations/{chat['uuid']}", json={"tool_approval": True}, headers=alice.headers
    )
    pending = send_message(client, alice, chat["uuid"], "what time is it?").json()[
        "tool_executions"
    ][0]
    assert pending["tool_name"] == "current_datetime"
    base = f"/api/conversations/{chat['uuid']}/tool-executions/{pending['uuid']}"
    assert client.post(f"{base}/approve", headers=bob.headers).status_code == 404
    assert (
        client.get(
            f"/api/conversations/{chat['uuid']}/tool-executions", headers=bob.headers
        ).status_code
        == 404
    )
    missing = f"/api/conversations/{chat['uuid']}/tool-executions/nope/reject"
    assert client.post(missing, headers=alice.headers).status_code == 404
    rejected = client.post(f"{base}/reject", headers=alice.headers).json()
    assert rejected["tool_executions"][0]["status"] == "rejected"
    assert "rejected" in rejected["assistant_message"]["content"]
    assert client.get("/api/tools").status_code == 401
    names = [t["name"] for t in client.get("/api/tools", headers=alice.headers).json()["data"]]
    assert names == ["calculator", "current_datetime", "search_conversations"]


def test_streamed_tool_events_and_search_tool(client: TestClient) -> None:
    alice = create_user()
    older = create_conversation(client, alice)
    send_message(client, alice, older["uuid"], "my bicycle needs new brakes")
    chat = create_conversation(client, alice)
    response = client.post(
        f"/api/conversations/{chat['uuid']}/messages",
        json={"content": "search my conversations for bicycle"},
        headers={**alice.headers, "Accept": "text/event-stream"},
    )
    events = parse_sse(response.text)
    names = [name for name, _ in events]
    assert names[0] == "start" and names[1] == "tool_result" and names[-1] == "done"
    result = events[1][1]["execution"]
    assert result["tool_name"] == "search_conversations" and "bicycle" in result["result"]
    assert "delta" in names
    assert events[-1][1]["assistant_message"]["content"].startswith(
        "Mock answer: the search_conversations"
    )


def test_streamed_approval_flow(client: TestClient) -> None:
    alice = create_user()
    chat = create_conversation(client, alice)
    client.patch(
        f"/api/conversations/{chat['uuid']}", json={"tool_approval": True}, headers=alice.headers
    )
    sse = {**alice.headers, "Accept": "text/event-stream"}
    first = parse_sse(
        client.post(
            f"/api/conversations/{chat['uuid']}/messages",
            json={"content": "calculate 6*7"},
            headers=sse,
        ).text
    )
    assert [name for name, _ in first] == ["start", "tool_call", "done"]
    assert first[-1][1]["pending"] is True
    execution = first[1][1]["execution"]["uuid"]
    url = f"/api/conversations/{chat['uuid']}/tool-executions/{execution}/approve"
    second = parse_sse(client.post(url, headers=sse).text)
    assert second[1][0] == "tool_result" and second[1][1]["execution"]["result"] == "42"
    assert second[-1][0] == "done" and second[-1][1]["assistant_message"]["content"].endswith("42")


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("2+3*4", "14"),
        ("(2+3)*4", "20"),
        ("2^3^2", "512"),
        ("-2**2", "-4"),
        ("7/2", "3.5"),
        ("10 % 4", "2"),
    ],
)
def test_calculator(expression: str, value: str) -> None:
    assert calculate(expression) == value


@pytest.mark.parametrize(
    "expression", ["", "1/0", "2**99999", "__import__('os')", "1+", "(1", "2 3", "x"]
)
def test_calculator_refuses(expression: str) -> None:
    with pytest.raises(CalculationError):
        calculate(expression)


def test_failed_tool_is_logged_as_failed(client: TestClient) -> None:
    alice = create_user()
    chat = create_conversation(client, alice)
    turn = send_message(client, alice, chat["uuid"], "calculate 1/0").json()
    assert turn["tool_executions"][0]["status"] == "failed"
    assert turn["tool_executions"][0]["result"] == "Division by zero"
    assert turn["assistant_message"] is not None


def test_every_new_route_is_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/usage",
        "/api/usage/limits",
        "/api/admin/usage",
        "/api/admin/limits/default",
        "/api/admin/users/{user_id}/limits",
        "/api/search",
        "/api/conversations/{uuid}/snapshots",
        "/api/conversations/{uuid}/snapshots/{snapshot_uuid}/restore",
        "/api/export",
        "/api/import",
        "/api/admin/archive-idle",
        "/api/tools",
        "/api/conversations/{uuid}/tool-executions",
        "/api/conversations/{uuid}/tool-executions/{execution_uuid}/approve",
        "/api/conversations/{uuid}/tool-executions/{execution_uuid}/reject",
    ):
        assert path in paths, path
    send = paths["/api/conversations/{uuid}/messages"]["post"]["responses"]
    assert "429" in send
