"""SQL tables exposed as databases of entities: reads select rows, writes go through SQL."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from ddb_server_helpers import Api

metadata = sa.MetaData()
users = sa.Table(
    "users", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(120), nullable=False, unique=True),
    sa.Column("name", sa.String(80)),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("avatar", sa.LargeBinary),
    sa.Column("balance", sa.Numeric(10, 2)),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
)
conversations = sa.Table(
    "conversations", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("title", sa.Text),
)
messages = sa.Table(
    "messages", metadata,
    sa.Column("conversation_id", sa.String(36), sa.ForeignKey("conversations.id"),
              primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("content", sa.Text, nullable=False),
)

ALICE = {"email": "alice@example.com", "name": "Alice", "created_at": "2026-01-02T03:04:05",
         "avatar": base64.b64encode(b"\x00\x01png").decode(), "balance": "12.50", "active": True}


@pytest.fixture
def tables_api(make_api: object, engine_url: str) -> Iterator[Api]:
    engine = sa.create_engine(engine_url)
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        metadata.create_all(conn)
    engine.dispose()
    yield make_api(catalog_ttl=0.0)  # type: ignore[operator]


def put(api: Api, db: str, docs: dict[str, object]) -> tuple[int, dict[str, object]]:
    response = api.client.put(f"/entity/{db}", json=docs, headers=api.admin())
    return response.status_code, response.json()


def test_tables_are_listed_as_databases(tables_api: Api) -> None:
    put(tables_api, "users", {"1": ALICE})
    put(tables_api, "chatdb", {"s": {}})
    databases = tables_api.client.get("/databases", headers=tables_api.admin()).json()
    kinds = {d["name"]: (d["kind"], d["entities"]) for d in databases["databases"]}
    assert kinds == {"users": ("table", 1), "conversations": ("table", 0),
                     "messages": ("table", 0), "chatdb": ("entities", 1)}


def test_row_round_trip_with_json_encodings(tables_api: Api, engine_url: str) -> None:
    assert put(tables_api, "users", {"1": ALICE}) == (200, {"status": "ok"})
    doc = tables_api.client.get("/entity/users?key=1", headers=tables_api.admin()).json()
    assert doc == {**ALICE, "id": 1}
    engine = sa.create_engine(engine_url)
    with engine.connect() as conn:
        row = conn.execute(sa.select(users)).one()
    engine.dispose()
    assert row.created_at == dt.datetime(2026, 1, 2, 3, 4, 5)
    assert row.avatar == b"\x00\x01png" and row.balance == decimal.Decimal("12.50")


def test_rows_written_by_sql_are_readable_as_entities(tables_api: Api, engine_url: str) -> None:
    engine = sa.create_engine(engine_url)
    with engine.begin() as conn:
        conn.execute(users.insert().values(id=7, email="b@x", created_at=dt.datetime(2026, 5, 1)))
    engine.dispose()
    doc = tables_api.client.get("/entity/users?key=7", headers=tables_api.admin()).json()
    assert doc["email"] == "b@x" and doc["created_at"] == "2026-05-01T00:00:00"


def test_put_updates_only_the_given_columns(tables_api: Api) -> None:
    put(tables_api, "users", {"1": ALICE})
    assert put(tables_api, "users", {"1": {"name": "Alice B."}})[0] == 200
    doc = tables_api.client.get("/entity/users?key=1", headers=tables_api.admin()).json()
    assert doc["name"] == "Alice B." and doc["email"] == ALICE["email"]


def test_constraints_hold(tables_api: Api) -> None:
    put(tables_api, "users", {"1": ALICE})
    status, body = put(tables_api, "users", {"2": {**ALICE}})  # same email
    assert status == 409 and "error" in body
    status, body = put(tables_api, "users", {"3": {"email": "c@x"}})  # created_at NOT NULL
    assert status == 400 and "error" in body
    status, body = put(tables_api, "conversations", {"c1": {"user_id": 99}})  # no such user
    assert status == 409 and "error" in body


def test_a_put_of_several_rows_is_all_or_nothing(tables_api: Api) -> None:
    put(tables_api, "users", {"1": ALICE})
    status, _ = put(tables_api, "users", {"2": {**ALICE, "email": "new@x"}, "3": ALICE})
    assert status == 409
    assert tables_api.client.get("/entity/users?key=2", headers=tables_api.admin()).status_code \
        == 404


@pytest.mark.parametrize("doc, fragment", [
    ({"nickname": "x"}, "unknown column"),
    ({"id": 2, **ALICE}, "does not match the entity key"),
    ({**ALICE, "created_at": "yesterday"}, "created_at"),
    ({**ALICE, "avatar": "%%%"}, "avatar"),
    ({**ALICE, "balance": "lots"}, "balance"),
    ({**ALICE, "active": "yes"}, "active"),
    ({**ALICE, "name": 5}, "name"),
])
def test_bad_rows_are_400(tables_api: Api, doc: dict[str, object], fragment: str) -> None:
    status, body = put(tables_api, "users", {"1": doc})
    assert status == 400 and fragment in str(body["error"])


def test_non_object_document_for_a_table_is_400(tables_api: Api) -> None:
    assert put(tables_api, "users", {"1": [1, 2]})[0] == 400


def test_integer_key_must_be_an_integer(tables_api: Api) -> None:
    response = tables_api.client.get("/entity/users?key=abc", headers=tables_api.admin())
    assert response.status_code == 400


def test_composite_keys_are_json_arrays(tables_api: Api) -> None:
    put(tables_api, "users", {"1": ALICE})
    put(tables_api, "conversations", {"c1": {"user_id": 1, "title": "Hi"}})
    key = json.dumps(["c1", 1], separators=(",", ":"))
    assert put(tables_api, "messages", {key: {"content": "hello"}})[0] == 200
    assert put(tables_api, "messages", {'["c1",2]': {"content": "again"}})[0] == 200
    headers = tables_api.admin()
    doc = tables_api.client.get("/entity/messages", params={"key": key}, headers=headers).json()
    assert doc == {"conversation_id": "c1", "seq": 1, "content": "hello"}
    listing = tables_api.client.get("/entities/messages", headers=headers).json()
    assert listing["keys"] == ['["c1",1]', '["c1",2]']
    page = tables_api.client.get("/entities/messages?limit=1", headers=headers).json()
    assert page["keys"] == ['["c1",1]'] and page["next_cursor"]
    rest = tables_api.client.get("/entities/messages", headers=headers,
                                 params={"limit": 1, "cursor": page["next_cursor"]}).json()
    assert rest["keys"] == ['["c1",2]'] and rest["next_cursor"] is None
    for bad in ("c1", '["c1"]', '["c1","x"]'):
        response = tables_api.client.get("/entity/messages", params={"key": bad}, headers=headers)
        assert response.status_code == 400, bad


def test_integer_keys_page_in_numeric_order(tables_api: Api) -> None:
    put(tables_api, "users", {str(i): {**ALICE, "email": f"u{i}@x"} for i in (1, 2, 10, 11, 20)})
    headers = tables_api.admin()
    first = tables_api.client.get("/entities/users?limit=3", headers=headers).json()
    assert first["keys"] == ["1", "2", "10"]
    second = tables_api.client.get("/entities/users", headers=headers,
                                   params={"limit": 3, "cursor": first["next_cursor"]}).json()
    assert second["keys"] == ["11", "20"]
    prefixed = tables_api.client.get("/entities/users?prefix=1", headers=headers).json()
    assert prefixed["keys"] == ["1", "10", "11"]


def test_delete_a_row_and_foreign_keys(tables_api: Api) -> None:
    put(tables_api, "users", {"1": ALICE, "2": {**ALICE, "email": "two@x"}})
    put(tables_api, "conversations", {"c1": {"user_id": 1}})
    headers = tables_api.admin()
    response = tables_api.client.delete("/entity/users?key=1", headers=headers)
    assert response.status_code == 409 and "error" in response.json()
    assert tables_api.client.delete("/entity/users?key=2", headers=headers).status_code == 200
    assert tables_api.client.get("/entity/users?key=2", headers=headers).status_code == 404


def test_generated_schema_of_a_table(tables_api: Api) -> None:
    headers = tables_api.admin()
    schema = tables_api.client.get("/schema/users", headers=headers).json()
    assert schema["properties"]["email"] == {"type": "string", "maxLength": 120}
    assert "email" in schema["required"] and "id" not in schema["required"]
    listed = tables_api.client.get("/admin/schemas", headers=headers).json()["schemas"]
    assert {s["id"]: s["generated"] for s in listed} == {
        "conversations": True, "messages": True, "users": True}


def test_a_stored_schema_also_guards_a_table(tables_api: Api) -> None:
    headers = tables_api.admin()
    tables_api.client.put("/schema/users", headers=headers, json={
        "type": "object", "properties": {"email": {"type": "string", "format": "email",
                                                   "pattern": "@example\\.com$"}}})
    assert put(tables_api, "users", {"5": {**ALICE, "email": "x@elsewhere.org"}})[0] == 400
    assert put(tables_api, "users", {"5": ALICE})[0] == 200
