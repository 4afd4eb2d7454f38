"""Settings, privacy section: zero-access on with the recovery key shown once; the admin's
warning before a password reset; the recovery key opening the content again after it."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from .accessibility import serious_violations
from .conftest import INHERITED_ENV, _free_port, _wait_healthy
from .ui_helpers import PHONE, REPO, Server, User, database_env, login_token

RECOVERY_KEY = re.compile(r"^[A-Z2-9]{5}(-[A-Z2-9]{5}){4}-[A-Z2-9]$")
NEW_PASSWORD = "an admin-chosen passphrase"


def open_privacy(page: Page) -> Page:
    page.goto("/settings.html#privacy")
    page.wait_for_selector("body[data-ready=true]")
    return page


def test_zero_access_on_reset_warning_and_recovery(
    page_as: Callable[..., Page], make_user: Callable[..., User], admin: User, server: Server
) -> None:
    user = make_user("sealed")
    page = open_privacy(page_as(user))
    section = page.locator("#privacy")
    expect(section).to_contain_text("The model provider still sees every prompt it answers")
    expect(page.locator("#privacy-state")).to_contain_text("Off")
    page.get_by_label("Your password").first.fill("not my password")
    page.get_by_role("button", name="Turn on zero-access").click()
    expect(page.locator("#privacy-error")).to_have_text("The password is not correct.")
    page.locator("#privacy-on-password").fill(user.password)
    page.get_by_role("button", name="Turn on zero-access").click()
    key = page.locator("#recovery-key")
    expect(key).to_be_visible()
    recovery = key.inner_text().strip()
    assert RECOVERY_KEY.match(recovery), recovery
    expect(page.locator("#privacy-state")).to_contain_text("On: your conversations are sealed")
    page.get_by_role("button", name="I saved it").click()
    expect(key).to_have_count(0)

    # The admin is warned, and must say so, before resetting this user's password.
    admin_page = page_as(admin)
    admin_page.goto("/admin.html")
    row = admin_page.locator(f"tr[data-user='{user.username}']")
    row.get_by_role("button", name="Reset password").click()
    expect(row.get_by_role("note")).to_contain_text("A password reset cannot recover them")
    row.get_by_label(f"New password for {user.username}").fill(NEW_PASSWORD)
    row.get_by_role("button", name="Reset anyway").click()
    assert login_token(server, user.username, NEW_PASSWORD).status_code == 401  # not yet
    row.get_by_label("I understand their conversations stay sealed").check()
    row.get_by_role("button", name="Reset anyway").click()
    expect(admin_page.get_by_text(f"Password of {user.username} reset")).to_be_visible()

    # Signed in with the new password, the user is asked for the recovery key.
    locked = page_as(User(user.username, NEW_PASSWORD, user.email, user.id, user.api))
    open_privacy(locked)
    form = locked.locator("#privacy-restore-form")
    expect(form).to_be_visible()
    form.get_by_label("Recovery key").fill("AAAAA-BBBBB-CCCCC-DDDDD-EEEEE-F")
    form.get_by_label("The password you signed in with").fill(NEW_PASSWORD)
    form.get_by_role("button", name="Open my conversations").click()
    expect(locked.locator("#privacy-error")).to_have_text(
        "That recovery key does not open this account's content."
    )
    form.get_by_label("Recovery key").fill(recovery.lower())
    form.get_by_label("The password you signed in with").fill(NEW_PASSWORD)
    form.get_by_role("button", name="Open my conversations").click()
    expect(form).to_be_hidden()
    expect(locked.locator("#privacy-off-form")).to_be_visible()
    assert locked.js_errors == []  # type: ignore[attr-defined]


def _own_server(tmp: Path, **extra: str) -> Iterator[str]:
    """A server of its own (a fresh store), for settings the shared one must not see."""
    env = {
        **{k: v for k, v in os.environ.items() if k in INHERITED_ENV},
        "PYTHONPATH": str(REPO),
        **database_env(tmp),
        "ENVIRONMENT": "test",
        "MOCK_OPENAI": "true",
        "SECRET_KEY": secrets.token_urlsafe(32),
        "ALLOW_REGISTRATION": "true",
        "LOG_LEVEL": "WARNING",
        **extra,
    }
    migrate = [sys.executable, "-m", "alembic", "-c", str(REPO / "alembic.ini"), "upgrade", "head"]
    subprocess.run(migrate, cwd=tmp, env=env, check=True, capture_output=True, timeout=300)
    port = _free_port()
    log = tmp / "server.log"
    command = [sys.executable, "-m", "uvicorn", "backend.main:app", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=tmp, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_healthy(url, process, log)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=15)


@pytest.fixture(scope="module")
def requiring_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second server, whose operator requires zero-access conversations for everyone."""
    tmp = tmp_path_factory.mktemp("zero-access-required")
    yield from _own_server(tmp, ZERO_ACCESS_REQUIRED="true")


