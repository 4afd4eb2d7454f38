"""The chat page: streaming, stop, regenerate, model picker, sidebar actions, errors, paging."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page, expect

from .ui_helpers import Server, User, open_chat, use_fake_provider


def send(page: Page, text: str) -> None:
    box = page.get_by_label("Message")
    box.fill(text)
    box.press("Enter")


def wait_idle(page: Page, timeout: float = 15_000) -> None:
    expect(page.get_by_role("button", name="Send")).to_be_visible(timeout=timeout)
    expect(page.locator(".msg.streaming")).to_have_count(0, timeout=timeout)


def test_streamed_answer_grows_then_shows_metadata_and_title(
    page_as: Callable[..., Page], make_user: Callable[..., User], server: Server
) -> None:
    user = make_user()
    use_fake_provider(server, user)
    page = page_as(user)
    open_chat(page)
    expect(page.get_by_role("heading", name=re.compile("Hello"))).to_be_visible()

    box = page.get_by_label("Message")
    box.fill("Count for me")
    box.press("Shift+Enter")  # a new line, not a send
    box.press_sequentially("slowly please [slow]")
    expect(box).to_have_value("Count for me\nslowly please [slow]")
    expect(page.locator(".msg")).to_have_count(0)
    box.press("Enter")

    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    expect(box).to_have_value("")
    expect(page.locator(".msg.user .bubble")).to_have_text("Count for me\nslowly please [slow]")
    answer = page.locator(".msg.assistant .msg-content").last
    expect(answer).to_contain_text("Word0")

    lengths = []
    for _ in range(8):
        lengths.append(len(answer.inner_text()))
        page.wait_for_timeout(200)
    assert lengths == sorted(lengths), lengths
    assert len(set(lengths)) >= 4, f"the answer did not visibly grow: {lengths}"
    assert "Word89" not in answer.inner_text()[: lengths[0]]

    wait_idle(page)
    expect(answer).to_contain_text("Word88 Word89")
    meta = page.locator(".msg.assistant .meta").last
    expect(meta).to_contain_text("gpt-4o-mini")
    expect(meta).to_have_text(re.compile(r"\d+ in · \d+ out tokens · [\d.]+ m?s"))
    # The generated title reaches the header and the sidebar.
    expect(page.locator("#chat-title")).to_contain_text("Count for me")
    expect(page.locator(".conv-item.active")).to_contain_text("Count for me")
    expect(page).to_have_url(re.compile(r"/\?c=[0-9a-f-]{36}$"))

    # Reloading shows the same history, answer metadata included.
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    expect(page.locator(".msg")).to_have_count(2)
    expect(page.locator(".msg.assistant .meta")).to_contain_text("gpt-4o-mini")
    assert page.dialogs == [] and page.js_errors == []  # type: ignore[attr-defined]


def test_builtin_mock_streams_word_by_word(
    page_as: Callable[..., Page], make_user: Callable[..., User]
) -> None:
    """The server's own (mock) provider, slowed by MOCK_OPENAI_DELAY_MS, streams visibly too."""
    page = page_as(make_user())
    open_chat(page)
    send(page, "Tell me about streaming answers from the built-in model, word by word please")
    answer = page.locator(".msg.assistant .msg-content").last
    expect(answer).to_contain_text("Mock")
    lengths = []
    for _ in range(6):
        lengths.append(len(answer.inner_text()))
        page.wait_for_timeout(90)
    wait_idle(page)
    final = len(answer.inner_text())
    assert lengths == sorted(lengths) and lengths[0] < final, (lengths, final)
    assert len(set(lengths)) >= 3, f"the answer did not visibly grow: {lengths}"
    expect(answer).to_contain_text("built-in offline model")


def test_stop_ends_the_stream(
    page_as: Callable[..., Page], make_user: Callable[..., User], server: Server
) -> None:
    user = make_user()
    use_fake_provider(server, user)
    page = page_as(user)
    open_chat(page)
    send(page, "Please count [slow]")
    answer = page.locator(".msg.assistant .msg-content").last
    expect(answer).to_contain_text("Word3")
    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    expect(page.locator(".msg.assistant .msg-note")).to_contain_text("Stopped.")
    stopped_at = answer.inner_text()
    page.wait_for_timeout(600)
    assert answer.inner_text() == stopped_at
    assert "Word89" not in stopped_at
    # The composer is usable again right away.
    send(page, "And now a short one")
    wait_idle(page)
    expect(page.locator(".msg.assistant").last).to_contain_text("short answer")


