"""The management UI in Debian's Chromium through Playwright (`make screenshots` keeps its
screenshots in docs/screenshots)."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from ddb_server_helpers import ROOT, LiveServer, start_server, stop_server, store_url

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(os.environ.get("SCREENSHOTS_DIR") or ROOT / ".pytest-screenshots")
ADMIN = "ui-test-admin-key-0123456789abcdef"
SCHEMA = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
          "properties": {"messages": {"type": "array", "items": {
              "type": "object", "required": ["role", "content"],
              "properties": {"role": {"enum": ["user", "assistant", "system"]},
                             "content": {"type": "string"}}}}},
          "required": ["messages"]}


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (make chromium)")
    directory = tmp_path_factory.mktemp("ui")
    from ddb_server_helpers import BACKENDS

    server = start_server(store_url(BACKENDS[0], directory), directory / "log", admin_key=ADMIN)
    token = httpx.post(server.base_url + "/api/login", json={"key": ADMIN}).json()["token"]
    headers = {"Authorization": "Bearer " + token}
    httpx.put(server.base_url + "/schema/chatdb", json=SCHEMA, headers=headers)
    sessions = {f"session_{i:03d}": {"messages": [
        {"role": "user", "content": f"Question {i}?"},
        {"role": "assistant", "content": f"Answer {i}."}]} for i in range(1, 13)}
    httpx.put(server.base_url + "/entity/chatdb", json=sessions, headers=headers)
    httpx.put(server.base_url + "/entity/settings", json={"theme": {"dark": True}},
              headers=headers)
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def shot(page: object, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"server-{name}.png"))  # type: ignore[attr-defined]


def sign_in(page: object, base_url: str, key: str) -> None:
    from playwright.sync_api import expect

    page.goto(base_url + "/")  # type: ignore[attr-defined]
    page.fill("#signin-key", key)  # type: ignore[attr-defined]
    page.click("#signin-form button[type=submit]")  # type: ignore[attr-defined]
    expect(page.locator("#shell")).to_be_visible()  # type: ignore[attr-defined]


def test_management_ui_end_to_end(ui_server: LiveServer, browser: object) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 800})  # type: ignore
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # The UI runs under the server's Content-Security-Policy header: no violations.
    page.on("console", lambda message: errors.append(message.text)
            if "Content Security Policy" in message.text else None)
    external: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(ui_server.base_url)
            else external.append(r.url))

    # Sign-in: a wrong key is refused, the admin key works.
    page.goto(ui_server.base_url + "/")
    expect(page.locator("#signin")).to_be_visible()
    expect(page.locator("#mode-note")).to_be_hidden()  # production mode
    page.fill("#signin-key", "wrong")
    page.click("#signin-form button[type=submit]")
    expect(page.locator("#signin-error")).to_contain_text("invalid")
    shot(page, "signin")
    sign_in(page, ui_server.base_url, ADMIN)

    # Dashboard
    expect(page.locator("#t-health")).to_contain_text("ok")
    expect(page.locator("#t-databases")).to_have_text("2")
    expect(page.locator("#t-entities")).to_have_text("13")
    expect(page.locator("#t-workers")).to_have_text("1 / 1")
    expect(page.locator("#t-size")).to_contain_text("B")
    expect(page.locator("#dash-databases tbody tr")).to_have_count(2)
    expect(page.locator("#dash-workers tbody tr")).to_have_count(1)
    shot(page, "dashboard")

    # Databases → keys → entity editor, with JSON and schema validation
    page.click("nav a[data-view=databases]")
    page.click("#db-list li[data-db=chatdb]")
    expect(page.locator("#key-list li")).to_have_count(12)
    page.fill("#key-prefix", "session_01")
    expect(page.locator("#key-list li")).to_have_count(3)
    page.click("#key-list li[data-key=session_011]")
    expect(page.locator("#entity-json")).to_have_value(json.dumps({"messages": [
        {"role": "user", "content": "Question 11?"},
        {"role": "assistant", "content": "Answer 11."}]}, indent=2))
    page.fill("#entity-json", '{"messages": [')
    expect(page.locator("#entity-check")).to_contain_text("invalid JSON")
    page.fill("#entity-json", '{"messages": [{"role": "robot", "content": "beep"}]}')
    page.click("#entity-validate")
    expect(page.locator("#entity-status")).to_contain_text("does not match schema")
    page.fill("#entity-json", '{"messages": [{"role": "system", "content": "edited"}]}')
    page.click("#entity-validate")
    expect(page.locator("#entity-status")).to_have_text("valid against the schema")
    page.click("#entity-save")
    expect(page.locator("#entity-status")).to_contain_text("saved")
    page.locator("#entity-schema-box summary").click()
    expect(page.locator("#entity-schema")).to_contain_text('"required"')
    shot(page, "entity-editor")

    # A new database comes into being with its first entity.
    page.fill("#db-new-name", "notes")
    page.click("#db-new")
    expect(page.locator("#keys-title")).to_have_text("Keys of notes")
    page.fill("#entity-key", "first")
    page.fill("#entity-json", '{"text": "hello"}')
    page.click("#entity-save")
    expect(page.locator("#entity-status")).to_contain_text("saved")
    expect(page.locator("#key-list li")).to_have_count(1)
    page.click("nav a[data-view=dashboard]")
    expect(page.locator("#t-databases")).to_have_text("3")

    # Schemas
    page.click("nav a[data-view=schemas]")
    page.click("#schema-list li[data-id=chatdb]")
    expect(page.locator("#schema-json")).to_have_value(re.compile("messages"))
    page.click("#schema-new")
    page.fill("#schema-id", "broken")
    page.fill("#schema-json", '{"type": 12}')
    page.click("#schema-save")
    expect(page.locator("#schema-status")).to_contain_text("invalid JSON Schema")
    page.fill("#schema-id", "settings")
    page.fill("#schema-json", '{"type": "object"}')
    page.click("#schema-save")
    expect(page.locator("#schema-status")).to_have_text("saved")
    expect(page.locator("#schema-list li")).to_have_count(2)
    page.click("#schema-list li[data-id=chatdb]")
    shot(page, "schemas")

    # API keys: create (secret shown once), list, revoke
    page.click("nav a[data-view=keys]")
    page.fill("#key-name", "reporting")
    page.fill("#key-expires", "30d")
    page.click("#key-form button[type=submit]")
    expect(page.locator("#key-secret")).to_be_visible()
    secret = page.locator("#key-secret-value").inner_text()
    assert secret.startswith("dk_")
    expect(page.locator("#keys-table tbody tr")).to_have_count(1)
    assert secret not in page.locator("#keys-table").inner_text()
    shot(page, "api-keys")

    # API explorer: status and round-trip time
    page.click("nav a[data-view=explorer]")
    page.fill("#ex-path", "/entity/chatdb?key=session_011")
    page.click("#explorer-form button[type=submit]")
    expect(page.locator("#ex-status")).to_have_text("200")
    expect(page.locator("#ex-time")).to_contain_text("ms")
    expect(page.locator("#ex-response")).to_contain_text("edited")
    page.fill("#ex-path", "/entity/chatdb?key=nope")
    page.click("#explorer-form button[type=submit]")
    expect(page.locator("#ex-status")).to_have_text("404")
    page.fill("#ex-path", "/entity/chatdb?key=session_011")
    page.click("#explorer-form button[type=submit]")
    expect(page.locator("#ex-status")).to_have_text("200")
    shot(page, "explorer")

    # Revoke the key, then sign out: the token is revoked and the sign-in page is back.
    page.click("nav a[data-view=keys]")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#keys-table button.danger")
    expect(page.locator("#keys-table tbody tr")).to_have_count(0)
    page.click("#signout")
    expect(page.locator("#signin")).to_be_visible()

    assert not errors, errors
    assert not external, external
    context.close()


def test_read_only_key_cannot_save(ui_server: LiveServer, browser: object) -> None:
    from playwright.sync_api import expect

    admin = httpx.post(ui_server.base_url + "/api/login", json={"key": ADMIN}).json()["token"]
    secret = httpx.post(ui_server.base_url + "/api/keys",
                        headers={"Authorization": "Bearer " + admin},
                        json={"name": "viewer", "permissions": ["read"]}).json()["key"]
    context = browser.new_context(viewport={"width": 1280, "height": 800})  # type: ignore
    page = context.new_page()
    sign_in(page, ui_server.base_url, secret)
    expect(page.locator("#who")).to_have_text("viewer · read")
    page.click("nav a[data-view=databases]")
    page.click("#db-list li[data-db=settings]")
    page.click("#key-list li[data-key=theme]")
    expect(page.locator("#entity-json")).to_have_value(re.compile("dark"))
    page.click("#entity-save")
    expect(page.locator("#entity-status")).to_contain_text("'write' permission")
    page.click("nav a[data-view=keys]")
    expect(page.locator("#keys-status")).to_contain_text("'admin' permission")
    context.close()
