"""Snapshots (take, restore in place, restore as new), export/import in Settings, archived
chats restorable, and the admin's archive-idle preview."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from .ui_helpers import PHONE, User, open_chat, shot


def send(page: Page, text: str) -> None:
    box = page.get_by_label("Message")
    box.fill(text)
    box.press("Enter")
    expect(page.get_by_role("button", name="Send")).to_be_visible(timeout=15_000)
    expect(page.locator(".msg.streaming")).to_have_count(0, timeout=15_000)


def test_snapshots_take_restore_and_restore_as_new(
    page_as: Callable[..., Page], make_user: Callable[..., User]
) -> None:
    user = make_user()
    page = page_as(user)
    open_chat(page)
    send(page, "first point")
    uuid = page.url.split("c=")[1]
    page.get_by_role("button", name="Snapshots and tools").click()
    dialog = page.get_by_role("dialog", name="This chat")
    dialog.get_by_role("button", name="Take snapshot").click()
    expect(dialog.get_by_role("status")).to_have_text("Give the snapshot a name.")
    dialog.get_by_label("Snapshot name").fill("before the detour")
    dialog.get_by_role("button", name="Take snapshot").click()
    expect(dialog.get_by_role("list", name="Snapshots")).to_contain_text("before the detour")
    expect(dialog.get_by_role("list", name="Snapshots")).to_contain_text("2 messages")
    dialog.get_by_role("button", name="Close").click()

    send(page, "a detour")
    expect(page.locator(".msg")).to_have_count(4)

    # Restore in place, from the sidebar's chat menu.
    page.locator(".conv-item.active").get_by_role("button", name="Chat options").click()
    page.get_by_role("menuitem", name="Snapshots and tools").click()
    dialog = page.get_by_role("dialog", name="This chat")
    shot(page, "snapshots-desktop")
    dialog.get_by_role("button", name="Restore before the detour", exact=True).click()
    page.get_by_role("dialog", name="Restore this snapshot?").get_by_role(
        "button", name="Restore"
    ).click()
    expect(page.locator(".msg")).to_have_count(2)
    expect(page.locator("#thread")).not_to_contain_text("a detour")
    assert user.api.get(f"/api/conversations/{uuid}/messages").json()["count"] == 2

    # Restore as a new chat: the page moves to it.
    page.get_by_role("button", name="Snapshots and tools").click()
    dialog = page.get_by_role("dialog", name="This chat")
    dialog.get_by_role("button", name="Restore before the detour as a new chat").click()
    page.get_by_role("button", name="Restore as new chat").click()
    expect(page).not_to_have_url(re.compile(uuid))
    expect(page.locator(".msg")).to_have_count(2)
    expect(page.locator("#chat-title")).to_contain_text("before the detour")
    assert not page.js_errors  # type: ignore[attr-defined]

    phone = page_as(user, viewport=PHONE, mobile=True)
    open_chat(phone, f"/?c={uuid}")
    phone.get_by_role("button", name="Snapshots and tools").click()
    expect(
        phone.get_by_role("dialog", name="This chat").get_by_role("list", name="Snapshots")
    ).to_contain_text("before the detour")
    shot(phone, "snapshots-phone")


def test_export_then_import_and_chatgpt_file(
    page_as: Callable[..., Page], make_user: Callable[..., User], tmp_path: Path
) -> None:
    user = make_user()
    r = user.api.post("/api/conversations", json={"title": "Exported chat"})
    user.api.post(f"/api/conversations/{r.json()['uuid']}/messages", json={"content": "keep me"})
    page = page_as(user)
    page.goto("/settings.html")
    page.wait_for_selector("body[data-ready=true]")
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download my chats").click()
    path = tmp_path / "export.json"
    dl.value.save_as(path)
    data = json.loads(path.read_text())
    assert data["format"] == "openchat-export"
    assert [c["title"] for c in data["conversations"]] == ["Exported chat"]
    expect(page.locator("#transfer-result")).to_contain_text("Downloaded openchat-")

    # Re-importing our own file: nothing duplicated.
    page.get_by_label("Import a file").set_input_files(str(path))
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.locator("#transfer-result")).to_contain_text(
        "Imported 0 chats, skipped 1 already present (Open Chat export)"
    )
    # Nothing imported, so no link: and no literal "null" in its place either.
    expect(page.locator("#transfer-result")).not_to_contain_text("null")

    chatgpt = [
        {
            "title": "From ChatGPT",
            "id": "abc-1",
            "current_node": "n2",
            "mapping": {
                "n1": {
                    "id": "n1",
                    "parent": None,
                    "children": ["n2"],
                    "message": {
                        "author": {"role": "user"},
                        "content": {"content_type": "text", "parts": ["hi from chatgpt"]},
                    },
                },
                "n2": {
                    "id": "n2",
                    "parent": "n1",
                    "children": [],
                    "message": {
                        "author": {"role": "assistant"},
                        "content": {"content_type": "text", "parts": ["hello back"]},
                    },
                },
            },
        }
    ]
    other = tmp_path / "conversations.json"
    other.write_text(json.dumps(chatgpt))
    page.get_by_label("Import a file").set_input_files(str(other))
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.locator("#transfer-result")).to_contain_text(
        "Imported 1 chat, skipped 0 already present (ChatGPT export)"
    )
    shot(page, "settings-data-desktop")

    bad = tmp_path / "bad.json"
    bad.write_text("not json")
    page.get_by_label("Import a file").set_input_files(str(bad))
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("neither ChatGPT's export")
    titles = [c["title"] for c in user.api.get("/api/conversations").json()["data"]]
    assert sorted(titles) == ["Exported chat", "From ChatGPT"]


def test_archived_chats_restorable_and_admin_archive_idle_preview(
    page_as: Callable[..., Page], make_user: Callable[..., User], admin: User
) -> None:
    user = make_user()
    r = user.api.post("/api/conversations", json={"title": "Old project"})
    user.api.patch(f"/api/conversations/{r.json()['uuid']}", json={"archived": True})
    page = page_as(user)
    open_chat(page)
    expect(page.locator("#conv-list")).not_to_contain_text("Old project")
    page.get_by_role("button", name="Show archived").click()
    item = page.locator(".conv-item", has_text="Old project")
    item.get_by_role("button", name="Chat options").click()
    page.get_by_role("menuitem", name="Unarchive").click()
    page.get_by_role("button", name="Show current chats").click()
    expect(page.locator("#conv-list")).to_contain_text("Old project")

    apage = page_as(admin)
    apage.goto("/admin.html")
    apage.wait_for_selector("body[data-ready=true]")
    section = apage.locator("#archive-idle")
    section.get_by_label("Idle for at least (days)").fill("0")
    section.get_by_role("button", name="Preview").click()
    expect(section.get_by_role("alert")).to_contain_text("whole number")
    section.get_by_label("Idle for at least (days)").fill("30")
    section.get_by_role("button", name="Preview").click()
    expect(section.locator("#archive-result")).to_contain_text(
        "0 chats idle for 30 days or more would be archived."
    )
    expect(section.get_by_role("button", name="Archive them")).to_be_disabled()
    section.scroll_into_view_if_needed()
    shot(apage, "admin-archive-desktop")
    assert not apage.js_errors  # type: ignore[attr-defined]
