"""Search page: highlighted snippets, archived hits marked, a hit opens its chat
scrolled to the message; hostile text stays inert."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from .accessibility import serious_violations
from .ui_helpers import DESKTOP, PHONE, User, open_chat, shot


def chat(user: User, title: str, *questions: str, archived: bool = False) -> str:
    r = user.api.post("/api/conversations", json={"title": title})
    assert r.status_code == 201, r.text
    uuid = r.json()["uuid"]
    for q in questions:
        r = user.api.post(f"/api/conversations/{uuid}/messages", json={"content": q})
        assert r.status_code == 201, r.text
    if archived:
        assert (
            user.api.patch(f"/api/conversations/{uuid}", json={"archived": True}).status_code == 200
        )
    return uuid


def test_search_highlights_marks_archived_and_opens_the_message(
    page_as: Callable[..., Page], make_user: Callable[..., User]
) -> None:
    user = make_user()
    other = make_user()
    chat(other, "Other people's soup", "tomato soup secrets of someone else")
    soup = chat(
        user,
        "Dinner plans",
        "How do I make a tomato soup?",
        *[f"filler question {i}" for i in range(26)],
    )
    chat(user, "Old recipes", "grandma's tomato soup <img src=x onerror=alert(1)>", archived=True)
    chat(user, "Tomato soup festival", "when is it?")

    page = page_as(user)
    open_chat(page)
    page.get_by_role("link", name="Search history").click()
    expect(page).to_have_url(re.compile(r"/search\.html$"))
    page.wait_for_selector("body[data-ready=true]")
    page.get_by_label("Search words").fill("tomato soup")
    page.get_by_role("button", name="Search", exact=True).click()
    results = page.get_by_role("list", name="Results")
    hits = results.locator(".hit")
    expect(page.locator("#search-meta")).to_contain_text("results for “tomato soup”")
    # Title hit first; never another user's data.
    expect(hits.first).to_have_attribute("data-kind", "title")
    expect(results).not_to_contain_text("someone else")
    expect(results.locator("mark").first).to_have_text(re.compile("tomato", re.I))
    archived_hit = hits.filter(has_text="Old recipes").filter(has_text="You wrote")
    expect(archived_hit.locator(".tag.archived")).to_have_text("Archived")
    # The hostile snippet is shown as text.
    expect(archived_hit).to_contain_text("<img src=x onerror=alert(1)>")
    assert page.locator(".hit img").count() == 0
    assert not page.dialogs  # type: ignore[attr-defined]
    shot(page, "search-desktop")

    # Without archived chats.
    page.get_by_label("Include archived chats").uncheck()
    expect(results).not_to_contain_text("Old recipes")
    expect(page).to_have_url(re.compile(r"archived=false"))
    page.get_by_label("Include archived chats").check()

    # Opening a message hit: the chat opens scrolled to that (older) message, highlighted.
    hits.filter(has_text="How do I make").first.click()
    expect(page).to_have_url(re.compile(rf"c={soup}"))
    page.wait_for_selector("body[data-ready=true]")
    found = page.locator(".msg.found")
    expect(found).to_have_count(1)
    expect(found).to_contain_text("How do I make a tomato soup?")
    expect(found).to_be_in_viewport()
    assert not page.js_errors  # type: ignore[attr-defined]


def test_search_errors_and_phone_layout(
    page_as: Callable[..., Page], make_user: Callable[..., User]
) -> None:
    user = make_user()
    chat(user, "Garden", "Which tomato variety grows best on a balcony?")
    page = page_as(user, viewport=PHONE, mobile=True)
    page.goto("/search.html?q=%21%21%21")
    page.wait_for_selector("body[data-ready=true]")
    expect(page.get_by_role("alert")).to_be_visible()
    page.get_by_label("Search words").fill("balcony tomato")
    page.get_by_label("Search words").press("Enter")
    # The question and the mock's answer, which repeats it.
    expect(page.locator(".hit")).to_have_count(2)
    expect(page.locator(".hit").first.locator("mark")).to_have_count(2)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "search-phone")


def _luminance(rgb: str) -> float:
    channels = [int(c) / 255 for c in re.findall(r"\d+(?:\.\d+)?", rgb)[:3]]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def test_highlights_meet_wcag_aa_contrast_in_light_and_dark(
    page_as: Callable[..., Page], make_user: Callable[..., User]
) -> None:
    user = make_user()
    chat(user, "Contrast", "the quokka smiles")
    for scheme in ("light", "dark"):
        page = page_as(user, color_scheme=scheme)
        page.goto("/search.html")
        page.wait_for_selector("body[data-ready=true]")
        page.get_by_label("Search words").fill("quokka")
        page.get_by_role("button", name="Search", exact=True).click()
        mark = page.get_by_role("list", name="Results").locator("mark").first
        expect(mark).to_have_text(re.compile("quokka", re.I))
        fg, bg = mark.evaluate(
            "m => [getComputedStyle(m).color, getComputedStyle(m).backgroundColor]"
        )
        lighter, darker = sorted((_luminance(fg), _luminance(bg)), reverse=True)
        ratio = (lighter + 0.05) / (darker + 0.05)
        assert ratio >= 4.5, (scheme, fg, bg, ratio)


@pytest.mark.parametrize(
    ("scheme", "viewport"),
    [("light", DESKTOP), ("dark", DESKTOP), ("light", PHONE), ("dark", PHONE)],
)
def test_search_results_pass_axe(
    page_as: Callable[..., Page],
    make_user: Callable[..., User],
    scheme: str,
    viewport: dict[str, int],
) -> None:
    user = make_user()
    chat(user, "Ticket 42 notes", "ticket 42 is open", "ticket 142 is closed")
    page = page_as(user, color_scheme=scheme, viewport=viewport, mobile=viewport is PHONE)
    page.goto("/search.html")
    page.wait_for_selector("body[data-ready=true]")
    page.get_by_label("Search words").fill("42")
    page.get_by_role("button", name="Search", exact=True).click()
    results = page.get_by_role("list", name="Results")
    expect(results.locator("mark").first).to_have_text("42")
    assert "142" not in results.inner_text()  # whole words and prefixes only
    assert serious_violations(page) == []
