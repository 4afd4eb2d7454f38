"""What a real ``serve`` process trusts from the network: proxy headers, Host names, and the
development token it prints at start."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from ddb_server_helpers import ADMIN_KEY, BACKENDS, run_cli, start_server, stop_server, store_url


def _wrong_logins_from_rotating_addresses(base_url: str) -> None:
    for i in range(10):
        response = httpx.post(base_url + "/api/login", json={"key": f"guess-{i}"},
                              headers={"X-Forwarded-For": f"203.0.113.{i + 1}"})
        assert response.status_code == 401


def test_forwarded_for_is_ignored_unless_the_proxy_is_trusted(tmp_path: Path) -> None:
    server = start_server(store_url(BACKENDS[0], tmp_path), tmp_path / "log",
                          admin_key=ADMIN_KEY)
    try:
        _wrong_logins_from_rotating_addresses(server.base_url)
        # Every failure counted against the real peer, 127.0.0.1: it is locked now.
        blocked = httpx.post(server.base_url + "/api/login", json={"key": ADMIN_KEY},
                             headers={"X-Forwarded-For": "198.51.100.7"})
        assert blocked.status_code == 401 and "not checked" in blocked.json()["error"]
    finally:
        stop_server(server)


def test_forwarded_for_is_used_from_a_trusted_proxy(tmp_path: Path) -> None:
    server = start_server(store_url(BACKENDS[0], tmp_path), tmp_path / "log",
                          admin_key=ADMIN_KEY, extra=("--forwarded-allow-ips", "127.0.0.1"))
    try:
        _wrong_logins_from_rotating_addresses(server.base_url)
        # Each failure was some other client's, as the trusted proxy said: nobody is locked.
        ok = httpx.post(server.base_url + "/api/login", json={"key": ADMIN_KEY},
                        headers={"X-Forwarded-For": "198.51.100.7"})
        assert ok.status_code == 200
    finally:
        stop_server(server)


def test_development_server_prints_a_token_and_refuses_foreign_hosts(tmp_path: Path) -> None:
    server = start_server(store_url(BACKENDS[0], tmp_path), tmp_path / "log",
                          client_id_logins=False)
    try:
        match = re.search(r"full rights until the server stops:\n\s+(\S+)", server.log())
        assert match, server.log()
        token = match.group(1)
        headers = {"Authorization": "Bearer " + token}
        assert httpx.get(server.base_url + "/api/me", headers=headers).json()["client_id"] \
            == "development"
        assert httpx.post(server.base_url + "/api/login", json={"client_id": "x"}).status_code \
            == 401
        rebound = httpx.get(server.base_url + "/api/me",
                            headers={**headers, "Host": "attacker.example"})
        assert rebound.status_code == 421
        plain = httpx.post(server.base_url + "/api/login", content=f'{{"key":"{token}"}}',
                           headers={"Content-Type": "text/plain"})
        assert plain.status_code == 415
    finally:
        stop_server(server)
    # A new start, a new token: the old one opens nothing.
    again = start_server(store_url(BACKENDS[0], tmp_path), tmp_path / "log2",
                         client_id_logins=False)
    try:
        assert httpx.get(again.base_url + "/api/me", headers=headers).status_code == 401
    finally:
        stop_server(again)


def test_bad_client_ttl_is_one_line(tmp_path: Path) -> None:
    result = run_cli("serve", "--store", f"sqlite:///{tmp_path}/s.db", "--client-ttl", "1e308")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("error: --client-ttl")
