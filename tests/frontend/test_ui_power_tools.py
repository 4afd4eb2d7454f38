"""Tool calls in the chat: automatic runs, approval with Approve / Reject, the log
after a reload, and the per-conversation tool settings."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from .ui_helpers import PHONE, User, open_chat, shot


def send(page: Page, text: str) -> None:
    box = page.get_by_label("Message")
    box.fill(text)
    box.press("Enter")


def wait_idle(page: Page) -> None:
    expect(page.get_by_role("button", name="Send")).to_be_visible(timeout=15_000)
    expect(page.locator(".msg.streaming")).to_have_count(0, timeout=15_000)


def new_chat_with_tools(page: Page, user: User, approval: bool) -> str:
    """Sends a first question, then sets the chat's approval mode in the dialog."""
    open_chat(page)
    send(page, "hello there")
    wait_idle(page)
    page.get_by_role("button", name="Snapshots and tools").click()
    dialog = page.get_by_role("dialog", name="This chat")
    tools_on = dialog.get_by_role("switch", name="Let the assistant use tools")
    ask = dialog.get_by_role("switch", name="Ask me before each tool call")
    expect(tools_on).to_be_checked()
    expect(ask).to_be_enabled()
    if approval:
        ask.check()
        expect(dialog.get_by_role("status")).to_have_text("Tool settings saved.")
    dialog.get_by_role("button", name="Close").click()
    uuid = page.url.split("c=")[1]
    assert user.api.get(f"/api/conversations/{uuid}").json()["tool_approval"] is approval
    return uuid


def test_tool_call_runs_automatically_and_shows_its_card(
    page_as: Callable[..., Page], make_user: Callable[..., User]
) -> None:
    user = make_user()
    page = page_as(user)
    new_chat_with_tools(page, user, approval=False)
    send(page, "calculate 2+3*4")
    wait_idle(page)
    card = page.locator(".tool-card").last
    expect(card).to_contain_text("calculator")
    expect(card).to_contain_text("2+3*4")
    expect(card).to_contain_text("Succeeded")
    expect(page.locator(".msg.assistant").last).to_contain_text("14")
    # Compact, expandable: the details open on click.
    card.locator("summary").click()
    expect(card.locator(".tool-detail")).to_contain_text("Ran automatically")
    expect(card.locator(".tool-detail")).to_contain_text("Result")
    assert not page.js_errors  # type: ignore[attr-defined]


def test_tool_approval_flow_approve_reject_and_reload(
    page_as: Callable[..., Page], make_user: Callable[..., User]
) -> None:
    user = make_user()
    page = page_as(user)
    uuid = new_chat_with_tools(page, user, approval=True)

    send(page, "calculate 2+3*4")
    pending = page.get_by_role("group", name="Tool call waiting for approval: calculator")
    expect(pending).to_be_visible()
    expect(pending).to_contain_text('"expression": "2+3*4"')
    wait_idle(page)
    expect(pending.get_by_role("button", name="Approve")).to_be_focused()
    shot(page, "chat-tool-approval-desktop")

    pending.get_by_role("button", name="Approve").click()
    wait_idle(page)
    done = page.locator(".tool-card.status-succeeded")
    expect(done).to_contain_text(f"Approved by {user.username}")
    expect(page.locator(".msg.assistant").last).to_contain_text("calculator tool returned 14")
    shot(page, "chat-tool-result-desktop")

    # Rejecting: the model answers without the tool.
    send(page, "calculate 7*6")
    pending = page.get_by_role("group", name="Tool call waiting for approval: calculator")
    pending.get_by_role("button", name="Reject").click()
    wait_idle(page)
    expect(page.locator(".tool-card.status-rejected")).to_contain_text(
        f"Rejected by {user.username}"
    )
    expect(page.locator(".tool-card.pending")).to_have_count(0)

    # A proposal left waiting survives a reload, with its buttons;
    # the log shows under each question.
    send(page, "calculate 1+1")
    expect(page.locator(".tool-card.pending")).to_have_count(1)
    wait_idle(page)
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    expect(page.locator(".tool-card")).to_have_count(3)
    expect(page.locator(".tool-card.status-succeeded")).to_contain_text("2+3*4")
    expect(page.locator(".tool-card.status-rejected")).to_contain_text("7*6")
    pending = page.get_by_role("group", name="Tool call waiting for approval: calculator")
    expect(pending).to_contain_text("1+1")
    expect(page.get_by_text("No answer was saved")).to_have_count(0)
    pending.get_by_role("button", name="Approve").click()
    wait_idle(page)
    expect(page.locator(".msg.assistant").last).to_contain_text("calculator tool returned 2")
    log = user.api.get(f"/api/conversations/{uuid}/tool-executions").json()["data"]
    assert [x["status"] for x in log] == ["succeeded", "rejected", "succeeded"]
    assert not page.js_errors  # type: ignore[attr-defined]


def test_tool_approval_on_a_phone(
    page_as: Callable[..., Page], make_user: Callable[..., User]
) -> None:
    user = make_user()
    page = page_as(user, viewport=PHONE, mobile=True)
    new_chat_with_tools(page, user, approval=True)
    send(page, "what time is it")
    pending = page.get_by_role("group", name="Tool call waiting for approval: current_datetime")
    expect(pending.get_by_role("button", name="Approve")).to_be_visible()
    wait_idle(page)
    shot(page, "chat-tool-approval-phone")
    pending.get_by_role("button", name="Approve").click()
    wait_idle(page)
    expect(page.locator(".tool-card.status-succeeded")).to_contain_text("current_datetime")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
