"""The chat by keyboard alone: shortcuts and their help, Escape one layer at a time, focus
back where it was when a dialog closes, code blocks reachable."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from .ui_helpers import PHONE, Server, User, open_chat, use_fake_provider


def _focused(page: Page) -> str:
    return page.evaluate(
        "() => { const a = document.activeElement;"
        " return a.id || a.getAttribute('aria-label') || a.textContent.trim(); }"
    )


def test_shortcuts_help_and_focus_return(
    page_as: Callable[..., Page], make_user: Callable[..., User], server: Server
) -> None:
    user = make_user()
    use_fake_provider(server, user)
    page = page_as(user)
    open_chat(page)
    box = page.get_by_label("Message")
    box.focus()
    page.keyboard.press("Control+/")
    help_dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(help_dialog).to_be_visible()
    for keys in ("Ctrl+Shift+O", "Ctrl+K", "Shift+Escape", "Ctrl+/"):
        expect(help_dialog.locator("kbd", has_text=keys)).to_have_count(1)
    page.keyboard.press("Escape")
    expect(help_dialog).to_have_count(0)
    assert _focused(page) == "message"  # focus is back in the message box

    # A question with code, typed and sent by keyboard; the code block takes focus.
    box.type("reverse a list please")
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Send")).to_be_visible(timeout=15_000)
    code = page.get_by_label("Code (python)")
    expect(code).to_have_attribute("tabindex", "0")
    code.focus()
    assert _focused(page) == "Code (python)"

    page.keyboard.press("Control+k")
    assert _focused(page) == "search"
    page.keyboard.press("Shift+Escape")
    assert _focused(page) == "message"
    page.keyboard.press("Control+Shift+O")
    expect(page.get_by_role("heading", name="Hello", exact=False)).to_be_visible()
    expect(page).to_have_url(f"{server.url}/")

    # Delete from the chat's menu, then cancel: focus returns to the menu's button.
    menu_button = page.locator(".conv-item").first.get_by_role("button", name="Chat options")
    menu_button.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("menu")).to_be_visible()
    page.keyboard.press("End")
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Delete chat?")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    assert _focused(page) == "Chat options"
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_escape_closes_one_layer_at_a_time_on_a_phone(
    page_as: Callable[..., Page], make_user: Callable[..., User]
) -> None:
    user = make_user()
    assert user.api.post("/api/conversations", json={"title": "A chat"}).status_code == 201
    page = page_as(user, viewport=PHONE, mobile=True)
    open_chat(page)
    page.get_by_role("button", name="Open sidebar").click()
    expect(page.locator("#app.sidebar-open")).to_have_count(1)
    page.get_by_role("button", name="Chat options").click()
    expect(page.get_by_role("menu")).to_be_visible()
    page.keyboard.press("Escape")  # the menu only
    expect(page.get_by_role("menu")).to_have_count(0)
    expect(page.locator("#app.sidebar-open")).to_have_count(1)
    page.keyboard.press("Escape")  # then the drawer
    expect(page.locator("#app.sidebar-open")).to_have_count(0)
