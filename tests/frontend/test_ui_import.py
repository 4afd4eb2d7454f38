"""Settings › Your data: a ChatGPT export (.zip) imported in the background, its upload and
import progress shown, picked up again after a reload, and the outcome said in words."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from playwright.sync_api import Page, expect

from .accessibility import serious_violations
from .ui_helpers import REPO, Server, User, shot

CONVERSATIONS = 1_500


def _exports() -> ModuleType:
    """The ChatGPT export generator the backend tests use (a plain module beside them)."""
    path = REPO / "tests" / "backend" / "chatgpt_exports.py"
    spec = importlib.util.spec_from_file_location("chatgpt_exports", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _progress_values(page: Page, seconds: float) -> list[float]:
    """The progress bar's values seen while it is shown, for at most `seconds`."""
    seen: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and page.locator("#import-progress").is_visible():
        label = page.locator("#import-progress-label").text_content() or ""
        if label.startswith("Importing"):
            seen.append(float(page.locator("#import-bar").evaluate("(bar) => bar.value")))
        time.sleep(0.2)
    return seen


def test_a_chatgpt_zip_imported_from_settings_with_progress(
    page_as: Callable[..., Page], make_user: Callable[..., User], server: Server, tmp_path: Path
) -> None:
    exports = _exports()
    # Recent times: the chats are not idle (other tests of this server archive idle ones).
    start = time.time() - 3600
    exports.write_export(tmp_path / "conversations.json", CONVERSATIONS, start=start)
    archive = tmp_path / "chatgpt-export.zip"
    exports.write_zip(archive, tmp_path / "conversations.json")
    user = make_user()
    page = page_as(user)
    page.goto("/settings.html")
    page.wait_for_selector("body[data-ready=true]")
    page.get_by_label("Import a file").set_input_files(str(archive))
    page.get_by_role("button", name="Import", exact=True).click()
    label = page.locator("#import-progress-label")
    expect(label).to_contain_text("Importing chatgpt-export.zip", timeout=30_000)
    expect(page.get_by_role("button", name="Import", exact=True)).to_be_disabled()
    assert serious_violations(page) == []
    shot(page, "settings-import-progress")

    # The import runs on the server: a reload finds it again and keeps following it.
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    expect(label).to_contain_text("Importing chatgpt-export.zip", timeout=10_000)
    values = _progress_values(page, 120)
    assert len(values) >= 2 and values == sorted(values), values
    assert values[-1] > values[0], values  # the bar moved

    result = page.locator("#transfer-result")
    expect(result).to_contain_text(
        f"Imported {CONVERSATIONS:,} chats, skipped 0 already present (ChatGPT export)",
        timeout=120_000,
    )
    expect(result).to_contain_text("hidden system messages")
    expect(result).to_contain_text("tool calls and tool output")
    expect(result).not_to_contain_text("null")
    expect(page.locator("#import-progress")).to_be_hidden()
    assert not page.js_errors  # type: ignore[attr-defined]
    listed = user.api.get("/api/conversations?limit=1").json()["count"]
    archived = user.api.get("/api/conversations?limit=1&archived=true").json()["count"]
    assert listed + archived == CONVERSATIONS
    assert list((server.log.parent / "import-spool").glob("*.spool")) == []

    # The same file again: nothing added, and the page says so.
    page.get_by_label("Import a file").set_input_files(str(archive))
    page.get_by_role("button", name="Import", exact=True).click()
    expect(result).to_contain_text(
        f"Imported 0 chats, skipped {CONVERSATIONS:,} already present", timeout=120_000
    )


def test_a_file_that_is_not_an_export_is_refused_in_words(
    page_as: Callable[..., Page], make_user: Callable[..., User], tmp_path: Path
) -> None:
    page = page_as(make_user())
    page.goto("/settings.html")
    page.wait_for_selector("body[data-ready=true]")
    photo = tmp_path / "holiday.zip"
    photo.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    page.get_by_label("Import a file").set_input_files(str(photo))
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("The zip file cannot be read")
    expect(page.locator("#import-progress")).to_be_hidden()
    expect(page.get_by_role("button", name="Import", exact=True)).to_be_enabled()
