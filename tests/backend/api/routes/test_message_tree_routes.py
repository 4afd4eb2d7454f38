"""The message tree over HTTP: editing makes a branch, regenerating any answer makes a version,
the model sees the path continued, and the branch shown is remembered."""

import pytest
from chat_factories import create_conversation, create_user, send_message
from fake_openai_server import FakeOpenAIServer, received
from fastapi.testclient import TestClient

from backend.core.config import settings


def branch(client: TestClient, user, uuid: str) -> dict:  # noqa: ANN001
    response = client.get(f"/api/conversations/{uuid}/messages", headers=user.headers)
    assert response.status_code == 200
    return response.json()


def contents(client: TestClient, user, uuid: str) -> list[str]:  # noqa: ANN001
    return [m["content"] for m in branch(client, user, uuid)["data"]]


def regenerate(client: TestClient, user, uuid: str, **body) -> dict:  # noqa: ANN001
    response = client.post(f"/api/conversations/{uuid}/regenerate", json=body, headers=user.headers)
    assert response.status_code == 201, response.text
    return response.json()


def show(client: TestClient, user, uuid: str, message_uuid: str):  # noqa: ANN001, ANN201
    return client.put(
        f"/api/conversations/{uuid}/current",
        json={"message_uuid": message_uuid},
        headers=user.headers,
    )


def prompt_sent() -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in received[-1]["body"]["messages"]]


def two_turns(client: TestClient, user) -> tuple[str, list[dict]]:  # noqa: ANN001
    uuid = create_conversation(client, user)["uuid"]
    first = send_message(client, user, uuid, "first question").json()
    second = send_message(client, user, uuid, "second question").json()
    messages = [
        first["user_message"],
        first["assistant_message"],
        second["user_message"],
        second["assistant_message"],
    ]
    return uuid, messages


def test_messages_link_to_their_parents_and_the_last_is_shown(client: TestClient) -> None:
    user = create_user()
    uuid, (q1, a1, q2, a2) = two_turns(client, user)
    listed = branch(client, user, uuid)
    assert [m["uuid"] for m in listed["data"]] == [q1["uuid"], a1["uuid"], q2["uuid"], a2["uuid"]]
    assert [m["parent_uuid"] for m in listed["data"]] == [None, q1["uuid"], a1["uuid"], q2["uuid"]]
    assert [m["versions"] for m in listed["data"]] == [[m["uuid"]] for m in listed["data"]]
    assert listed["current_message_uuid"] == a2["uuid"] and listed["count"] == 4
    assert a2["parent_uuid"] == q2["uuid"] and a2["versions"] == [a2["uuid"]]
    conversation = client.get(f"/api/conversations/{uuid}", headers=user.headers).json()
    assert conversation["current_message_uuid"] == a2["uuid"]


def test_editing_a_question_branches_with_its_own_answer(
    client: TestClient, real_provider: FakeOpenAIServer
) -> None:
    user = create_user()
    uuid, (q1, a1, q2, a2) = two_turns(client, user)
    edited = send_message(client, user, uuid, "second, asked better", edit_of=q2["uuid"]).json()
    # The model saw the path it continues: not the old second question nor its answer.
    assert prompt_sent() == [
        ("user", "first question"),
        ("assistant", a1["content"]),
        ("user", "second, asked better"),
    ]
    question = edited["user_message"]
    assert question["parent_uuid"] == a1["uuid"]
    assert question["versions"] == [q2["uuid"], question["uuid"]]
    assert edited["assistant_message"]["parent_uuid"] == question["uuid"]
    listed = branch(client, user, uuid)["data"]
    assert [m["uuid"] for m in listed] == [
        q1["uuid"],
        a1["uuid"],
        question["uuid"],
        edited["assistant_message"]["uuid"],
    ]
    assert listed[2]["versions"] == [q2["uuid"], question["uuid"]]
    # The first branch is still there, whole.
    assert show(client, user, uuid, q2["uuid"]).status_code == 200
    assert contents(client, user, uuid) == [
        q1["content"],
        a1["content"],
        q2["content"],
        a2["content"],
    ]


def test_editing_the_first_question_makes_a_second_root(client: TestClient) -> None:
    user = create_user()
    uuid, (q1, _, _, _) = two_turns(client, user)
    edited = send_message(client, user, uuid, "a different start", edit_of=q1["uuid"]).json()
    assert edited["user_message"]["parent_uuid"] is None
    listed = branch(client, user, uuid)
    assert listed["data"][0]["content"] == "a different start"
    assert listed["count"] == 2 and listed["data"][0]["versions"] == [
        q1["uuid"],
        edited["user_message"]["uuid"],
    ]


