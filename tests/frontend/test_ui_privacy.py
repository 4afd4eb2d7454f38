"""Settings, privacy section: zero-access on with the recovery key shown once; the admin's
warning before a password reset; the recovery key opening the content again after it."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page, expect

from .ui_helpers import Server, User, login_token

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
