"""Answers belong to the server: a reload, a closed tab or a second device do not lose them."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import BrowserContext, Page, expect

from .fake_provider import SLOW_ANSWER
from .ui_helpers import Server, User, open_chat, use_fake_provider


def _stored(user: User, conv: str) -> list[dict]:
    return user.api.get(f"/api/conversations/{conv}/messages?limit=500").json()["data"]


def _conversation_id(page: Page) -> str:
    match = re.search(r"\?c=([0-9a-f-]{36})", page.url)
    assert match, page.url
    return match.group(1)


def test_reload_mid_answer_shows_it_completing_and_it_is_stored_once(
    page_as: Callable[..., Page], make_user: Callable[..., User], server: Server
) -> None:
    user = make_user()
    use_fake_provider(server, user)
    page = page_as(user)
    open_chat(page)
    box = page.get_by_label("Message")
    box.fill("Count slowly for me [slow]")
    box.press("Enter")
    answer = page.locator(".msg.assistant .msg-content").last
    expect(answer).to_contain_text("Word1")
    expect(box).to_have_value("")  # cleared once the server confirmed the question
    page.wait_for_timeout(1000)
    conv = _conversation_id(page)
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    # The answer is still being written: the page shows it and follows the rest live.
    answer = page.locator(".msg.assistant .msg-content").last
    expect(answer).to_contain_text("Word0")
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    assert "Word89" not in answer.inner_text()
    expect(answer).to_contain_text("Word88 Word89", timeout=15_000)
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    expect(page.get_by_label("Message")).to_have_value("")  # the question is not put back
    stored = _stored(user, conv)
    assert [m["role"] for m in stored] == ["user", "assistant"]
    assert stored[1]["content"] == SLOW_ANSWER
    expect(page.locator(".msg.assistant")).to_have_count(1)
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_a_closed_tab_does_not_stop_the_answer_and_another_device_watches_it(
    page_as: Callable[..., Page],
    new_context: Callable[..., BrowserContext],
    make_user: Callable[..., User],
    server: Server,
) -> None:
    user = make_user()
    use_fake_provider(server, user)
    page = page_as(user)
    open_chat(page)
    page.get_by_label("Message").fill("Keep going without me [slow]")
    page.get_by_label("Message").press("Enter")
    expect(page.locator(".msg.assistant .msg-content").last).to_contain_text("Word2")
    conv = _conversation_id(page)
    page.close()
    # A second device (another browser context) opens the chat and watches it finish.
    phone = new_context(user).new_page()
    phone.goto(f"/?c={conv}")
    phone.wait_for_selector("body[data-ready=true]")
    watched = phone.locator(".msg.assistant .msg-content").last
    expect(watched).to_contain_text("Word88 Word89", timeout=15_000)
    stored = _stored(user, conv)
    assert [m["role"] for m in stored] == ["user", "assistant"]
    assert stored[1]["content"] == SLOW_ANSWER


def test_stop_keeps_what_was_written(
    page_as: Callable[..., Page], make_user: Callable[..., User], server: Server
) -> None:
    user = make_user()
    use_fake_provider(server, user)
    page = page_as(user)
    open_chat(page)
    page.get_by_label("Message").fill("Start counting [slow]")
    page.get_by_label("Message").press("Enter")
    answer = page.locator(".msg.assistant").last
    expect(answer.locator(".msg-content")).to_contain_text("Word3")
    page.get_by_role("button", name="Stop").click()
    expect(answer.locator(".msg-note")).to_have_text("Stopped. What was written so far is saved.")
    shown = answer.locator(".msg-content").inner_text()
    stored = _stored(user, _conversation_id(page))
    assert stored[1]["response"]["finish_reason"] == "stopped"
    assert stored[1]["content"].strip() == shown.strip() and "Word89" not in shown
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    expect(page.locator(".msg.assistant .msg-note")).to_have_text(
        "Stopped. What was written so far is saved."
    )
    expect(page.get_by_role("button", name="Retry")).to_have_count(0)
