"""What DeltaDatabase's file-reading tests assert about content, checked on our layout:
AES-256-GCM, a fresh nonce per seal, tamper detection, and no plaintext (names included) on
disk after REST and gRPC writes. The store's own tests go deeper
(``tests/deltadb_dialect/test_store_security.py``)."""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path

import grpc
import pytest
from ddb_server_helpers import ADMIN_KEY, BACKENDS, free_port, run_cli
from fastapi.testclient import TestClient

from deltadb_dialect.crypto import NONCE_BYTES, Sealer
from deltadb_dialect.errors import TamperError

pytestmark = pytest.mark.skipif("deltadb" not in BACKENDS, reason="needs the deltadb store")
ADMIN = {"Authorization": "Bearer " + ADMIN_KEY}


def store_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


def test_nothing_written_through_rest_or_grpc_is_readable_on_disk(tmp_path: Path) -> None:
    from deltadb_dialect.server import create_app

    marker = "plaintext-marker-" + secrets.token_hex(6)
    grpc_addr = f"127.0.0.1:{free_port()}"
    app = create_app(f"deltadb:///{tmp_path}/store", admin_key=ADMIN_KEY, grpc_addr=grpc_addr)
    with TestClient(app) as client:
        assert client.put(f"/entity/db-{marker}", headers=ADMIN,
                          json={f"key-{marker}": {"text": marker}}).status_code == 200
        channel = grpc.insecure_channel(grpc_addr)
        process = channel.unary_unary("/deltadb.MainWorker/Process")
        request = {"database_name": f"grpcdb-{marker}", "entity_key": f"gkey-{marker}",
                   "operation": "PUT", "token": ADMIN_KEY,
                   "payload": base64.b64encode(json.dumps({"t": marker}).encode()).decode()}
        assert json.loads(process(json.dumps(request).encode(), timeout=30))["status"] == "OK"
        channel.close()
        assert client.get(f"/entity/grpcdb-{marker}?key=gkey-{marker}",
                          headers=ADMIN).json() == {"t": marker}
    on_disk = store_bytes(tmp_path / "store")
    names = " ".join(str(p) for p in (tmp_path / "store").rglob("*"))
    assert on_disk and marker.encode() not in on_disk and marker not in names
    assert ADMIN_KEY.encode() not in on_disk  # nor the admin key, nor tokens


def test_store_keys_are_256_bit() -> None:
    result = run_cli("keygen")
    assert result.returncode == 0
    assert len(bytes.fromhex(result.stdout.strip())) == 32  # AES-256


def test_every_seal_takes_a_fresh_nonce_and_tampering_fails() -> None:
    sealer = Sealer(os.urandom(32), key_id=1)
    sealed = [sealer.seal(b'{"chat": []}', b"db/key") for _ in range(1000)]
    assert len({s[:NONCE_BYTES] for s in sealed}) == 1000  # no nonce reuse
    assert len(set(sealed)) == 1000  # identical documents never give identical bytes
    assert sealer.open(sealed[0], b"db/key", what="entity") == b'{"chat": []}'
    flipped = bytearray(sealed[0])
    flipped[NONCE_BYTES + 3] ^= 1
    with pytest.raises(TamperError):
        sealer.open(bytes(flipped), b"db/key", what="entity")
    with pytest.raises(TamperError):  # moved to another entity: the associated data differs
        sealer.open(sealed[0], b"db/other", what="entity")


def test_a_flipped_byte_in_the_store_is_never_served_as_data(tmp_path: Path) -> None:
    from deltadb_dialect.server import create_app

    url = f"deltadb:///{tmp_path}/store"
    with TestClient(create_app(url, admin_key=ADMIN_KEY)) as client:
        client.put("/entity/chatdb", headers=ADMIN, json={"k": {"text": "original " * 20}})
    largest = max((p for p in (tmp_path / "store").rglob("*") if p.is_file()),
                  key=lambda p: p.stat().st_size)
    data = bytearray(largest.read_bytes())
    data[len(data) // 2] ^= 0x01
    largest.write_bytes(bytes(data))
    try:
        with TestClient(create_app(url, admin_key=ADMIN_KEY)) as client:
            response = client.get("/entity/chatdb?key=k", headers=ADMIN)
    except Exception as error:  # refusing to open the store is the expected outcome
        assert "authenticate" in str(error) or "tamper" in str(error).lower() or \
            "corrupt" in str(error).lower(), error
        return
    assert response.status_code != 200 or response.json() == {"text": "original " * 20}
