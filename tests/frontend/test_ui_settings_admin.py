"""Settings for every user; the admin page for admins only."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page, expect

from .ui_helpers import Server, User, login_token, open_chat


def test_settings_save_masks_the_key_and_sets_the_default_model(
    page_as: Callable[..., Page], make_user: Callable[..., User]
) -> None:
    user = make_user()
    page = page_as(user)
    open_chat(page)
    page.get_by_role("link", name="Settings").click()
    expect(page).to_have_url(re.compile(r"/settings\.html$"))
    page.wait_for_selector("body[data-ready=true]")
    expect(page.locator("#profile")).to_contain_text(user.username)

    key = page.get_by_label("API key")
    expect(key).to_have_attribute("type", "password")
    page.get_by_label("Base URL").fill("ftp://example.com")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("alert")).to_contain_text("http:// or https://")

    key.fill("sk-test-abcdefghijklmnop")
    page.get_by_label("Base URL").fill("https://llm.example.com/v1")
    page.get_by_label("Default model").select_option("gpt-4o")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status").filter(has_text="Settings saved.")).to_be_visible()
    expect(page.locator("#key-masked")).to_have_text("…mnop")
    expect(key).to_have_value("")
    assert "abcdefghijklmnop" not in page.content()
    stored = user.api.get("/api/settings").json()
    assert stored["has_api_key"] and stored["openai_base_url"] == "https://llm.example.com/v1"
    assert stored["default_model"] == "gpt-4o"

    # Saved values come back on a fresh load; the key stays masked.
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    expect(page.get_by_label("Base URL")).to_have_value("https://llm.example.com/v1")
    expect(page.get_by_label("Default model")).to_have_value("gpt-4o")
    expect(page.locator("#key-masked")).to_have_text("…mnop")

    # Removing the key and the base URL.
    page.get_by_label("Remove the saved key").check()
    page.get_by_label("Base URL").fill("")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status").filter(has_text="Settings saved.")).to_be_visible()
    expect(page.locator("#key-state")).to_be_hidden()
    assert user.api.get("/api/settings").json()["has_api_key"] is False

    # Back to the chat, where a new chat starts on the default model.
    page.get_by_role("link", name="Back to chat").click()
    expect(page).to_have_url(re.compile(r"/$"))
    page.wait_for_selector("body[data-ready=true]")
    expect(page.get_by_label("Model")).to_have_value("gpt-4o")

    # Back to "Automatic": the stored default is cleared.
    page.get_by_role("link", name="Settings").click()
    page.wait_for_selector("body[data-ready=true]")
    page.get_by_label("Default model").select_option("")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status").filter(has_text="Settings saved.")).to_be_visible()
    assert user.api.get("/api/settings").json()["default_model"] is None
    expect(page.get_by_label("Default model").locator("option").first).to_have_text(
        "Automatic (gpt-4o-mini)"
    )


def test_admin_page_refused_to_other_users(
    page_as: Callable[..., Page], make_user: Callable[..., User]
) -> None:
    user = make_user()
    page = page_as(user)
    open_chat(page)
    expect(page.get_by_role("link", name="Admin")).to_be_hidden()
    page.goto("/admin.html")
    page.wait_for_selector("body[data-ready=true]")
    expect(page.get_by_role("heading", name="Admins only")).to_be_visible()
    expect(page.locator("#users")).to_be_hidden()
    expect(page.get_by_text(user.username)).to_have_count(0)
    assert user.api.get("/api/admin/users").status_code == 403


def test_admin_manages_users_and_models(
    page_as: Callable[..., Page],
    make_user: Callable[..., User],
    admin: User,
    server: Server,
) -> None:
    member = make_user("member")
    page = page_as(admin)
    open_chat(page)
    page.get_by_role("link", name="Admin").click()
    expect(page).to_have_url(re.compile(r"/admin\.html$"))
    page.wait_for_selector("body[data-ready=true]")
    expect(page.get_by_role("heading", name="Admin", exact=True)).to_be_visible()
    row = page.locator("tr", has_text=member.username)
    expect(row).to_be_visible()
    # Admins cannot lock themselves out from the page.
    expect(page.get_by_label(f"Active: {admin.username}")).to_be_disabled()

    # Deactivate: the member can no longer sign in; reactivate.
    active = page.get_by_label(f"Active: {member.username}")
    expect(active).to_be_checked()
    active.uncheck()
    expect(page.get_by_role("status").filter(has_text=f"Saved {member.username}")).to_be_visible()
    assert login_token(server, member.username, member.password).status_code == 403
    active.check()
    expect(active).to_be_checked()
    page.wait_for_timeout(300)
    relogin = login_token(server, member.username, member.password)
    assert relogin.status_code == 200
    # Deactivation ended the member's sessions; use the new one from here on.
    member.api.close()
    member.api = server.client(relogin.json()["access_token"])

    # Make admin and back.
    promote = page.get_by_label(f"Admin: {member.username}")
    promote.check()
    page.wait_for_timeout(300)
    assert member.api.get("/api/auth/me").json()["is_admin"] is True
    promote.uncheck()
    page.wait_for_timeout(300)
    assert member.api.get("/api/auth/me").json()["is_admin"] is False

    # Global list: add a model and save.
    page.get_by_label("Model name").fill("mock-model")
    page.get_by_label("Model name").press("Enter")
    expect(page.locator("#model-chips")).to_contain_text("mock-model")
    page.get_by_role("button", name="Save models").click()
    expect(page.locator("#models-state")).to_have_text("Models saved.")
    assert "mock-model" in admin.api.get("/api/admin/models").json()["models"]

    # Restrict the member to one model; their picker follows.
    row = page.locator("tr", has_text=member.username)
    row.locator("summary").click()
    row.get_by_label("All available models").uncheck()
    for name in ["gpt-4o-mini", "gpt-4o"]:
        row.get_by_label(name, exact=True).uncheck()
    row.get_by_label("mock-model", exact=True).check()
    row.get_by_role("button", name="Save access").click()
    expect(row.locator("summary")).to_contain_text("1 of 3 models")
    models = [m["id"] for m in member.api.get("/api/models").json()["data"]]
    assert models == ["mock-model"]

    member_page = page_as(member)
    open_chat(member_page)
    picker = member_page.get_by_label("Model")
    expect(picker.locator("option")).to_have_text(["mock-model"])
    member_page.get_by_label("Message").fill("Which model answers?")
    member_page.get_by_label("Message").press("Enter")
    # The offline model answers under its own name, whichever model was picked.
    expect(member_page.locator(".msg.assistant .meta")).to_contain_text("mock")

    # Back to everything, and the global list as it was.
    row.locator("summary").click()
    row.get_by_label("All available models").check()
    row.get_by_role("button", name="Save access").click()
    expect(row.locator("summary")).to_contain_text("All models")
    page.locator(".chip", has_text="mock-model").get_by_role("button").click()
    page.get_by_role("button", name="Save models").click()
    expect(page.locator("#models-state")).to_have_text("Models saved.")
    assert "mock-model" not in admin.api.get("/api/admin/models").json()["models"]
