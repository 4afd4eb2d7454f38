"""The gRPC API (``deltadb.MainWorker``, JSON inside gRPC frames) of a real ``serve`` process:
subscription, every operation, status codes, permissions, and durability."""

from __future__ import annotations

import base64
import json
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from ddb_server_helpers import (
    ADMIN_KEY,
    BACKENDS,
    MASTER_KEY,
    LiveServer,
    free_port,
    start_server,
    stop_server,
    store_url,
)

ADMIN = {"Authorization": "Bearer " + ADMIN_KEY}
BYTES_FIELDS = {"pubkey", "payload", "wrapped_key", "result"}


def encode(message: dict[str, Any]) -> bytes:
    """DeltaDatabase's JSON codec: bytes as base64, empty fields left out."""
    wire = {k: base64.b64encode(v).decode() if k in BYTES_FIELDS else v
            for k, v in message.items() if v}
    return json.dumps(wire).encode()


def decode(data: bytes) -> dict[str, Any]:
    wire = json.loads(data)
    return {k: base64.b64decode(v) if k in BYTES_FIELDS else v for k, v in wire.items()}


class Stub:
    def __init__(self, address: str) -> None:
        self.channel = grpc.insecure_channel(address)
        self.subscribe_call = self.channel.unary_unary(
            "/deltadb.MainWorker/Subscribe", request_serializer=encode,
            response_deserializer=decode)
        self.process_call = self.channel.unary_unary(
            "/deltadb.MainWorker/Process", request_serializer=encode,
            response_deserializer=decode)

    def subscribe(self, metadata: tuple[tuple[str, str], ...] = (), **message: Any
                  ) -> dict[str, Any]:
        result: dict[str, Any] = self.subscribe_call(message, metadata=metadata, timeout=30)
        return result

    def process(self, **message: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.process_call(message, timeout=30)
        return result


def rpc_error(call: Any, **message: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call(**message)
    code: grpc.StatusCode = caught.value.code()
    return code


@dataclass
class GrpcServer:
    live: LiveServer
    main: Stub
    worker_port: Stub
    worker_key: str
    worker_key_id: str
    private_key: rsa.RSAPrivateKey
    pem: bytes
    grpc_addr: str
    worker_addr: str

    @property
    def rest(self) -> str:
        return self.live.base_url


def _start(store: str, directory: Path, worker_key: str, grpc_addr: str, worker_addr: str,
           name: str) -> LiveServer:
    return start_server(store, directory / name, admin_key=ADMIN_KEY, extra=(
        "--grpc-addr", grpc_addr, "--worker-grpc-addr", worker_addr,
        "--grpc-worker", "worker-1,worker-2"), env_extra={"DELTADB_GRPC_WORKER_KEY": worker_key})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrpcServer]:
    directory = tmp_path_factory.mktemp("grpc")
    store = store_url(BACKENDS[0], directory)
    # The workers' key is made through the REST API first, then named at start.
    first = start_server(store, directory / "log0", admin_key=ADMIN_KEY)
    created = httpx.post(first.base_url + "/api/keys", headers=ADMIN, json={
        "name": "workers", "permissions": ["read", "write"], "databases": ["chat*"]}).json()
    stop_server(first)
    grpc_addr, worker_addr = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    live = _start(store, directory, created["key"], grpc_addr, worker_addr, "log1")
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    yield GrpcServer(live, Stub(grpc_addr), Stub(worker_addr), created["key"], created["id"],
                     private_key, pem, grpc_addr, worker_addr)
    stop_server(live)


@pytest.fixture(scope="module")
def token(server: GrpcServer) -> str:
    result: str = server.main.subscribe(worker_id="worker-1", pubkey=server.pem)["token"]
    return result


# ── Subscribe ────────────────────────────────────────────────────────────


def test_a_registered_worker_subscribes(server: GrpcServer) -> None:
    first = server.main.subscribe(worker_id="worker-1", pubkey=server.pem)
    second = server.main.subscribe(worker_id="worker-1", pubkey=server.pem)
    assert first["token"] and first["token"] != second["token"]
    assert first["key_id"] == second["key_id"] == "ddb-subscriber-key-v1"
    unwrap = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    key_one = server.private_key.decrypt(first["wrapped_key"], unwrap)
    key_two = server.private_key.decrypt(second["wrapped_key"], unwrap)
    # A fresh random key per subscriber, never the store's master key.
    assert len(key_one) == 32 and key_one != key_two
    assert key_one != bytes.fromhex(MASTER_KEY) and MASTER_KEY.encode() not in key_one
    assert first["token"].encode() not in first["wrapped_key"]


@pytest.mark.parametrize("message", [
    {"worker_id": "stranger"},  # not registered, no credentials
    {"worker_id": "worker-1 "},
])
def test_unknown_workers_are_refused(server: GrpcServer, message: dict[str, Any]) -> None:
    code = rpc_error(server.main.subscribe, pubkey=server.pem, **message)
    assert code == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("message", [
    {"worker_id": "", "pubkey": b"pubkey"},
    {"worker_id": "worker-1", "pubkey": b"bad"},
    {"worker_id": "worker-1"},
    {"worker_id": "x" * 300, "pubkey": b"k"},
])
def test_bad_subscriptions_are_invalid_arguments(server: GrpcServer, message: Any) -> None:
    assert rpc_error(server.main.subscribe, **message) == grpc.StatusCode.INVALID_ARGUMENT


def test_small_rsa_keys_are_refused(server: GrpcServer) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()  # noqa: S505 - refused
    pem = small.public_bytes(serialization.Encoding.PEM,
                             serialization.PublicFormat.SubjectPublicKeyInfo)
    code = rpc_error(server.main.subscribe, worker_id="worker-1", pubkey=pem)
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_subscribing_with_a_key_gives_that_keys_rights(server: GrpcServer) -> None:
    reader = httpx.post(server.rest + "/api/keys", headers=ADMIN, json={
        "name": "reader", "permissions": ["read"]}).json()["key"]
    granted = server.main.subscribe((("authorization", "Bearer " + reader),),
                                    worker_id="any-name", pubkey=server.pem)["token"]
    httpx.put(server.rest + "/entity/open", headers=ADMIN, json={"k": {"v": 1}})
    got = server.main.process(database_name="open", entity_key="k", operation="GET",
                              token=granted)
    assert json.loads(got["result"]) == {"v": 1}
    code = rpc_error(server.main.process, database_name="open", entity_key="k",
                     operation="PUT", payload=b"{}", token=granted)
    assert code == grpc.StatusCode.PERMISSION_DENIED


# ── Process ──────────────────────────────────────────────────────────────


def test_put_get_delete_share_the_rest_store(server: GrpcServer, token: str) -> None:
    doc = {"chat": [{"type": "assistant", "text": "hi"}]}
    put = server.main.process(schema_id="chatdb", entity_key="c1", operation="PUT",
                              payload=json.dumps(doc).encode(), token=token)
    assert put["status"] == "OK"
    assert httpx.get(server.rest + "/entity/chatdb?key=c1", headers=ADMIN).json() == doc
    httpx.put(server.rest + "/entity/chatdb", headers=ADMIN, json={"c2": {"from": "rest"}})
    got = server.main.process(database_name="chatdb", entity_key="c2", operation="GET",
                              token=token)
    assert got["status"] == "OK" and json.loads(got["result"]) == {"from": "rest"}
    assert server.main.process(database_name="chatdb", entity_key="c2", operation="DELETE",
                               token=token)["status"] == "OK"
    code = rpc_error(server.main.process, database_name="chatdb", entity_key="c2",
                     operation="GET", token=token)
    assert code == grpc.StatusCode.NOT_FOUND


def test_tokens_keep_the_worker_keys_scope(server: GrpcServer, token: str) -> None:
    for operation in ("GET", "PUT"):
        code = rpc_error(server.main.process, database_name="users", entity_key="1",
                         operation=operation, payload=b"{}", token=token)
        assert code == grpc.StatusCode.PERMISSION_DENIED
    code = rpc_error(server.main.process, schema_id="chatdb", operation="SCHEMA_PUT",
                     payload=b'{"type":"object"}', token=token)
    assert code == grpc.StatusCode.PERMISSION_DENIED  # no admin permission


@pytest.mark.parametrize("message, status", [
    ({"operation": "BAD"}, grpc.StatusCode.INVALID_ARGUMENT),
    ({"operation": "GET", "entity_key": "../etc/passwd"}, grpc.StatusCode.INVALID_ARGUMENT),
    ({"operation": "GET", "entity_key": "a/b"}, grpc.StatusCode.INVALID_ARGUMENT),
    ({"operation": "GET", "entity_key": "a\\b"}, grpc.StatusCode.INVALID_ARGUMENT),
    ({"operation": "GET", "schema_id": "../chatdb"}, grpc.StatusCode.INVALID_ARGUMENT),
    ({"operation": "GET", "entity_key": ""}, grpc.StatusCode.INVALID_ARGUMENT),
    ({"operation": "PUT", "payload": b"{not json"}, grpc.StatusCode.INVALID_ARGUMENT),
    ({"operation": "PUT", "payload": b"[" * 100 + b"]" * 100},
     grpc.StatusCode.INVALID_ARGUMENT),
    ({"operation": "GET", "token": "invalid"}, grpc.StatusCode.UNAUTHENTICATED),
    ({"operation": "GET", "token": ""}, grpc.StatusCode.UNAUTHENTICATED),
])
def test_bad_requests_get_the_matching_status(
    server: GrpcServer, token: str, message: dict[str, Any], status: grpc.StatusCode
) -> None:
    request = {"schema_id": "chatdb", "entity_key": "k", "token": token, **message}
    assert rpc_error(server.main.process, **request) == status


def test_a_frame_that_is_not_json_is_an_invalid_argument(server: GrpcServer) -> None:
    call = server.main.channel.unary_unary("/deltadb.MainWorker/Process")
    with pytest.raises(grpc.RpcError) as caught:
        call(b"\x08\x01binary protobuf", timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_schema_operations(server: GrpcServer) -> None:
    admin_token = server.main.subscribe((("authorization", "Bearer " + ADMIN_KEY),),
                                        worker_id="ops", pubkey=server.pem)["token"]
    schema = {"type": "object", "required": ["chat"]}
    assert server.main.process(schema_id="chatv", operation="SCHEMA_PUT",
                               payload=json.dumps(schema).encode(),
                               token=admin_token)["status"] == "OK"
    got = server.main.process(schema_id="chatv", operation="SCHEMA_GET", token=admin_token)
    assert json.loads(got["result"]) == schema
    code = rpc_error(server.main.process, schema_id="chatv", entity_key="x", operation="PUT",
                     payload=b'{"other": 1}', token=admin_token)
    assert code == grpc.StatusCode.INVALID_ARGUMENT  # the schema refuses it
    code = rpc_error(server.main.process, schema_id="bad", operation="SCHEMA_PUT",
                     payload=b'{"$ref": "http://127.0.0.1:9/x"}', token=admin_token)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert server.main.process(schema_id="chatv", operation="SCHEMA_DELETE",
                               token=admin_token)["status"] == "OK"
    code = rpc_error(server.main.process, schema_id="chatv", operation="SCHEMA_GET",
                     token=admin_token)
    assert code == grpc.StatusCode.NOT_FOUND


def test_api_keys_and_the_admin_key_work_as_process_tokens(server: GrpcServer) -> None:
    put = server.main.process(database_name="direct", entity_key="k", operation="PUT",
                              payload=b'{"a":1}', token=ADMIN_KEY)
    assert put["status"] == "OK"
    reader = httpx.post(server.rest + "/api/keys", headers=ADMIN, json={
        "name": "direct-reader", "permissions": ["read"]}).json()["key"]
    got = server.main.process(database_name="direct", entity_key="k", operation="GET",
                              token=reader)
    assert json.loads(got["result"]) == {"a": 1}
    code = rpc_error(server.main.process, database_name="direct", entity_key="k",
                     operation="DELETE", token=reader)
    assert code == grpc.StatusCode.PERMISSION_DENIED


# ── the worker port ──────────────────────────────────────────────────────


def test_the_worker_port_acts_as_the_worker_key_without_a_token(server: GrpcServer) -> None:
    put = server.worker_port.process(schema_id="chatdb", entity_key="w", operation="PUT",
                                     payload=b'{"chat": []}')
    assert put["status"] == "OK"
    assert httpx.get(server.rest + "/entity/chatdb?key=w", headers=ADMIN).json() == {"chat": []}
    code = rpc_error(server.worker_port.process, schema_id="users", entity_key="1",
                     operation="GET")
    assert code == grpc.StatusCode.PERMISSION_DENIED  # the worker key's scope holds here too
    code = rpc_error(server.worker_port.subscribe, worker_id="worker-1", pubkey=server.pem)
    assert code == grpc.StatusCode.UNIMPLEMENTED


def test_the_worker_port_only_listens_on_loopback(tmp_path: Path) -> None:
    from ddb_server_helpers import run_cli

    result = run_cli("serve", "--store", f"sqlite:///{tmp_path}/s.db", "--worker-grpc-addr",
                     "0.0.0.0:50052", env={"DELTADB_ADMIN_KEY": ADMIN_KEY,
                                           "DELTADB_GRPC_WORKER_KEY": "dk_x_y"})
    assert result.returncode == 2 and "loopback" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_wrong_worker_key_is_one_line_at_start(tmp_path: Path) -> None:
    from ddb_server_helpers import run_cli

    result = run_cli("serve", "--store", f"sqlite:///{tmp_path}/s.db", "--grpc-addr",
                     f"127.0.0.1:{free_port()}", "--grpc-worker", "w",
                     env={"DELTADB_ADMIN_KEY": ADMIN_KEY, "DELTADB_GRPC_WORKER_KEY": "dk_x_y"})
    assert result.returncode == 2 and "DELTADB_GRPC_WORKER_KEY" in result.stderr
    assert "Traceback" not in result.stderr


# ── revocation and durability (these restart the module's server: keep them last) ─────


def test_deleting_the_worker_key_revokes_worker_tokens(server: GrpcServer) -> None:
    worker_token = server.main.subscribe(worker_id="worker-2", pubkey=server.pem)["token"]
    server.main.process(database_name="chatdb", entity_key="r", operation="PUT",
                        payload=b"{}", token=worker_token)
    # A second key for the workers first, so the server can start again afterwards.
    spare = httpx.post(server.rest + "/api/keys", headers=ADMIN, json={
        "name": "workers-2", "permissions": ["read", "write"], "databases": ["chat*"]}).json()
    assert httpx.delete(f"{server.rest}/api/keys/{server.worker_key_id}",
                        headers=ADMIN).status_code == 200
    code = rpc_error(server.main.process, database_name="chatdb", entity_key="r",
                     operation="GET", token=worker_token)
    assert code == grpc.StatusCode.UNAUTHENTICATED
    code = rpc_error(server.main.subscribe, worker_id="worker-2", pubkey=server.pem)
    assert code == grpc.StatusCode.UNAUTHENTICATED
    server.worker_key, server.worker_key_id = spare["key"], spare["id"]


def test_an_answered_put_survives_kill_9(server: GrpcServer) -> None:
    token = server.main.subscribe((("authorization", "Bearer " + ADMIN_KEY),),
                                  worker_id="durable", pubkey=server.pem)["token"]
    for i in range(20):
        assert server.main.process(database_name="durable", entity_key=f"k{i}",
                                   operation="PUT", payload=json.dumps({"i": i}).encode(),
                                   token=token)["status"] == "OK"
    os.kill(server.live.process.pid, signal.SIGKILL)
    server.live.process.wait()
    store = server.live.store
    restarted = _start(store, Path(server.live.log_path).parent, server.worker_key,
                       server.grpc_addr, server.worker_addr, "log-restart")
    server.live = restarted
    for i in range(20):
        body = httpx.get(f"{restarted.base_url}/entity/durable?key=k{i}", headers=ADMIN)
        assert body.json() == {"i": i}