def test_regenerate_with_another_model(
    page_as: Callable[..., Page], make_user: Callable[..., User]
) -> None:
    user = make_user()
    page = page_as(user)
    open_chat(page)
    picker = page.get_by_label("Model")
    expect(picker).to_have_value("gpt-4o-mini")
    options = picker.locator("option").all_inner_texts()
    assert "gpt-4o" in options and "gpt-4o-mini" in options

    send(page, "What is an entity store?")
    wait_idle(page)
    first = page.locator(".msg.assistant").last
    expect(first.locator(".meta")).to_contain_text("mock")  # the offline model names itself
    old_id = first.get_attribute("data-id")
    assert old_id

    picker.select_option("gpt-4o")
    regenerate = page.get_by_role("button", name="Regenerate")
    expect(regenerate).to_have_count(1)  # only on the last answer
    regenerate.click()
    wait_idle(page)
    expect(page.locator(".msg.assistant")).to_have_count(1)
    answer = page.locator(".msg.assistant").last
    expect(answer.locator(".meta")).to_have_text(re.compile(r"^mock ·"))  # asked for gpt-4o
    assert answer.get_attribute("data-id") not in ("", old_id)

    # The choice sticks to the conversation: a reload keeps gpt-4o selected.
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    expect(page.get_by_label("Model")).to_have_value("gpt-4o")
    expect(page.locator(".msg.assistant")).to_have_count(1)


def test_sidebar_search_rename_pin_archive_delete(
    page_as: Callable[..., Page], make_user: Callable[..., User]
) -> None:
    user = make_user()
    ids = {}
    for title in ["Alpha notes", "Beta plans", "Gamma ideas"]:
        r = user.api.post("/api/conversations", json={"title": title})
        assert r.status_code == 201, r.text
        ids[title] = r.json()["uuid"]
    page = page_as(user)
    open_chat(page)
    links = page.locator(".conv-link")
    expect(links).to_have_text(["Gamma ideas", "Beta plans", "Alpha notes"])  # newest first

    search = page.get_by_label("Search chats")
    search.fill("alp")
    expect(links).to_have_text(["Alpha notes"])
    search.fill("")
    expect(links).to_have_count(3)

    def menu(title: str, action: str) -> None:
        item = page.locator(".conv-item", has_text=title)
        item.get_by_role("button", name="Chat options").click()
        page.get_by_role("menuitem", name=action).click()

    # The menu works from the keyboard: arrows move, Escape closes and returns focus.
    options = page.locator(".conv-item", has_text="Beta plans").get_by_role(
        "button", name="Chat options"
    )
    options.focus()
    options.press("Enter")
    expect(page.get_by_role("menuitem", name="Rename")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("menuitem", name="Pin")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.get_by_role("menu")).to_have_count(0)
    expect(options).to_be_focused()

    # Rename (keyboard: Enter saves).
    menu("Alpha notes", "Rename")
    field = page.get_by_label("Chat title")
    expect(field).to_be_focused()
    field.fill("Alpha renamed")
    field.press("Enter")
    expect(links.filter(has_text="Alpha renamed")).to_have_count(1)
    assert user.api.get(f"/api/conversations/{ids['Alpha notes']}").json()["title"] == (
        "Alpha renamed"
    )

    # Pin moves it to the top under "Pinned".
    menu("Alpha renamed", "Pin")
    expect(links.first).to_have_text("Alpha renamed")
    expect(page.locator(".conv-group").first).to_have_text("Pinned")

    # Archive hides it from the list; the archive view shows it.
    menu("Beta plans", "Archive")
    expect(links.filter(has_text="Beta plans")).to_have_count(0)
    page.get_by_role("button", name="Show archived").click()
    expect(links).to_have_text(["Beta plans"])
    page.get_by_role("button", name="Show current chats").click()
    expect(links).to_have_count(2)

    # Delete asks first; Cancel keeps it, Delete removes it.
    links.filter(has_text="Gamma ideas").click()
    expect(page.locator("#chat-title")).to_have_text("Gamma ideas")
    menu("Gamma ideas", "Delete")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Delete chat?")
    dialog.get_by_role("button", name="Cancel").click()
    expect(links.filter(has_text="Gamma ideas")).to_have_count(1)
    menu("Gamma ideas", "Delete")
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(links.filter(has_text="Gamma ideas")).to_have_count(0)
    assert user.api.get(f"/api/conversations/{ids['Gamma ideas']}").status_code == 404
    # The open chat was the deleted one: the page is back to a new chat.
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("heading", name=re.compile("Hello"))).to_be_visible()


