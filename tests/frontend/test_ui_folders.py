"""Folders in the sidebar: create, move chats in, filter, rename, delete; axe-clean."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from .accessibility import serious_violations
from .ui_helpers import DESKTOP, PHONE, User, open_chat


def _chats(user: User, *titles: str) -> None:
    for title in titles:
        r = user.api.post("/api/conversations", json={"title": title})
        assert r.status_code == 201, r.text


def _move(page: Page, title: str, *, folder: str | None = None, new: str | None = None) -> None:
    row = page.locator(".conv-item", has_text=title)
    row.get_by_role("button", name="Chat options").click()
    page.get_by_role("menuitem", name="Move to folder").click()
    dialog = page.get_by_role("dialog")
    if folder is not None:
        dialog.get_by_label("Folder", exact=True).select_option(label=folder)
    if new is not None:
        dialog.get_by_label("Or a new folder named").fill(new)
    dialog.get_by_role("button", name="Move").click()
    expect(dialog).to_have_count(0)


def test_folders_organise_and_filter_the_sidebar(
    page_as: Callable[..., Page], make_user: Callable[..., User]
) -> None:
    user = make_user()
    _chats(user, "Tax return", "Birthday ideas", "Quarterly plan")
    page = page_as(user)
    open_chat(page)
    links = page.locator(".conv-link")
    expect(links).to_have_count(3)

    page.get_by_role("button", name="Manage folders").click()
    dialog = page.get_by_role("dialog", name="Folders")
    expect(dialog.get_by_text("No folders yet.")).to_be_visible()
    dialog.get_by_label("New folder name").fill("Work")
    dialog.get_by_role("button", name="Create").click()
    expect(dialog.get_by_label("Name of the folder Work")).to_have_value("Work")
    dialog.get_by_label("New folder name").fill("Work")
    dialog.get_by_role("button", name="Create").click()
    expect(dialog.get_by_role("alert")).to_contain_text("already have a folder named")
    dialog.get_by_role("button", name="Close").click()
    expect(page.get_by_role("button", name="Manage folders")).to_be_focused()

    _move(page, "Quarterly plan", folder="Work")
    expect(page.locator(".toast", has_text="Moved to Work")).to_be_visible()
    _move(page, "Birthday ideas", new="Family")
    filter_ = page.get_by_role("complementary", name="Chats").get_by_label("Folder", exact=True)
    expect(filter_.locator("option")).to_have_text(["All chats", "Family (1)", "Work (1)"])
    expect(links).to_have_count(3)  # "All chats" still lists every chat, in place
    expect(links).to_have_text(["Quarterly plan", "Birthday ideas", "Tax return"])

    filter_.select_option(label="Work (1)")
    expect(links).to_have_text(["Quarterly plan"])
    _move(page, "Quarterly plan", folder="No folder")  # leaves the folder shown
    expect(page.locator(".conv-empty")).to_contain_text("No chats in this folder yet")
    filter_.select_option(label="Family (1)")
    expect(links).to_have_text(["Birthday ideas"])
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    expect(filter_.locator("option")).to_have_text(["All chats", "Family (1)", "Work (0)"])

    page.get_by_role("button", name="Manage folders").click()
    dialog = page.get_by_role("dialog", name="Folders")
    dialog.get_by_label("Name of the folder Family").fill("Home")
    dialog.get_by_label("Name of the folder Family").press("Enter")
    expect(dialog.get_by_label("Name of the folder Home")).to_be_visible()
    dialog.get_by_role("button", name="Delete the folder Home").click()
    expect(page.locator(".toast", has_text="Folder deleted; its chat is kept")).to_be_visible()
    expect(dialog.get_by_label("Name of the folder Home")).to_have_count(0)
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(filter_.locator("option")).to_have_text(["All chats", "Work (0)"])
    filter_.select_option(label="All chats")
    expect(links).to_have_count(3)


@pytest.mark.parametrize(
    ("scheme", "viewport"),
    [("light", DESKTOP), ("dark", DESKTOP), ("light", PHONE), ("dark", PHONE)],
)
def test_the_folder_controls_pass_axe(
    page_as: Callable[..., Page],
    make_user: Callable[..., User],
    scheme: str,
    viewport: dict[str, int],
) -> None:
    user = make_user()
    _chats(user, "A chat to file")
    r = user.api.post("/api/folders", json={"name": "Reading"})
    assert r.status_code == 201, r.text
    page = page_as(user, color_scheme=scheme, viewport=viewport, mobile=viewport is PHONE)
    open_chat(page)
    if viewport is PHONE:
        page.get_by_role("button", name="Open sidebar").click()
    assert serious_violations(page) == []
    page.get_by_role("button", name="Manage folders").click()
    expect(page.get_by_role("dialog", name="Folders").get_by_role("listitem")).to_have_count(1)
    assert serious_violations(page) == []
    page.keyboard.press("Escape")
    page.locator(".conv-item").first.get_by_role("button", name="Chat options").click()
    page.get_by_role("menuitem", name="Move to folder").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    assert serious_violations(page) == []
