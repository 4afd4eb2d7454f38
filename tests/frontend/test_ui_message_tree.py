"""Editing, regenerating and branching in the browser: an edited question is a new branch with
its own answer, any answer can be written again with the old one kept, the ‹ 2/3 › arrows
switch versions and the branch shown survives a reload, ArrowUp edits the last question."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Locator, Page, expect

from .accessibility import serious_violations
from .ui_helpers import DESKTOP, PHONE, User, open_chat


def _send(page: Page, text: str) -> None:
    box = page.get_by_label("Message")
    box.fill(text)
    box.press("Enter")
    _wait_idle(page)


def _wait_idle(page: Page) -> None:
    expect(page.get_by_role("button", name="Send")).to_be_visible(timeout=15_000)
    expect(page.locator(".msg.streaming")).to_have_count(0, timeout=15_000)


def _chat_of_two(page: Page) -> None:
    open_chat(page)
    _send(page, "Plan a weekend in Porto")
    _send(page, "What about food?")
    expect(page.locator("#thread .msg")).to_have_count(4)


def _count(message: Locator) -> Locator:
    return message.locator(".version-count")


def _branch(user: User, conversation: str) -> list[str]:
    response = user.api.get(f"/api/conversations/{conversation}/messages")
    return [m["content"] for m in response.json()["data"]]


def _conversation(page: Page) -> str:
    return page.url.split("c=")[1]


def test_editing_a_question_makes_a_branch_and_the_arrows_survive_a_reload(
    page_as: Callable[..., Page], make_user: Callable[..., User]
) -> None:
    user = make_user()
    page = page_as(user)
    _chat_of_two(page)
    second = page.locator(".msg.user").last
    second.get_by_role("button", name="Edit question").click()
    editor = page.get_by_role("textbox", name="Edited question")
    expect(editor).to_be_focused()
    expect(editor).to_have_value("What about food?")
    editor.fill("What about museums?")
    editor.press("Enter")
    _wait_idle(page)

    messages = page.locator("#thread .msg")
    expect(messages).to_have_count(4)
    question, answer = page.locator(".msg.user").last, page.locator(".msg.assistant").last
    expect(question.locator(".bubble")).to_have_text("What about museums?")
    # The built-in model numbers the questions it was shown: the old branch is not among them.
    expect(answer.locator(".msg-content")).to_contain_text("Mock answer #2")
    expect(answer.locator(".msg-content")).to_contain_text("museums")
    expect(_count(question)).to_have_text("2/2")
    expect(question.get_by_role("group", name="Version 2 of 2")).to_be_visible()

    question.get_by_role("button", name="Previous version").click()
    expect(page.locator(".msg.user").last.locator(".bubble")).to_have_text("What about food?")
    expect(_count(page.locator(".msg.user").last)).to_have_text("1/2")
    expect(page.locator(".msg.assistant").last.locator(".msg-content")).to_contain_text("food")
    next_version = page.locator(".msg.user").last.get_by_role("button", name="Next version")
    expect(next_version).to_be_focused()

    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    expect(page.locator(".msg.user").last.locator(".bubble")).to_have_text("What about food?")
    expect(_count(page.locator(".msg.user").last)).to_have_text("1/2")
    conversation = _conversation(page)
    assert _branch(user, conversation)[2] == "What about food?"

    page.locator(".msg.user").last.get_by_role("button", name="Next version").click()
    expect(page.locator(".msg.user").last.locator(".bubble")).to_have_text("What about museums?")
    assert _branch(user, conversation)[2] == "What about museums?"
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_regenerating_an_older_answer_keeps_the_old_one_as_a_version(
    page_as: Callable[..., Page], make_user: Callable[..., User]
) -> None:
    user = make_user()
    page = page_as(user)
    _chat_of_two(page)
    first_answer = page.locator(".msg.assistant").first
    first_id = first_answer.get_attribute("data-id")
    expect(page.get_by_role("button", name="Regenerate")).to_have_count(2)  # on every answer
    first_answer.get_by_role("button", name="Regenerate").click()
    _wait_idle(page)

    # The new version ends the branch: what followed the old answer stays with the old one.
    expect(page.locator("#thread .msg")).to_have_count(2)
    new_answer = page.locator(".msg.assistant").first
    expect(_count(new_answer)).to_have_text("2/2")
    assert new_answer.get_attribute("data-id") != first_id

    new_answer.get_by_role("button", name="Previous version").click()
    expect(page.locator("#thread .msg")).to_have_count(4)
    expect(page.locator(".msg.assistant").first).to_have_attribute("data-id", first_id or "")
    expect(_count(page.locator(".msg.assistant").first)).to_have_text("1/2")
    expect(page.locator(".msg.user").last.locator(".bubble")).to_have_text("What about food?")

    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    expect(page.locator("#thread .msg")).to_have_count(4)
    expect(_count(page.locator(".msg.assistant").first)).to_have_text("1/2")
    stored = user.api.get(f"/api/conversations/{_conversation(page)}/messages").json()
    assert stored["data"][1]["uuid"] == first_id and len(stored["data"][1]["versions"]) == 2
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_arrow_up_in_an_empty_box_edits_the_last_question(
    page_as: Callable[..., Page], make_user: Callable[..., User]
) -> None:
    user = make_user()
    page = page_as(user)
    open_chat(page)
    _send(page, "Name three rivers")
    box = page.get_by_label("Message")
    box.fill("draft")
    box.press("ArrowUp")  # not empty: an ordinary key
    expect(page.get_by_role("textbox", name="Edited question")).to_have_count(0)
    box.fill("")
    box.press("ArrowUp")
    editor = page.get_by_role("textbox", name="Edited question")
    expect(editor).to_be_focused()
    expect(editor).to_have_value("Name three rivers")
    editor.press("Escape")  # cancels the edit, and nothing else
    expect(editor).to_have_count(0)
    expect(box).to_be_focused()
    expect(page.locator(".msg.user .bubble")).to_have_text("Name three rivers")

    box.press("ArrowUp")
    editor = page.get_by_role("textbox", name="Edited question")
    editor.fill("Name three lakes")
    editor.press("Enter")
    _wait_idle(page)
    expect(page.locator(".msg.user .bubble")).to_have_text("Name three lakes")
    expect(_count(page.locator(".msg.user"))).to_have_text("2/2")
    expect(page.locator(".msg.assistant .msg-content")).to_contain_text("lakes")
    assert page.js_errors == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("scheme", "viewport"),
    [("light", DESKTOP), ("dark", DESKTOP), ("light", PHONE), ("dark", PHONE)],
    ids=["light-desktop", "dark-desktop", "light-phone", "dark-phone"],
)
def test_versions_and_the_editor_have_no_serious_accessibility_violations(
    page_as: Callable[..., Page],
    make_user: Callable[..., User],
    scheme: str,
    viewport: dict[str, int],
) -> None:
    user = make_user()
    page = page_as(user, color_scheme=scheme, viewport=viewport, mobile=viewport is PHONE)
    open_chat(page)
    _send(page, "Suggest a book")
    page.locator(".msg.assistant").get_by_role("button", name="Regenerate").click()
    _wait_idle(page)
    page.locator(".msg.user").get_by_role("button", name="Edit question").click()
    page.get_by_role("textbox", name="Edited question").fill("Suggest a film")
    page.get_by_role("textbox", name="Edited question").press("Enter")
    _wait_idle(page)
    expect(_count(page.locator(".msg.user"))).to_have_text("2/2")
    assert serious_violations(page) == []  # arrows on a question
    page.locator(".msg.user").get_by_role("button", name="Previous version").click()
    expect(_count(page.locator(".msg.assistant"))).to_have_text("2/2")
    assert serious_violations(page) == []  # arrows on an answer
    page.locator(".msg.user").get_by_role("button", name="Edit question").click()
    expect(page.get_by_role("textbox", name="Edited question")).to_be_visible()
    assert serious_violations(page) == []  # the editor open


def test_a_search_hit_on_another_branch_opens_that_branch(
    page_as: Callable[..., Page], make_user: Callable[..., User]
) -> None:
    user = make_user()
    conversation = user.api.post("/api/conversations", json={}).json()["uuid"]
    url = f"/api/conversations/{conversation}/messages"
    user.api.post(url, json={"content": "Plan a weekend in Porto"})
    old = user.api.post(url, json={"content": "What about food?"}).json()["user_message"]
    edit = {"content": "What about museums?", "edit_of": old["uuid"]}
    assert user.api.post(url, json=edit).status_code == 201
    assert _branch(user, conversation)[2] == "What about museums?"

    page = page_as(user)
    open_chat(page, f"/?c={conversation}&m={old['uuid']}")
    found = page.locator(f'.msg[data-id="{old["uuid"]}"]')
    expect(found).to_be_focused()
    expect(found.locator(".bubble")).to_have_text("What about food?")
    expect(_count(found)).to_have_text("1/2")
    assert _branch(user, conversation)[2] == "What about food?"  # remembered, as with the arrows
    assert page.js_errors == []  # type: ignore[attr-defined]
