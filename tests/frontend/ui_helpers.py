"""Shared helpers for the browser tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from playwright.sync_api import Page

from .fake_provider import FakeProvider

REPO = Path(__file__).resolve().parents[2]
# `make screenshots` points this at docs/screenshots; a plain test run leaves the docs alone.
SCREENSHOTS = Path(os.environ.get("SCREENSHOTS_DIR") or REPO / ".pytest-screenshots")
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin-password-123"
PASSWORD = "correct-horse-battery"

# Which store the server under test uses: "deltadb" (the product's default: encrypted, with
# a random master key per run) or "sqlite". This is the only place the database URL is decided.
STORE = os.environ.get("FRONTEND_TEST_STORE", "deltadb")


def database_env(tmp: Path) -> dict[str, str]:
    if STORE == "deltadb":
        return {
            "DATABASE_URL": f"deltadb:///{tmp}/store",
            "DELTADB_MASTER_KEY": secrets.token_hex(32),
        }
    return {"DATABASE_URL": f"sqlite:///{tmp}/openchat.db"}


@dataclass
class Server:
    url: str
    log: Path
    provider: FakeProvider
    # The server's database settings (URL, and the store's key on deltadb), for store scans.
    database: dict[str, str] = field(default_factory=dict)
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def unique(self, prefix: str) -> str:
        # Each session starts on a fresh store, so a counter is unique enough.
        return f"{prefix}{next(self._names)}"


@dataclass
class User:
    username: str
    password: str
    email: str
    id: int
    api: httpx.Client  # bearer-authenticated, no CSRF needed

    def close(self) -> None:
        self.api.close()


def login_token(server: Server, username: str, password: str) -> httpx.Response:
    with server.client() as c:
        return c.post("/api/auth/login", json={"username": username, "password": password})


def use_fake_provider(server: Server, user: User) -> None:
    """Points the user's own provider settings at the slow fake provider."""
    r = user.api.put(
        "/api/settings",
        json={"openai_base_url": server.provider.base_url, "openai_api_key": "sk-fake-0123456789"},
    )
    assert r.status_code == 200, r.text


def open_chat(page: Page, path: str = "/") -> None:
    page.goto(path)
    page.wait_for_selector("body[data-ready=true]")


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