@pytest.fixture(scope="module")
def switch_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server whose configuration leaves the requirement to its admins."""
    yield from _own_server(tmp_path_factory.mktemp("zero-access-switch"))


def test_a_required_mode_shows_the_recovery_key_at_the_first_sign_in(
    browser: Browser, requiring_server: str
) -> None:
    body = {"username": "rita", "email": "rita@example.com", "password": "rita's passphrase"}
    assert httpx.post(f"{requiring_server}/api/auth/register", json=body).status_code == 201
    context = browser.new_context(base_url=requiring_server)
    try:
        page = context.new_page()
        page.goto("/login.html")
        page.get_by_label("Username").fill("rita")
        page.get_by_label("Password").fill("rita's passphrase")
        page.get_by_role("button", name="Sign in").click()
        key = page.locator("#recovery-key")
        expect(key).to_be_visible()
        assert RECOVERY_KEY.match(key.inner_text().strip())
        expect(page.get_by_role("region", name="Your recovery key")).to_contain_text(
            "shown this once"
        )
        page.get_by_role("button", name="I saved it, continue").click()
        expect(page).to_have_url(re.compile(r"/$"))
        state = page.request.get("/api/privacy").json()
        assert state["required"] is True and state["state"] in ("sealing", "on")
        assert state["session_holds_key"] is True
    finally:
        context.close()


def _register(url: str, name: str) -> None:
    body = {"username": name, "email": f"{name}@example.com", "password": f"{name}'s passphrase"}
    assert httpx.post(f"{url}/api/auth/register", json=body).status_code == 201


def _signed_in(browser: Browser, url: str, name: str, **options: object) -> Page:
    context = browser.new_context(base_url=url, **options)  # type: ignore[arg-type]
    context.set_default_timeout(10_000)
    body = {"username": name, "password": f"{name}'s passphrase"}
    assert context.request.post("/api/auth/login", data=body).ok
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.js_errors = errors  # type: ignore[attr-defined]
    return page


def test_an_admin_requires_zero_access_and_users_are_asked_before_they_write(
    browser: Browser, switch_server: str
) -> None:
    for name in ("ada", "bob"):  # the first account administers the server
        _register(switch_server, name)
    bob = _signed_in(browser, switch_server, "bob")  # signed in before it is required
    bob.goto("/")
    bob.wait_for_selector("body[data-ready=true]")
    expect(bob.locator("#zero-access-needed")).to_be_hidden()

    admin = _signed_in(browser, switch_server, "ada")
    admin.goto("/admin.html")
    admin.wait_for_selector("body[data-ready=true]")
    switch = admin.get_by_role("switch", name="Require zero-access conversations for everyone")
    state = admin.locator("#zero-access-state")
    expect(state).to_contain_text("Not required")
    expect(switch).not_to_be_checked()
    switch.click()
    dialog = admin.get_by_role("dialog", name="Require zero-access for everyone?")
    expect(dialog).to_contain_text("only their recovery key can")
    dialog.get_by_role("button", name="Cancel").click()
    expect(switch).not_to_be_checked()
    switch.click()
    admin.get_by_role("button", name="Require it").click()
    expect(state).to_contain_text("Required since")
    expect(state).to_contain_text("by ada")
    expect(state).to_contain_text("2 users have not turned it on yet")
    expect(switch).to_be_checked()
    assert serious_violations(admin) == []

    # Bob's open session: told up front, refused with the same sentence if he writes anyway.
    bob.reload()
    bob.wait_for_selector("body[data-ready=true]")
    banner = bob.locator("#zero-access-needed")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("The administrator requires zero-access conversations")
    assert serious_violations(bob) == []
    box = bob.get_by_label("Message")
    box.fill("hello there")
    box.press("Enter")
    expect(bob.locator("#chat-error-text")).to_contain_text("requires zero-access")
    banner.get_by_role("link", name="Settings, Privacy").click()
    bob.wait_for_selector("body[data-ready=true]")
    expect(bob.locator("#privacy-required")).to_be_visible()
    bob.locator("#privacy-on-password").fill("bob's passphrase")
    bob.get_by_role("button", name="Turn on zero-access").click()
    key = bob.locator("#recovery-key")
    expect(key).to_be_visible()
    assert RECOVERY_KEY.match(key.inner_text().strip())
    bob.get_by_role("button", name="I saved it").click()
    expect(bob.locator("#privacy-off-form")).to_be_hidden()  # not while it is required
    bob.goto("/")
    bob.wait_for_selector("body[data-ready=true]")
    expect(bob.locator("#zero-access-needed")).to_be_hidden()
    box = bob.get_by_label("Message")
    box.fill("hello again")
    box.press("Enter")
    expect(bob.locator(".msg.assistant .msg-content").last).not_to_be_empty(timeout=15_000)

    # A new user gets it at their first sign-in, with the recovery key.
    _register(switch_server, "cyd")
    fresh = browser.new_context(base_url=switch_server)
    try:
        page = fresh.new_page()
        page.goto("/login.html")
        page.get_by_label("Username").fill("cyd")
        page.get_by_label("Password").fill("cyd's passphrase")
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#recovery-key")).to_be_visible()
    finally:
        fresh.close()

    admin.reload()
    admin.wait_for_selector("body[data-ready=true]")
    expect(state).to_contain_text("1 user has not turned it on yet")  # ada herself
    switch.click()
    expect(state).to_contain_text("Not required since")
    expect(switch).not_to_be_checked()
    assert admin.js_errors == [] and bob.js_errors == []  # type: ignore[attr-defined]
    for page in (admin, bob):
        page.context.close()


@pytest.mark.parametrize(("scheme", "viewport"), [("dark", PHONE)], ids=["dark-phone"])
def test_a_configured_requirement_shows_as_fixed_in_the_admin_page(
    browser: Browser, requiring_server: str, scheme: str, viewport: dict[str, int]
) -> None:
    # The first account administers the server: rita (here, or in the test above).
    body = {"username": "rita", "email": "rita@example.com", "password": "rita's passphrase"}
    assert httpx.post(f"{requiring_server}/api/auth/register", json=body).status_code in (201, 409)
    page = _signed_in(
        browser, requiring_server, "rita", color_scheme=scheme, viewport=viewport, is_mobile=True
    )
    try:
        page.goto("/admin.html")
        page.wait_for_selector("body[data-ready=true]")
        switch = page.get_by_role("switch", name="Require zero-access conversations for everyone")
        expect(switch).to_be_checked()
        expect(switch).to_be_disabled()
        expect(page.locator("#zero-access-state")).to_contain_text(
            "fixed by the server's configuration (ZERO_ACCESS_REQUIRED)"
        )
        assert serious_violations(page) == []
    finally:
        page.context.close()
