"""Usage page, limits and the 429 message in the chat."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page, expect

from .ui_helpers import PHONE, User, open_chat, shot


def ask(user: User, text: str) -> None:
    uuid = user.api.post("/api/conversations", json={"default_model": "gpt-4o-mini"}).json()["uuid"]
    r = user.api.post(f"/api/conversations/{uuid}/messages", json={"content": text})
    assert r.status_code == 201, r.text


def test_usage_page_shows_charts_and_limits(
    page_as: Callable[..., Page], make_user: Callable[..., User]
) -> None:
    user = make_user()
    ask(user, "first question")
    ask(user, "second question")
    page = page_as(user)
    open_chat(page)
    page.get_by_role("link", name="Usage").click()
    expect(page).to_have_url(re.compile(r"/usage\.html$"))
    page.wait_for_selector("body[data-ready=true]")
    expect(page.get_by_role("img", name=re.compile("Tokens per day: bar chart"))).to_be_visible()
    expect(
        page.get_by_role("img", name=re.compile("Messages per day: bar chart.*highest 2 messages"))
    ).to_be_visible()
    expect(page.locator("#stats")).to_contain_text("Messages2")
    expect(page.locator(".legend").first).to_contain_text("mock")  # the model that answered
    page.locator("#messages-chart").get_by_text("Show as a table").click()
    expect(page.locator("#messages-chart table")).to_contain_text("mock")
    expect(page.locator("#meters")).to_contain_text("Messages today")
    expect(page.locator("#meters")).to_contain_text("no limit")
    # Not an admin: no one else's usage, no limits form.
    expect(page.locator("#limits-admin")).to_be_hidden()
    expect(page.get_by_label("Whose usage")).to_be_hidden()
    assert not page.js_errors and not page.csp_violations  # type: ignore[attr-defined]
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_admin_sets_limits_and_the_chat_shows_the_429(
    page_as: Callable[..., Page], make_user: Callable[..., User], admin: User
) -> None:
    user = make_user()
    ask(user, "warm-up question")
    page = page_as(admin)
    page.goto("/usage.html")
    page.wait_for_selector("body[data-ready=true]")
    page.get_by_label("Whose usage").select_option("all")
    expect(page.locator("#by-user")).to_contain_text(user.username)
    expect(page.locator("#by-user tfoot")).to_contain_text("Total")

    # Default limits: saved and read back.
    page.locator("#default-dailyTokenBudget").fill("5000000")
    page.get_by_role("button", name="Save default limits").click()
    expect(page.locator("#default-limits-state")).to_have_text("Default limits saved.")
    assert admin.api.get("/api/admin/limits/default").json()["daily_token_budget"] == 5000000

    # One user: two messages a day (the warm-up and one more).
    page.get_by_label("User", exact=True).select_option(label=user.username)
    page.wait_for_selector(f'#user-limits[data-user="{user.id}"]')
    page.locator("#user-messagesPerDay").fill("-5")
    page.get_by_role("button", name="Save user limits").click()
    expect(page.locator("#user-limits-state")).to_contain_text("whole number")
    page.locator("#user-messagesPerDay").fill("2")
    page.get_by_role("button", name="Save user limits").click()
    expect(page.locator("#user-limits-state")).to_have_text("User limits saved.")
    assert admin.api.get(f"/api/admin/users/{user.id}/limits").json()["messages_per_day"] == 2
    page.set_viewport_size({"width": 1280, "height": 1400})
    shot(page, "usage-admin-desktop")
    page.set_viewport_size({"width": 1280, "height": 800})

    # The user: one message is fine, the next one is refused with the reset time; text kept.
    upage = page_as(user)
    open_chat(upage)
    box = upage.get_by_label("Message")
    box.fill("hello within the limit")
    box.press("Enter")
    expect(upage.get_by_role("button", name="Send")).to_be_visible(timeout=15_000)
    expect(upage.locator(".msg.assistant")).to_have_count(1)
    box.fill("one too many")
    box.press("Enter")
    alert = upage.locator("#chat-error")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("limit reached")
    expect(alert).to_contain_text("resets at")
    expect(box).to_have_value("one too many")
    expect(upage.locator(".msg.user")).to_have_count(1)
    shot(upage, "chat-limit-desktop")

    upage.goto("/usage.html")
    upage.wait_for_selector("body[data-ready=true]")
    expect(upage.locator("#meters")).to_contain_text("2 of 2")
    shot(upage, "usage-desktop")
    phone = page_as(user, viewport=PHONE, mobile=True)
    phone.goto("/usage.html")
    phone.wait_for_selector("body[data-ready=true]")
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(phone, "usage-phone")

    # Back to the default, and no default limits for the other tests.
    page.get_by_role("button", name="Use the default").click()
    expect(page.locator("#user-limits-state")).to_have_text("This user now has the default limits.")
    page.locator("#default-dailyTokenBudget").fill("")
    page.get_by_role("button", name="Save default limits").click()
    expect(page.locator("#default-limits-state")).to_have_text("Default limits saved.")
    assert admin.api.get("/api/admin/limits/default").json()["daily_token_budget"] is None
    assert not page.js_errors  # type: ignore[attr-defined]
