"""The chat page's new states pass axe-core (0 critical, 0 serious): light and dark, desktop
and phone: a temporary chat, a stopped answer, an answer followed after a reload."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from .accessibility import serious_violations
from .ui_helpers import DESKTOP, PHONE, Server, User, open_chat, use_fake_provider


@pytest.mark.parametrize(
    ("scheme", "viewport"),
    [("light", DESKTOP), ("dark", DESKTOP), ("light", PHONE), ("dark", PHONE)],
    ids=["light-desktop", "dark-desktop", "light-phone", "dark-phone"],
)
def test_chat_states_have_no_serious_accessibility_violations(
    page_as: Callable[..., Page],
    make_user: Callable[..., User],
    server: Server,
    scheme: str,
    viewport: dict[str, int],
) -> None:
    user = make_user()
    use_fake_provider(server, user)
    page = page_as(user, color_scheme=scheme, viewport=viewport, mobile=viewport is PHONE)
    open_chat(page)
    page.get_by_role("button", name="Temporary chat").click()
    expect(page.get_by_role("note")).to_be_visible()
    assert serious_violations(page) == []

    page.get_by_role("button", name="Temporary chat").click()  # back to a normal chat
    box = page.get_by_label("Message")
    box.fill("Count slowly [slow]")
    box.press("Enter")
    expect(page.locator(".msg.assistant .msg-content").last).to_contain_text("Word2")
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    assert serious_violations(page) == []  # following the answer after the reload
    page.get_by_role("button", name="Stop").click()
    expect(page.locator(".msg-note")).to_be_visible()
    assert serious_violations(page) == []


def test_the_check_reports_what_axe_finds(page_as: Callable[..., Page]) -> None:
    page = page_as()
    page.set_content('<html lang="en"><body><main><img src="/x.png"><input></main></body></html>')
    found = serious_violations(page)
    assert any("image-alt" in line for line in found) and any("label" in line for line in found)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_highlighted_code_and_task_lists_pass_axe(
    page_as: Callable[..., Page], make_user: Callable[..., User], server: Server, scheme: str
) -> None:
    user = make_user()
    use_fake_provider(server, user)
    page = page_as(user, color_scheme=scheme)
    open_chat(page)
    box = page.get_by_label("Message")
    box.fill("reverse a list please")
    box.press("Enter")
    expect(page.locator(".msg.assistant .hljs-keyword").first).to_be_visible(timeout=15_000)
    expect(page.get_by_role("button", name="Send")).to_be_visible(timeout=15_000)
    assert serious_violations(page) == []
