"""A temporary chat: answered like any chat, said clearly, and never stored."""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from playwright.sync_api import Page, expect
from sqlalchemy import create_engine, inspect, text

from .ui_helpers import Server, User, open_chat, use_fake_provider

SECRET = "okapi-temporary-4471"


def store_rows_containing(server: Server, needle: str) -> list[str]:
    """Tables with a row holding the text, read from the server's store by this process."""
    old_key = os.environ.get("DELTADB_MASTER_KEY")
    if "DELTADB_MASTER_KEY" in server.database:  # the store's key is read from the environment
        os.environ["DELTADB_MASTER_KEY"] = server.database["DELTADB_MASTER_KEY"]
    engine = create_engine(server.database["DATABASE_URL"])
    try:
        found = []
        with engine.connect() as connection:
            for table in inspect(connection).get_table_names():
                for row in connection.execute(text(f'SELECT * FROM "{table}"')):
                    if any(isinstance(v, str) and needle in v for v in row):
                        found.append(table)
        return found
    finally:
        engine.dispose()
        if old_key is None:
            os.environ.pop("DELTADB_MASTER_KEY", None)
        else:
            os.environ["DELTADB_MASTER_KEY"] = old_key


def test_a_temporary_chat_is_answered_and_leaves_nothing_in_the_store(
    page_as: Callable[..., Page], make_user: Callable[..., User], server: Server
) -> None:
    user = make_user()
    use_fake_provider(server, user)
    page = page_as(user)
    open_chat(page)
    toggle = page.get_by_role("button", name="Temporary chat")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_role("note")).to_contain_text("nothing of it is stored")
    expect(page.locator("#chat-title")).to_have_text("Temporary chat")
    box = page.get_by_label("Message")
    box.fill(f"Remember {SECRET}")
    box.press("Enter")
    expect(page.locator(".msg.assistant .msg-content").last).to_contain_text("short answer")
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    expect(box).to_have_value("")
    box.fill("And a second question")
    box.press("Enter")
    expect(page.locator(".msg.assistant")).to_have_count(2)
    expect(page.locator(".msg.assistant .msg-content").last).to_contain_text("short answer")
    # No Regenerate (there is no stored answer to replace), and no chat in the list or URL.
    expect(page.get_by_role("button", name="Regenerate")).to_have_count(0)
    expect(page.locator(".conv-link")).to_have_count(0)
    assert not re.search(r"\?c=", page.url)
    # The provider saw the whole temporary conversation on the second question.
    asked = server.provider.asked[-1]
    assert [m["role"] for m in asked][-3:] == ["user", "assistant", "user"]
    assert SECRET in asked[-3]["content"]

    # A scan of the store (every row of every table, decrypted): nothing of the chat.
    assert user.api.get("/api/conversations").json()["count"] == 0
    assert store_rows_containing(server, SECRET) == []
    assert store_rows_containing(server, "And a second question") == []
    assert store_rows_containing(server, user.username)  # the scan does read the store
    assert SECRET not in server.log.read_text()
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    expect(page.locator(".msg")).to_have_count(0)
    assert page.js_errors == []  # type: ignore[attr-defined]