def test_regenerating_an_older_answer_keeps_every_version(
    client: TestClient, real_provider: FakeOpenAIServer
) -> None:
    user = create_user()
    uuid, (q1, a1, q2, a2) = two_turns(client, user)
    again = regenerate(client, user, uuid, message_uuid=a1["uuid"])
    assert prompt_sent() == [("user", "first question")]  # only the path to that question
    new = again["assistant_message"]
    assert again["user_message"]["uuid"] == q1["uuid"] and new["parent_uuid"] == q1["uuid"]
    assert new["versions"] == [a1["uuid"], new["uuid"]]
    listed = branch(client, user, uuid)
    assert [m["uuid"] for m in listed["data"]] == [q1["uuid"], new["uuid"]]
    assert listed["data"][1]["versions"] == [a1["uuid"], new["uuid"]]
    # Back to the first version: its branch opens where it ended.
    assert show(client, user, uuid, a1["uuid"]).json()["current_message_uuid"] == a2["uuid"]
    assert [m["uuid"] for m in branch(client, user, uuid)["data"]] == [
        q1["uuid"],
        a1["uuid"],
        q2["uuid"],
        a2["uuid"],
    ]


def test_the_branch_shown_is_where_the_chat_continues(
    client: TestClient, real_provider: FakeOpenAIServer
) -> None:
    user = create_user()
    uuid, (_, a1, _, _) = two_turns(client, user)
    new = regenerate(client, user, uuid, message_uuid=a1["uuid"])["assistant_message"]
    show(client, user, uuid, a1["uuid"])
    show(client, user, uuid, new["uuid"])
    follow_up = send_message(client, user, uuid, "and then?").json()
    assert follow_up["user_message"]["parent_uuid"] == new["uuid"]
    assert prompt_sent() == [
        ("user", "first question"),
        ("assistant", new["content"]),
        ("user", "and then?"),
    ]


def test_switching_versions_does_not_move_the_chat_in_the_list(client: TestClient) -> None:
    user = create_user()
    uuid, (_, a1, _, _) = two_turns(client, user)
    new = regenerate(client, user, uuid, message_uuid=a1["uuid"])["assistant_message"]
    before = client.get(f"/api/conversations/{uuid}", headers=user.headers).json()
    switched = show(client, user, uuid, a1["uuid"]).json()
    assert switched["updated_at"] == before["updated_at"]
    assert show(client, user, uuid, new["uuid"]).json()["current_message_uuid"] == new["uuid"]


def test_a_failed_regeneration_shows_the_earlier_branch_again(
    client: TestClient, real_provider: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = create_user()
    uuid, messages = two_turns(client, user)
    monkeypatch.setattr(settings, "OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # nobody there
    response = client.post(
        f"/api/conversations/{uuid}/regenerate",
        json={"message_uuid": messages[1]["uuid"]},
        headers=user.headers,
    )
    assert response.status_code in {502, 503, 504}
    assert [m["uuid"] for m in branch(client, user, uuid)["data"]] == [m["uuid"] for m in messages]


def test_regenerating_without_a_target_answers_the_question_shown(client: TestClient) -> None:
    user = create_user()
    uuid, (_, _, q2, a2) = two_turns(client, user)
    again = regenerate(client, user, uuid)
    assert again["user_message"]["uuid"] == q2["uuid"]
    assert again["assistant_message"]["versions"] == [
        a2["uuid"],
        again["assistant_message"]["uuid"],
    ]


def test_bad_references_are_clear_4xx(client: TestClient) -> None:
    user, other = create_user(), create_user()
    uuid, (q1, a1, _, _) = two_turns(client, user)
    elsewhere, (other_q, _, _, _) = two_turns(client, other)
    url = f"/api/conversations/{uuid}/messages"
    edit_answer = client.post(
        url, json={"content": "x", "edit_of": a1["uuid"]}, headers=user.headers
    )
    assert edit_answer.status_code == 400 and "question" in edit_answer.json()["detail"]
    unknown = client.post(url, json={"content": "x", "parent_uuid": "nope"}, headers=user.headers)
    assert unknown.status_code == 404 and "Message not found" in unknown.json()["detail"]
    foreign = client.post(
        url, json={"content": "x", "edit_of": other_q["uuid"]}, headers=user.headers
    )
    assert foreign.status_code == 404
    both = client.post(
        url,
        json={"content": "x", "parent_uuid": a1["uuid"], "edit_of": q1["uuid"]},
        headers=user.headers,
    )
    assert both.status_code == 422 and "not both" in str(both.json()["detail"])
    assert show(client, user, uuid, other_q["uuid"]).status_code == 404
    assert show(client, other, uuid, q1["uuid"]).status_code == 404  # not their conversation
    regen = client.post(
        f"/api/conversations/{uuid}/regenerate", json={"message_uuid": "x"}, headers=user.headers
    )
    assert regen.status_code == 404
    assert len(branch(client, user, uuid)["data"]) == 4  # nothing was stored
    assert len(branch(client, other, elsewhere)["data"]) == 4
