"""Hostile content in questions, answers and titles is shown inert."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from .ui_helpers import Server, User, open_chat, use_fake_provider

PAYLOADS = [
    "<script>alert('script')</script>",
    "<img src=x onerror=alert('img')>",
    "[x](javascript:alert('link'))",
]

INERT_CHECK = """() => ({
  xss: window.__xss ?? null,
  scripts: document.querySelectorAll('#thread script, #conv-list script').length,
  handlers: [...document.querySelectorAll('#thread *, #conv-list *, #chat-title *')]
    .flatMap(el => [...el.attributes].map(a => a.name))
    .filter(name => name.startsWith('on')).length,
  jsLinks: [...document.querySelectorAll('[href], [src], [action], [formaction]')]
    .map(el => el.getAttribute('href') || el.getAttribute('src') || el.getAttribute('action')
      || el.getAttribute('formaction') || '')
    .filter(v => /^\\s*(javascript|vbscript|data:text)/i.test(v)).length,
  frames: document.querySelectorAll('#thread iframe, #thread object, #thread embed').length,
  contentSvg: document.querySelectorAll('.msg-content svg:not(.icon)').length,
})"""


def assert_inert(page: Page) -> None:
    page.wait_for_timeout(300)  # give any injected handler (image error, etc.) time to fire
    state = page.evaluate(INERT_CHECK)
    assert state == {
        "xss": None,
        "scripts": 0,
        "handlers": 0,
        "jsLinks": 0,
        "frames": 0,
        "contentSvg": 0,
    }, state
    assert page.dialogs == [], page.dialogs  # type: ignore[attr-defined]


def test_payloads_in_questions_answers_and_titles_stay_inert(
    page_as: Callable[..., Page], make_user: Callable[..., User]
) -> None:
    user = make_user()
    page = page_as(user)
    open_chat(page)
    box = page.get_by_label("Message")
    for payload in PAYLOADS:
        box.fill(payload)
        box.press("Enter")
        expect(page.get_by_role("button", name="Send")).to_be_visible()
        expect(page.locator(".msg.streaming")).to_have_count(0)
    # Questions are shown as the text that was typed.
    expect(page.locator(".msg.user .bubble")).to_have_text(PAYLOADS)
    # The mock echoes each question inside its answer, so the answers carry them too.
    answers = page.locator(".msg.assistant .msg-content")
    expect(answers).to_have_count(3)
    expect(answers.nth(2).locator("a[href]")).to_have_count(0)
    # The first question became the title.
    expect(page.locator("#chat-title")).to_have_text(PAYLOADS[0])
    expect(page.locator(".conv-item.active .conv-link")).to_have_text(PAYLOADS[0])
    assert_inert(page)

    # The same history rendered from the server on a fresh load.
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    expect(page.locator(".msg")).to_have_count(6)
    assert_inert(page)


def test_hostile_markdown_answer_is_sanitized(
    page_as: Callable[..., Page], make_user: Callable[..., User], server: Server
) -> None:
    user = make_user()
    use_fake_provider(server, user)
    page = page_as(user)
    open_chat(page)
    page.get_by_label("Message").fill("Show me the payloads [xss]")
    page.get_by_label("Message").press("Enter")
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    expect(page.locator(".msg.streaming")).to_have_count(0)
    answer = page.locator(".msg.assistant .msg-content").last
    expect(answer).to_contain_text("Done.")
    expect(answer).to_contain_text("click me")
    # The link text stays, the javascript: target does not.
    link = answer.locator("a", has_text="click me")
    assert link.count() == 0 or link.get_attribute("href") is None
    expect(answer.locator("img")).to_have_count(1)
    assert answer.locator("img").get_attribute("onerror") is None
    assert_inert(page)
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    expect(page.locator(".msg.assistant .msg-content").last).to_contain_text("Done.")
    assert_inert(page)