def test_errors_are_readable_and_typed_text_is_kept(
    page_as: Callable[..., Page], make_user: Callable[..., User]
) -> None:
    user = make_user()
    page = page_as(user)
    open_chat(page)

    # The provider fails mid-request: the question stays in the history, with a readable error.
    send(page, "Will this work? [mock-error:429]")
    failed = page.locator(".msg-error")
    expect(failed).to_contain_text("The answer failed: The model provider is rate limiting")
    expect(failed).to_contain_text("429")
    expect(page.locator(".msg.user .bubble")).to_have_text("Will this work? [mock-error:429]")
    expect(failed.get_by_role("button", name="Retry")).to_be_visible()
    expect(page.get_by_label("Message")).to_be_enabled()

    # A stream that breaks off half-way: the partial text is dropped, the reason shown.
    send(page, "Tell me a long story [mock-break]")
    expect(failed.last).to_contain_text("broke off before the answer was complete")
    expect(page.locator(".msg.assistant .msg-content").last).to_have_text("")

    # After a reload the unanswered question still says why, and offers a retry.
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    expect(page.locator(".msg.user")).to_have_count(2)
    expect(failed).to_have_count(1)
    expect(failed).to_contain_text("broke off before the answer was complete")
    expect(failed.get_by_role("button", name="Retry")).to_be_visible()

    # Rejected before it is stored (too long): the text goes back into the box.
    alert = page.locator("#chat-error")
    long_text = "x" * 32_001
    page.get_by_label("Message").fill(long_text)
    page.get_by_label("Message").press("Enter")
    expect(alert).to_be_visible()
    expect(page.get_by_label("Message")).to_have_value(long_text)
    expect(page.locator(".msg.user")).to_have_count(2)

    # A draft survives a reload.
    page.get_by_label("Message").fill("half-written thought")
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    expect(page.get_by_label("Message")).to_have_value("half-written thought")


def test_markdown_code_blocks_render_with_copy(
    page_as: Callable[..., Page], make_user: Callable[..., User], server: Server
) -> None:
    user = make_user()
    use_fake_provider(server, user)
    page = page_as(user)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    open_chat(page)
    send(page, "How do I reverse a list? [markdown]")
    wait_idle(page)
    answer = page.locator(".msg.assistant .msg-content").last
    expect(answer.get_by_role("heading", name="Reversing a list")).to_be_visible()
    expect(answer.locator("ol > li")).to_have_count(3)
    expect(answer.locator("strong")).to_have_text("Slicing")
    expect(answer.locator("table th")).to_have_text(["method", "copies"])
    block = answer.locator(".code-block")
    expect(block.locator(".code-lang")).to_have_text("python")
    expect(block.locator("pre code")).to_contain_text("def reverse(items):")
    block.get_by_role("button", name="Copy").click()
    expect(block.get_by_role("button", name="Copied")).to_be_visible()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("def reverse(items):\n    return items[::-1]")


def test_500_message_conversation_opens_at_the_end_and_pages_back(
    page_as: Callable[..., Page], make_user: Callable[..., User], server: Server
) -> None:
    user = make_user()
    # Answers from the fake provider's JSON path: instant, whatever MOCK_OPENAI_DELAY_MS says.
    use_fake_provider(server, user)
    conv = user.api.post("/api/conversations", json={"title": "Long history"}).json()["uuid"]
    for i in range(1, 251):
        r = user.api.post(f"/api/conversations/{conv}/messages", json={"content": f"Question {i}"})
        assert r.status_code == 201, r.text
    assert user.api.get(f"/api/conversations/{conv}/messages?limit=1").json()["count"] == 500

    page = page_as(user)
    open_chat(page, f"/?c={conv}")
    messages = page.locator("#thread .msg")
    expect(messages).to_have_count(50)
    expect(page.locator(".msg.user .bubble").last).to_have_text("Question 250")
    expect(page.locator(".msg.user .bubble").last).to_be_in_viewport()
    at_bottom = "el => el.scrollHeight - el.scrollTop - el.clientHeight < 4"
    assert page.locator("#messages").evaluate(at_bottom)

    seen = [50]
    for _ in range(12):
        if seen[-1] == 500:
            break
        page.locator("#messages").evaluate("el => { el.scrollTop = 0; }")
        expect(messages).not_to_have_count(seen[-1])
        seen.append(messages.count())
        # The view stays where the reader was instead of jumping to the oldest message.
        assert page.locator("#messages").evaluate("el => el.scrollTop") > 0
    assert seen == sorted(seen) and seen[-1] == 500, seen
    expect(page.locator(".older-status")).to_have_text("Beginning of the conversation")
    bubbles = page.locator(".msg.user .bubble").all_inner_texts()
    assert bubbles == [f"Question {i}" for i in range(1, 251)]
