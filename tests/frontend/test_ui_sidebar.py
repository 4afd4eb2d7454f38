"""The sidebar with thousands of chats: a virtual list, paged from the server, keyboard-usable."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine, create_engine, insert

from backend.models import Conversation, new_uuid

from .ui_helpers import PASSWORD, Server, User, login_token, open_chat

CHATS = 5000
# The whole page, with the list showing any part of 5,000 chats: a screenful of rows, never
# the 15,000 elements that 500 chats cost when every row was in the page.
MAX_PAGE_ELEMENTS = 900
MAX_LIST_ELEMENTS = 450


@contextmanager
def store_engine(server: Server) -> Iterator[Engine]:
    """The server's store opened by this process (the store's key comes from the environment)."""
    old_key = os.environ.get("DELTADB_MASTER_KEY")
    if "DELTADB_MASTER_KEY" in server.database:
        os.environ["DELTADB_MASTER_KEY"] = server.database["DELTADB_MASTER_KEY"]
    engine = create_engine(server.database["DATABASE_URL"])
    try:
        yield engine
    finally:
        engine.dispose()
        if old_key is None:
            os.environ.pop("DELTADB_MASTER_KEY", None)
        else:
            os.environ["DELTADB_MASTER_KEY"] = old_key


def add_chats(server: Server, user: User, count: int) -> None:
    """`count` chats, "Chat number 1" the oldest; one a minute so the day groups vary."""
    now = datetime.now(UTC)
    rows = [
        {
            "uuid": new_uuid(),
            "user_id": user.id,
            "title": f"Chat number {i}",
            "kind": "chat",
            "pinned": False,
            "archived": False,
            "created_at": now - timedelta(minutes=10 * (count - i)),
            "updated_at": now - timedelta(minutes=10 * (count - i)),
        }
        for i in range(1, count + 1)
    ]
    with store_engine(server) as engine, engine.begin() as connection:
        for start in range(0, count, 1000):
            connection.execute(insert(Conversation), rows[start : start + 1000])


@pytest.fixture(scope="module")
def crowded_user(server: Server) -> Iterator[User]:
    """One user with 5,000 chats, shared by this module's tests (seeding takes a while)."""
    username = server.unique("crowded")
    with server.client() as client:
        r = client.post(
            "/api/auth/register",
            json={"username": username, "email": f"{username}@example.com", "password": PASSWORD},
        )
        assert r.status_code == 201, r.text
        uid = r.json()["id"]
    token = login_token(server, username, PASSWORD).json()["access_token"]
    user = User(username, PASSWORD, f"{username}@example.com", uid, server.client(token))
    add_chats(server, user, CHATS)
    yield user
    user.close()


def element_counts(page: Page) -> tuple[int, int]:
    return page.evaluate(
        "[document.getElementsByTagName('*').length,"
        " document.querySelectorAll('#conv-list *').length]"
    )


def scroll_list_to_end(page: Page) -> None:
    """Scrolls to the bottom until the oldest chat is drawn, as a reader holding End would."""
    last = page.locator(".conv-link").get_by_text("Chat number 1", exact=True)
    for _ in range(200):
        page.locator("#conv-list").evaluate("el => { el.scrollTop = el.scrollHeight; }")
        if last.count():
            break
        page.wait_for_timeout(50)
    expect(last).to_be_visible()


def test_five_thousand_chats_keep_the_page_small_and_the_end_reachable(
    page_as: Callable[..., Page], crowded_user: User
) -> None:
    page = page_as(crowded_user)
    open_chat(page)
    links = page.locator(".conv-link")
    expect(links.first).to_have_text(f"Chat number {CHATS}")
    total, in_list = element_counts(page)
    assert total <= MAX_PAGE_ELEMENTS and in_list <= MAX_LIST_ELEMENTS, (total, in_list)
    assert links.count() < 60
    scroll_list_to_end(page)
    total, in_list = element_counts(page)
    assert total <= MAX_PAGE_ELEMENTS and in_list <= MAX_LIST_ELEMENTS, (total, in_list)
    assert page.locator(f"text=Chat number {CHATS}").count() == 0  # the top left the page
    height = page.locator("#conv-list").evaluate("el => el.scrollHeight")
    assert height > CHATS * 30  # the scrollbar tells how long the list is
    oldest = page.locator(".conv-link").filter(has=page.get_by_text("Chat number 1", exact=True))
    oldest.click()
    expect(page).to_have_url(re.compile(r"\?c="))
    expect(page.locator('.conv-link[aria-current="page"]')).to_have_text("Chat number 1")
    expect(page.locator("#chat-title")).to_have_text("Chat number 1")


def test_the_keyboard_walks_the_list_beyond_what_is_drawn(
    page_as: Callable[..., Page], crowded_user: User
) -> None:
    page = page_as(crowded_user)
    open_chat(page)
    first = page.locator(".conv-link").first
    expect(first).to_have_text(f"Chat number {CHATS}")
    first.focus()
    for _ in range(80):  # far past the first screenful and its margin
        page.keyboard.press("ArrowDown")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused == f"Chat number {CHATS - 80}"
    for _ in range(40):  # Tab reaches the next chat through its menu button
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
    expect(page.locator(".conv-link:focus")).to_have_text(f"Chat number {CHATS - 120}")
    page.keyboard.press("Shift+Tab")  # back to the previous chat's menu button
    expect(page.locator(".conv-menu-btn:focus")).to_have_attribute(
        "aria-describedby", re.compile("^conv-")
    )
    page.keyboard.press("Shift+Tab")
    expect(page.locator(".conv-link:focus")).to_have_text(f"Chat number {CHATS - 119}")
    page.keyboard.press("Home")
    expect(page.locator(".conv-link:focus")).to_have_text(f"Chat number {CHATS}")
    page.keyboard.press("ArrowUp")
    expect(page.locator(".conv-link:focus")).to_have_text(f"Chat number {CHATS}")
    page.keyboard.press("End")  # the last chat loaded so far; the list pages on from there
    focused = page.evaluate("document.activeElement.textContent")
    assert focused.startswith("Chat number ") and int(focused.split()[-1]) < CHATS - 150
    page.keyboard.press("Enter")
    expect(page.locator("#chat-title")).to_have_text(focused)
    total, in_list = element_counts(page)
    assert total <= MAX_PAGE_ELEMENTS and in_list <= MAX_LIST_ELEMENTS, (total, in_list)


def test_search_renaming_and_the_archive_view_work_on_the_virtual_list(
    page_as: Callable[..., Page], crowded_user: User
) -> None:
    page = page_as(crowded_user)
    open_chat(page)
    page.get_by_label("Search chats").fill("4999")
    expect(page.locator(".conv-link")).to_have_count(1)
    expect(page.locator(".conv-link")).to_have_text("Chat number 4999")
    page.get_by_label("Search chats").fill("")
    expect(page.locator(".conv-link").first).to_have_text(f"Chat number {CHATS}")
    second = page.locator(".conv-item").nth(1)
    second.get_by_role("button", name="Chat options").click()
    page.get_by_role("menuitem", name="Rename").click()
    page.get_by_label("Chat title").fill("Renamed in a long list")
    page.get_by_label("Chat title").press("Enter")
    expect(page.locator(".conv-link").nth(1)).to_have_text("Renamed in a long list")
    expect(page.locator(".conv-link:focus")).to_have_text("Renamed in a long list")
