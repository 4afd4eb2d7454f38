"""Every page at desktop (1280x800) and phone (390x844) sizes (`make screenshots` keeps them).

Each page is also checked for the basics a screenshot cannot show: no horizontal overflow
on a phone, a visible focus ring when tabbing, and no script errors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Page, expect

from .ui_helpers import (
    DESKTOP,
    PASSWORD,
    PHONE,
    Server,
    User,
    login_token,
    open_chat,
    shot,
    use_fake_provider,
)

SIZES = {"desktop": (DESKTOP, False), "phone": (PHONE, True)}

NO_OVERFLOW = "() => document.documentElement.scrollWidth <= window.innerWidth + 1"


def settle(page: Page) -> None:
    page.wait_for_load_state("networkidle")
    page.evaluate("document.fonts.ready")
    page.wait_for_timeout(150)


@pytest.fixture(scope="module")
def chat_user(server: Server) -> Iterator[User]:
    """ "Sam", with a pinned conversation whose answer shows markdown and code."""
    with server.client() as c:
        r = c.post(
            "/api/auth/register",
            json={
                "username": "sam",
                "email": "sam@example.com",
                "password": PASSWORD,
                "full_name": "Sam Rivera",
            },
        )
        assert r.status_code == 201, r.text
        uid = r.json()["id"]
    token = login_token(server, "sam", PASSWORD).json()["access_token"]
    user = User("sam", PASSWORD, "sam@example.com", uid, server.client(token))
    use_fake_provider(server, user)
    for title in ["Trip ideas for the spring", "SQL window functions", "Team retro notes"]:
        user.api.post("/api/conversations", json={"title": title})
    uuid = user.api.post("/api/conversations", json={}).json()["uuid"]
    r = user.api.post(
        f"/api/conversations/{uuid}/messages",
        json={"content": "How do I reverse a list in Python?"},
    )
    assert r.status_code == 201, r.text
    user.api.patch(f"/api/conversations/{uuid}", json={"pinned": True})
    # What the settings page then shows: a saved personal key, the server's endpoint.
    user.api.put(
        "/api/settings",
        json={"openai_api_key": "sk-demo-0000000000000000wxyz", "openai_base_url": ""},
    )
    user.uuid = uuid  # type: ignore[attr-defined]
    yield user
    user.close()


@pytest.mark.parametrize("size", SIZES)
def test_screenshots(
    size: str,
    page_as: Callable[..., Page],
    chat_user: User,
    admin: User,
    server: Server,
) -> None:
    viewport, mobile = SIZES[size]
    anon = page_as(viewport=viewport, mobile=mobile)

    anon.goto("/login.html")
    settle(anon)
    assert anon.evaluate(NO_OVERFLOW)
    shot(anon, f"login-{size}")

    anon.goto("/register.html")
    settle(anon)
    assert anon.evaluate(NO_OVERFLOW)
    shot(anon, f"register-{size}")

    page = page_as(chat_user, viewport=viewport, mobile=mobile)
    open_chat(page)
    settle(page)
    assert page.evaluate(NO_OVERFLOW)
    shot(page, f"chat-empty-{size}")

    open_chat(page, f"/?c={chat_user.uuid}")  # type: ignore[attr-defined]
    expect(page.locator(".code-block")).to_be_visible()
    settle(page)
    assert page.evaluate(NO_OVERFLOW)
    shot(page, f"chat-{size}")

    if mobile:
        page.get_by_role("button", name="Open sidebar").click()
        expect(page.get_by_role("button", name="New chat")).to_be_in_viewport()
        page.wait_for_timeout(300)
        shot(page, f"chat-sidebar-{size}")
        page.keyboard.press("Escape")
        expect(page.get_by_role("button", name="New chat")).not_to_be_in_viewport()
    else:
        # Keyboard: Tab from the page start lands on visible, outlined controls.
        page.locator("body").focus()
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
        assert outline not in ("none", ""), outline

    page.goto("/settings.html")
    page.wait_for_selector("body[data-ready=true]")
    settle(page)
    assert page.evaluate(NO_OVERFLOW)
    shot(page, f"settings-{size}")

    admin_page = page_as(admin, viewport=viewport, mobile=mobile)
    admin_page.goto("/admin.html")
    admin_page.wait_for_selector("body[data-ready=true]")
    expect(admin_page.locator("#users-body tr").first).to_be_visible()
    settle(admin_page)
    assert admin_page.evaluate(NO_OVERFLOW)
    shot(admin_page, f"admin-{size}")

    page.goto("/admin.html")
    page.wait_for_selector("body[data-ready=true]")
    settle(page)
    shot(page, f"admin-refused-{size}")
    assert page.js_errors == [] and admin_page.js_errors == []  # type: ignore[attr-defined]
    # Works offline: every request stays on the server's own origin (no CDN, no fonts).
    for p in (anon, page, admin_page):
        assert p.csp_violations == [], p.csp_violations  # type: ignore[attr-defined]
        foreign = [u for u in p.requests if not u.startswith((server.url, "data:"))]  # type: ignore[attr-defined]
        assert foreign == [], foreign


def test_dark_mode_screenshot(page_as: Callable[..., Page], chat_user: User) -> None:
    page = page_as(chat_user, color_scheme="dark")
    open_chat(page, f"/?c={chat_user.uuid}")  # type: ignore[attr-defined]
    expect(page.locator(".code-block")).to_be_visible()
    settle(page)
    background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(23, 23, 23)", background
    shot(page, "chat-dark-desktop")
