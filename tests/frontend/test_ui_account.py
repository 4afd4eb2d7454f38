"""Settings, account section: changing the password and signing out everywhere."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page, expect

from .ui_helpers import Server, User, login_token

NEW_PASSWORD = "a fresh passphrase 42"


def open_account(page: Page) -> Page:
    page.goto("/settings.html")
    page.wait_for_selector("body[data-ready=true]")
    return page


def test_password_change_keeps_this_session_and_ends_the_others(
    page_as: Callable[..., Page], make_user: Callable[..., User], server: Server
) -> None:
    user = make_user("pw")
    page = open_account(page_as(user))
    form = page.locator("#password-form")
    alert = form.get_by_role("alert")
    change = page.get_by_role("button", name="Change password")

    page.get_by_label("Current password").fill("not-my-password")
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Confirm new password").fill(NEW_PASSWORD + "x")
    change.click()
    expect(alert).to_have_text("The two new passwords do not match.")
    expect(page.get_by_label("Confirm new password")).to_have_attribute("aria-invalid", "true")

    page.get_by_label("Confirm new password").fill(NEW_PASSWORD)
    change.click()
    expect(alert).to_have_text("The current password is not correct.")
    expect(page.get_by_label("Current password")).to_be_focused()

    page.get_by_label("Current password").fill(user.password)
    change.click()
    expect(form.get_by_role("status")).to_have_text(
        "Password changed. Your other sessions were signed out."
    )
    expect(page.get_by_label("Current password")).to_have_value("")
    assert user.api.get("/api/auth/me").status_code == 401  # the other session ended
    open_account(page)  # this one did not
    expect(page).to_have_url(re.compile(r"/settings\.html$"))
    assert login_token(server, user.username, user.password).status_code == 401
    assert login_token(server, user.username, NEW_PASSWORD).status_code == 200
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_sign_out_everywhere_ends_every_session(
    page_as: Callable[..., Page], make_user: Callable[..., User]
) -> None:
    user = make_user("everywhere")
    elsewhere = page_as(user)
    open_account(elsewhere)
    page = open_account(page_as(user))
    page.get_by_role("button", name="Sign out everywhere").click()
    expect(page).to_have_url(re.compile(r"/login\.html\?signedout=1$"))
    expect(page.get_by_role("status")).to_have_text("You have been signed out.")
    assert user.api.get("/api/auth/me").status_code == 401
    elsewhere.goto("/settings.html")  # the other browser is signed out too
    expect(elsewhere).to_have_url(re.compile(r"/login\.html"))
