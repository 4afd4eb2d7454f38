"""The chat's history and list: regenerate after paging back, stopped answers, titles, the
order of the sidebar, and word-aware title search."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from .ui_helpers import Server, User, open_chat, use_fake_provider


def _send(page: Page, text: str) -> None:
    box = page.get_by_label("Message")
    box.fill(text)
    box.press("Enter")


def _wait_idle(page: Page) -> None:
    expect(page.get_by_role("button", name="Send")).to_be_visible(timeout=15_000)
    expect(page.locator(".msg.streaming")).to_have_count(0, timeout=15_000)


def test_regenerate_after_loading_older_messages_writes_a_version_of_that_answer(
    page_as: Callable[..., Page], make_user: Callable[..., User], server: Server
) -> None:
    user = make_user()
    use_fake_provider(server, user)  # the JSON path answers at once
    conv = user.api.post("/api/conversations", json={"title": "Long chat"}).json()["uuid"]
    for i in range(1, 36):
        r = user.api.post(f"/api/conversations/{conv}/messages", json={"content": f"Question {i}"})
        assert r.status_code == 201, r.text
    stored = user.api.get(f"/api/conversations/{conv}/messages?limit=500").json()["data"]
    assert len(stored) == 70

    page = page_as(user)
    open_chat(page, f"/?c={conv}")
    messages = page.locator("#thread .msg")
    expect(messages).to_have_count(50)
    page.locator("#messages").evaluate("el => { el.scrollTop = 0; }")
    expect(messages).to_have_count(70)
    # Every answer offers Regenerate, also those of older pages, and each names its own.
    expect(page.get_by_role("button", name="Regenerate")).to_have_count(35)
    oldest = page.locator(".msg.assistant").first
    assert oldest.get_attribute("data-id") == stored[1]["uuid"]
    oldest.get_by_role("button", name="Regenerate").click()
    _wait_idle(page)

    after = user.api.get(f"/api/conversations/{conv}/messages?limit=500").json()["data"]
    # The new version answers the first question; the rest of the chat is its old branch.
    assert [m["uuid"] for m in after][:1] == [stored[0]["uuid"]] and len(after) == 2
    assert after[1]["versions"] == [stored[1]["uuid"], after[1]["uuid"]]
    expect(messages).to_have_count(2)
    expect(page.locator(".msg.assistant")).to_have_attribute("data-id", after[1]["uuid"])
    page.locator(".msg.assistant").get_by_role("button", name="Previous version").click()
    # The old branch again, drawn with the answer switched to in view: that answer is the
    # branch's second message, so every page of the branch is loaded back.
    expect(messages).to_have_count(70)
    switched = page.locator(f'.msg[data-id="{stored[1]["uuid"]}"]')
    expect(switched).to_be_in_viewport()
    expect(page.locator(".msg.assistant").last).to_have_attribute("data-id", stored[-1]["uuid"])
    expect(page.locator(".msg.assistant").last.locator(".msg-content")).to_have_text(
        stored[-1]["content"]
    )
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_a_stopped_first_answer_names_the_chat_and_shows_no_null(
    page_as: Callable[..., Page], make_user: Callable[..., User], server: Server
) -> None:
    user = make_user()
    use_fake_provider(server, user)
    page = page_as(user)
    open_chat(page)
    _send(page, "Holiday plans for Lisbon [slow]")
    answer = page.locator(".msg.assistant").last
    expect(answer.locator(".msg-content")).to_contain_text("Word3")
    page.get_by_role("button", name="Stop").click()
    expect(answer.locator(".msg-note")).to_contain_text("Stopped")
    expect(answer.locator(".msg-foot")).not_to_contain_text("null")
    assert "null" not in page.locator("#thread").inner_text()
    expect(page.locator("#chat-title")).to_have_text("Holiday plans for Lisbon [slow]")
    expect(page.locator(".conv-item.active")).to_contain_text("Holiday plans for Lisbon")
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    expect(page.locator(".conv-item.active")).to_contain_text("Holiday plans for Lisbon")
    expect(page.locator("#chat-title")).not_to_have_text("Untitled chat")


def test_renaming_a_chat_keeps_its_place_in_the_list(
    page_as: Callable[..., Page], make_user: Callable[..., User]
) -> None:
    user = make_user()
    for title in ("Third", "Second", "First"):  # "First" is the newest
        assert user.api.post("/api/conversations", json={"title": title}).status_code == 201
    page = page_as(user)
    open_chat(page)
    links = page.locator(".conv-link")
    expect(links).to_have_text(["First", "Second", "Third"])
    page.locator(".conv-item", has_text="Third").get_by_role("button", name="Chat options").click()
    page.get_by_role("menuitem", name="Rename").click()
    box = page.get_by_label("Chat title")
    box.fill("Third, renamed")
    box.press("Enter")
    expect(links).to_have_text(["First", "Second", "Third, renamed"])
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    expect(links).to_have_text(["First", "Second", "Third, renamed"])


def test_sidebar_search_matches_whole_words_and_prefixes(
    page_as: Callable[..., Page], make_user: Callable[..., User]
) -> None:
    user = make_user()
    for title in ("Invoice 142", "Invoice 42", "Room 420", "Customs forms"):
        assert user.api.post("/api/conversations", json={"title": title}).status_code == 201
    page = page_as(user)
    open_chat(page)
    links = page.locator(".conv-link")
    expect(links).to_have_count(4)
    search = page.get_by_label("Search chats")
    search.fill("42")
    expect(links).to_have_text(["Room 420", "Invoice 42"])
    search.fill("tom")
    expect(page.locator(".conv-empty")).to_have_text("No chats match your search.")
    search.fill("cust")
    expect(links).to_have_text(["Customs forms"])
