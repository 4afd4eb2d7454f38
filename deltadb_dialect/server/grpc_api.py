"""DeltaDatabase's gRPC API, ``deltadb.MainWorker``, over the same store and permissions.

DeltaDatabase's Go server registers a JSON codec (also under the name ``proto``), so its
messages are JSON objects inside ordinary gRPC frames; ``bytes`` fields are base64 strings
and empty fields are left out. Two unary methods:

* ``Subscribe {worker_id, pubkey, tags}`` -> ``{token, wrapped_key, key_id}``. The caller
  proves who it is with ``authorization: Bearer <admin key | API key | token>`` metadata, or
  is a worker id the operator registered (``--grpc-worker``), which subscribes with the API
  key in ``DELTADB_GRPC_WORKER_KEY``. The token it gets carries exactly those rights (key
  scope and expiry included) and is revoked with that key.
* ``Process {database_name|schema_id, entity_key, operation, payload, token}`` ->
  ``{status, result, version, error}`` for GET, PUT, DELETE, SCHEMA_GET, SCHEMA_PUT and
  SCHEMA_DELETE, through the same store calls as the REST routes (a PUT is answered after its
  commit, which is durable).

``wrapped_key`` is a fresh random 256-bit key per subscription, wrapped with RSA-OAEP
(SHA-256) for the subscriber's public key. The server keeps nothing of it and it opens
nothing: the store key never leaves the server. ``key_id`` names that scheme.

The *worker port* (``--worker-grpc-addr``, DeltaDatabase's processing-worker port) answers
``Process`` calls without a token as the worker key; it is meant for processes on the same
machine, so it only binds loopback addresses.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from deltadb_dialect.server.auth import NEVER, Principal
from deltadb_dialect.server.errors import ApiError
from deltadb_dialect.server.http import Services
from deltadb_dialect.server.names import MAX_BODY_BYTES, check_database, check_key, parse_json_body
from deltadb_dialect.server.rows import generated_schema

log = logging.getLogger("deltadb.server")
SERVICE = "deltadb.MainWorker"
KEY_ID = "ddb-subscriber-key-v1"  # per-subscriber random key, RSA-OAEP-SHA256 wrapped
ENTITY_OPERATIONS = ("GET", "PUT", "DELETE")
SCHEMA_OPERATIONS = ("SCHEMA_GET", "SCHEMA_PUT", "SCHEMA_DELETE")
MIN_RSA_BITS = 2048
# A 1 MiB document is about 1.4 MiB as base64 inside JSON.
MAX_MESSAGE_BYTES = MAX_BODY_BYTES * 3 // 2 + 64 * 1024

_STATUS = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.FAILED_PRECONDITION,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}


class RpcFailure(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class WorkerAccess:
    """Who may use gRPC without presenting credentials of its own."""

    worker_ids: frozenset[str] = frozenset()
    worker_key: str | None = None  # an API key; its rights are the workers' rights
    tokenless_process: bool = False  # the worker port: Process without a token


@dataclass
class GrpcApi:
    services: Services
    access: WorkerAccess = field(default_factory=WorkerAccess)

    # ── framing ───────────────────────────────────────────────────────

    def handler(self, method: Callable[[dict[str, Any], grpc.ServicerContext], dict[str, Any]]
                ) -> Callable[[bytes, grpc.ServicerContext], bytes]:
        """Decode the JSON request, run ``method``, map every failure to a status code."""

        def call(request: bytes, context: grpc.ServicerContext) -> bytes:
            try:
                message = _decode(request)
                return _encode(method(message, context))
            except RpcFailure as failure:
                context.abort(failure.code, failure.message)
            except ApiError as error:
                context.abort(_STATUS.get(error.status, grpc.StatusCode.INVALID_ARGUMENT),
                              error.message)
            except Exception as error:  # never details: they may carry documents or keys
                log.exception("gRPC call failed: %s", type(error).__name__)
                context.abort(grpc.StatusCode.INTERNAL, "internal server error")
            raise AssertionError("unreachable")  # context.abort raises

        return call

    def generic_handler(self) -> grpc.GenericRpcHandler:
        def unary(method: Callable[..., dict[str, Any]]) -> grpc.RpcMethodHandler:
            return grpc.unary_unary_rpc_method_handler(self.handler(method))

        subscribe = self.subscribe if not self.access.tokenless_process else self._no_subscribe
        return grpc.method_handlers_generic_handler(
            SERVICE, {"Subscribe": unary(subscribe), "Process": unary(self.process)})

    # ── Subscribe ─────────────────────────────────────────────────────

    def _no_subscribe(self, _: dict[str, Any], __: grpc.ServicerContext) -> dict[str, Any]:
        raise RpcFailure(grpc.StatusCode.UNIMPLEMENTED,
                         "Subscribe is served on the main gRPC address, not the worker port")

    def subscribe(self, message: dict[str, Any], context: grpc.ServicerContext
                  ) -> dict[str, Any]:
        worker_id = _text(message, "worker_id")
        if not worker_id or len(worker_id) > 255 or not worker_id.isprintable():
            raise RpcFailure(grpc.StatusCode.INVALID_ARGUMENT,
                             "worker_id is required (printable, at most 255 characters)")
        public_key = _public_key(_bytes(message, "pubkey"))
        principal = self._subscriber(worker_id, context)
        issued = self.services.auth.issue_token(
            f"worker:{worker_id}", principal.permissions, principal.api_key_id,
            None if principal.expires_at == NEVER else principal.expires_at,
            principal.databases)
        session_key = os.urandom(32)
        wrapped = public_key.encrypt(session_key, padding.OAEP(
            mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
        return {"token": issued["token"], "wrapped_key": base64.b64encode(wrapped).decode(),
                "key_id": KEY_ID}

    def _subscriber(self, worker_id: str, context: grpc.ServicerContext) -> Principal:
        metadata = {k.lower(): v for k, v in (context.invocation_metadata() or ())
                    if isinstance(v, str)}
        if "authorization" in metadata:
            return self.services.auth.authenticate(metadata["authorization"], _peer(context))
        if worker_id in self.access.worker_ids and self.access.worker_key:
            return self._worker_principal(context)
        raise RpcFailure(grpc.StatusCode.UNAUTHENTICATED,
                         f"worker {worker_id!r} is not registered; send authorization "
                         "metadata with a key, or have the operator register it")

    def _worker_principal(self, context: grpc.ServicerContext) -> Principal:
        assert self.access.worker_key is not None
        try:
            return self.services.auth.authenticate_credential(self.access.worker_key,
                                                              _peer(context))
        except ApiError:
            raise RpcFailure(grpc.StatusCode.UNAUTHENTICATED,
                             "the workers' API key is no longer valid") from None

    # ── Process ───────────────────────────────────────────────────────

    def process(self, message: dict[str, Any], context: grpc.ServicerContext) -> dict[str, Any]:
        token = _text(message, "token")
        if token:
            principal = self.services.auth.authenticate_credential(token, _peer(context))
        elif self.access.tokenless_process and self.access.worker_key:
            principal = self._worker_principal(context)
        else:
            raise RpcFailure(grpc.StatusCode.UNAUTHENTICATED, "token is required")
        operation = _text(message, "operation")
        name = _text(message, "database_name") or _text(message, "schema_id")
        if operation in SCHEMA_OPERATIONS:
            schema_id = _text(message, "schema_id") or name
            return self._schema_operation(principal, operation, schema_id, message)
        if operation not in ENTITY_OPERATIONS:
            raise RpcFailure(grpc.StatusCode.INVALID_ARGUMENT, "operation must be one of "
                             + ", ".join(ENTITY_OPERATIONS + SCHEMA_OPERATIONS))
        db = check_database(name)
        if not _text(message, "entity_key"):
            raise RpcFailure(grpc.StatusCode.INVALID_ARGUMENT, "entity_key is required")
        key = check_key(_text(message, "entity_key"))
        needed = "read" if operation == "GET" else "write"
        _require(principal, needed, db)
        store = self.services.store
        if operation == "GET":
            text = store.get(db, key)
            if text is None:
                raise RpcFailure(grpc.StatusCode.NOT_FOUND, "entity not found")
            return {"status": "OK", "result": _b64(text.encode("utf-8"))}
        if operation == "PUT":
            document = parse_json_body(_bytes(message, "payload"))
            store.put(db, {key: document})  # returns after the durable commit
            return {"status": "OK"}
        if not store.delete(db, key):
            raise RpcFailure(grpc.StatusCode.NOT_FOUND, "entity not found")
        return {"status": "OK"}

    def _schema_operation(self, principal: Principal, operation: str, schema_id: str,
                          message: dict[str, Any]) -> dict[str, Any]:
        check_database(schema_id)
        schemas = self.services.schemas
        if operation == "SCHEMA_GET":
            _require(principal, "read", schema_id)
            schema = schemas.get(schema_id)
            if schema is None:
                table = self.services.store.catalog.table(schema_id)
                if table is None:
                    raise RpcFailure(grpc.StatusCode.NOT_FOUND, "schema not found")
                schema = generated_schema(table)
            return {"status": "OK", "result": _b64(json.dumps(schema).encode("utf-8"))}
        _require(principal, "admin", schema_id)
        if operation == "SCHEMA_PUT":
            schemas.put(schema_id, parse_json_body(_bytes(message, "payload")))
        elif not schemas.delete(schema_id):
            raise RpcFailure(grpc.StatusCode.NOT_FOUND, "schema not found")
        return {"status": "OK"}


def _require(principal: Principal, permission: str, db: str) -> None:
    if not principal.allows(permission):
        raise ApiError(403, f"this needs the '{permission}' permission")
    principal.check_database_scope(db)


def _decode(request: bytes) -> dict[str, Any]:
    try:
        message = json.loads(request or b"{}")
    except (ValueError, RecursionError):
        raise RpcFailure(grpc.StatusCode.INVALID_ARGUMENT,
                         "the message is not JSON (this service uses DeltaDatabase's JSON "
                         "codec)") from None
    if not isinstance(message, dict):
        raise RpcFailure(grpc.StatusCode.INVALID_ARGUMENT, "the message must be a JSON object")
    return message


def _encode(message: dict[str, Any]) -> bytes:
    return json.dumps({k: v for k, v in message.items() if v}).encode("utf-8")


def _text(message: dict[str, Any], name: str) -> str:
    value = message.get(name, "")
    if not isinstance(value, str):
        raise RpcFailure(grpc.StatusCode.INVALID_ARGUMENT, f"{name} must be a string")
    return value


def _bytes(message: dict[str, Any], name: str) -> bytes:
    try:
        return base64.b64decode(_text(message, name), validate=True)
    except binascii.Error:
        raise RpcFailure(grpc.StatusCode.INVALID_ARGUMENT,
                         f"{name} must be base64 (bytes fields of the JSON codec)") from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _public_key(pem: bytes) -> rsa.RSAPublicKey:
    if not pem:
        raise RpcFailure(grpc.StatusCode.INVALID_ARGUMENT, "pubkey is required")
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError):
        raise RpcFailure(grpc.StatusCode.INVALID_ARGUMENT,
                         "pubkey must be a PEM RSA public key") from None
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_RSA_BITS:
        raise RpcFailure(grpc.StatusCode.INVALID_ARGUMENT,
                         f"pubkey must be an RSA key of at least {MIN_RSA_BITS} bits")
    return key


def _peer(context: grpc.ServicerContext) -> str:
    """The client's address in gRPC's ``ipv4:1.2.3.4:5`` / ``ipv6:[::1]:5`` form, host only."""
    peer = context.peer() or "unknown"
    kind, _, rest = peer.partition(":")
    if kind == "ipv6":
        return rest.rsplit(":", 1)[0].strip("[]")
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    return peer


def start_server(api: GrpcApi, address: str, threads: int = 8) -> grpc.Server:
    """Serve ``api`` on ``address`` (``host:port``); raises RuntimeError if it cannot bind."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="deltadb-grpc"),
        handlers=[api.generic_handler()],
        options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                 ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                 ("grpc.so_reuseport", 1)],  # each uvicorn worker process serves the port
        maximum_concurrent_rpcs=256,
    )
    if server.add_insecure_port(address) == 0:
        raise RuntimeError(f"cannot listen for gRPC on {address}")
    server.start()
    return server
