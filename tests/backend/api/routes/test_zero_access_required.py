"""An admin requires zero-access conversations for everyone (the admin UI's switch): stored in
the database, audited, overridden by ZERO_ACCESS_REQUIRED; what it does to users without it."""

import logging
from typing import Any

import pytest
from chat_factories import DEFAULT_PASSWORD, create_user
from chat_factories import wait_for_privacy_state as wait_for_state
from fastapi.testclient import TestClient
from sqlalchemy import select

from backend.core.config import settings
from backend.core.db import SessionLocal
from backend.models import ServerSetting
from backend.services import server_settings

PATH = "/api/admin/zero-access"


def sign_in(client: TestClient, username: str) -> Any:
    response = client.post(
        "/api/auth/login", json={"username": username, "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 200, response.text
    return response.json()


def bearer(signed_in: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {signed_in['access_token']}"}



def require(client: TestClient, headers: dict[str, str], required: bool) -> Any:
    response = client.put(PATH, json={"required": required}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_only_admins_read_or_change_the_requirement(client: TestClient) -> None:
    user = create_user(username="plain")
    assert client.get(PATH).status_code == 401
    assert client.get(PATH, headers=user.headers).status_code == 403
    refused = client.put(PATH, json={"required": True}, headers=user.headers)
    assert refused.status_code == 403
    assert "Administrator" in refused.json()["detail"]
    with SessionLocal() as session:
        assert session.scalars(select(ServerSetting)).all() == []


@pytest.mark.parametrize(
    "body",
    [{}, {"required": "yes"}, {"required": 1}, {"required": None}, {"required": True, "x": 1}],
)
def test_bad_input_is_a_4xx_with_a_sentence(client: TestClient, body: dict[str, Any]) -> None:
    admin = create_user(username="root", is_admin=True)
    response = client.put(PATH, json=body, headers=admin.headers)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]  # the app's validation answer: where, and a sentence
    assert detail and all(error["msg"] and error["loc"][0] == "body" for error in detail)
    assert client.get(PATH, headers=admin.headers).json()["required"] is False


def test_the_switch_is_stored_with_who_changed_it_and_logged(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    admin = create_user(username="root", is_admin=True)
    create_user(username="bo")
    before = client.get(PATH, headers=admin.headers).json()
    assert before == {
        "required": False,
        "source": "default",
        "updated_at": None,
        "updated_by": None,
        "users_without": 2,
    }
    with caplog.at_level(logging.INFO, logger="backend.services.server_settings"):
        after = require(client, admin.headers, True)
    assert after["required"] is True and after["source"] == "admin"
    assert after["updated_by"] == "root" and after["updated_at"]
    changed = [r for r in caplog.records if r.getMessage() == "server_setting_changed"]
    assert len(changed) == 1
    assert (changed[0].before, changed[0].after, changed[0].admin) == (False, True, "root")  # type: ignore[attr-defined]
    with SessionLocal() as session:
        row = session.get(ServerSetting, server_settings.ZERO_ACCESS_REQUIRED)
        assert row is not None and row.value == "true" and row.updated_by_id == admin.id
    # Another process's cache would expire; the stored value is what every process reads.
    server_settings.forget_cached()
    assert client.get(PATH, headers=admin.headers).json()["required"] is True
    assert require(client, admin.headers, False)["required"] is False


def test_the_configuration_wins_and_the_switch_says_so(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = create_user(username="root", is_admin=True)
    require(client, admin.headers, True)
    monkeypatch.setattr(settings, "ZERO_ACCESS_REQUIRED", False)
    shown = client.get(PATH, headers=admin.headers).json()
    assert (shown["required"], shown["source"]) == (False, "configuration")
    refused = client.put(PATH, json={"required": True}, headers=admin.headers)
    assert refused.status_code == 409
    assert "ZERO_ACCESS_REQUIRED" in refused.json()["detail"]
    # Set to false, the configuration wins over the admin's stored "required".
    create_user(username="free")
    assert sign_in(client, "free")["recovery_key"] is None
    monkeypatch.setattr(settings, "ZERO_ACCESS_REQUIRED", True)
    assert client.get(PATH, headers=admin.headers).json()["required"] is True


def test_an_open_session_without_the_mode_can_read_but_not_write_until_it_is_on(
    client: TestClient,
) -> None:
    admin = create_user(username="root", is_admin=True)
    user = create_user(username="cleo")  # signed in before the switch
    made = client.post("/api/conversations", json={"title": "Plans"}, headers=user.headers)
    assert made.status_code == 201
    uuid = made.json()["uuid"]
    asked = client.post(
        f"/api/conversations/{uuid}/messages", json={"content": "hello"}, headers=user.headers
    )
    assert asked.status_code == 201, asked.text

    require(client, admin.headers, True)
    status = client.get("/api/privacy", headers=user.headers).json()
    assert (status["state"], status["required"]) == ("off", True)
    # Reading, listing and exporting still work.
    assert (
        client.get(f"/api/conversations/{uuid}/messages", headers=user.headers).status_code == 200
    )
    assert client.get("/api/export", headers=user.headers).status_code == 200
    # Writing content does not, with a sentence saying what to do.
    for method, path, body in [
        ("POST", f"/api/conversations/{uuid}/messages", {"content": "more"}),
        ("POST", "/api/conversations", {"title": "New"}),
        ("PATCH", f"/api/conversations/{uuid}", {"title": "Renamed"}),
        ("POST", "/api/import", {"version": 1, "conversations": []}),
        ("POST", "/api/imports?filename=x.json", None),
    ]:
        response = client.request(method, path, json=body, headers=user.headers)
        assert response.status_code == 403, (path, response.text)
        assert "requires zero-access" in response.json()["detail"], path
    listed = client.get("/api/conversations", headers=user.headers).json()["data"]
    assert [c["title"] for c in listed] == ["Plans"]

    # Turning it on (the password, the recovery key shown) lets them chat again.
    on = client.post("/api/privacy/on", json={"password": DEFAULT_PASSWORD}, headers=user.headers)
    assert on.status_code == 200, on.text
    assert on.json()["recovery_key"]
    wait_for_state(client, user.headers, "on")
    again = client.post(
        f"/api/conversations/{uuid}/messages", json={"content": "more"}, headers=user.headers
    )
    assert again.status_code == 201, again.text
    off = client.post("/api/privacy/off", json={"password": DEFAULT_PASSWORD}, headers=user.headers)
    assert off.status_code == 400 and "requires" in off.json()["detail"]


def test_the_next_sign_in_turns_it_on_and_shows_the_recovery_key_once(
    client: TestClient,
) -> None:
    admin = create_user(username="root", is_admin=True)
    create_user(username="dev")
    registered = client.post(
        "/api/auth/register",
        json={"username": "newbie", "email": "newbie@example.com", "password": DEFAULT_PASSWORD},
    )
    assert registered.status_code == 201, registered.text
    require(client, admin.headers, True)
    for name in ("dev", "newbie"):
        first = sign_in(client, name)
        assert first["recovery_key"], name
        headers = bearer(first)
        assert wait_for_state(client, headers, "on")["session_holds_key"] is True
        made = client.post("/api/conversations", json={"title": "Sealed"}, headers=headers)
        assert made.status_code == 201, made.text
        assert sign_in(client, name)["recovery_key"] is None  # once
    shown = client.get(PATH, headers=admin.headers).json()
    assert shown["users_without"] == 1  # the admin, until they sign in again


def test_lifting_the_requirement_changes_nothing_for_those_who_have_it(
    client: TestClient,
) -> None:
    admin = create_user(username="root", is_admin=True)
    create_user(username="eve")
    require(client, admin.headers, True)
    headers = bearer(sign_in(client, "eve"))
    wait_for_state(client, headers, "on")
    require(client, admin.headers, False)
    status = client.get("/api/privacy", headers=headers).json()
    assert (status["state"], status["required"]) == ("on", False)
    assert sign_in(client, "eve")["recovery_key"] is None
    create_user(username="fay")
    assert sign_in(client, "fay")["recovery_key"] is None  # not required any more
    off = client.post("/api/privacy/off", json={"password": DEFAULT_PASSWORD}, headers=headers)
    assert off.status_code == 200, off.text
    wait_for_state(client, headers, "off")


def test_a_tool_call_waiting_since_before_is_not_decided_until_the_mode_is_on(
    client: TestClient,
) -> None:
    admin = create_user(username="root", is_admin=True)
    user = create_user(username="gus")
    uuid = client.post("/api/conversations", json={}, headers=user.headers).json()["uuid"]
    base = f"/api/conversations/{uuid}"
    assert client.patch(base, json={"tool_approval": True}, headers=user.headers).status_code == 200
    waiting = []
    for question in ("calculate (1+2)^3", "calculate 7*6"):
        turn = client.post(f"{base}/messages", json={"content": question}, headers=user.headers)
        assert turn.status_code == 201, turn.text
        waiting.append(turn.json()["tool_executions"][0]["uuid"])
    require(client, admin.headers, True)
    for execution, decision, body in [
        (waiting[0], "approve", None),
        (waiting[1], "reject", {"reason": "not now"}),
    ]:
        decided = client.post(
            f"{base}/tool-executions/{execution}/{decision}", json=body, headers=user.headers
        )
        assert decided.status_code == 403, decided.text
        assert "requires zero-access" in decided.json()["detail"]
    listed = client.get(f"{base}/tool-executions", headers=user.headers).json()["data"]
    assert {e["status"] for e in listed} == {"pending"}


def test_an_import_job_stops_once_the_mode_is_required_of_its_user(client: TestClient) -> None:
    from backend.services import import_runner

    admin = create_user(username="root", is_admin=True)
    user = create_user(username="bo")
    with SessionLocal() as session:
        assert import_runner._why_it_cannot_write(session=session, user_id=user.id) is None
    require(client, admin.headers, True)
    with SessionLocal() as session:
        refusal = import_runner._why_it_cannot_write(session=session, user_id=user.id)
    assert refusal is not None and "Turn the mode on in Settings, Privacy" in refusal
