"""Tools from an MCP server, end to end in the browser: the admin adds a real stdio server in
Admin › Tool servers, a user's question makes the model call its tool, the user edits the
arguments and approves in the chat, and the answer and the audit log show the call."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.backend.mcp.mcp_test_servers import oauth_tools_server

from .ui_helpers import User, open_chat

TOOLS_SERVER = Path(__file__).parents[1] / "backend" / "mcp" / "tools_server.py"


def test_admin_adds_a_stdio_server_and_a_user_approves_its_tool(
    page_as: Callable[..., Page], admin: User, make_user: Callable[..., User]
) -> None:
    page = page_as(admin)
    page.goto("/admin.html#mcp")
    page.wait_for_selector("body[data-ready=true]")
    section = page.locator("#mcp")
    entry = {
        "command": sys.executable,
        "args": [str(TOOLS_SERVER)],
        "env": {"TOOL_TOKEN": "t0p-secret"},
    }
    try:
        section.get_by_label("Name").fill("uitools")
        section.get_by_label("Server entry (as in an mcpServers file)").fill(json.dumps(entry))
        section.get_by_role("button", name="Test").click()
        expect(section.locator("#mcp-test-state")).to_contain_text("echo", timeout=40_000)
        section.get_by_role("button", name="Add server").click()
        server = section.locator(".mcp-server", has_text="uitools")
        expect(server.get_by_label("Policy for echo")).to_have_value("ask", timeout=40_000)
        expect(server.locator(".mcp-health")).to_contain_text("· connected")
        expect(server).to_contain_text("secrets: TOOL_TOKEN")
        assert "t0p-secret" not in page.content()

        member_user = make_user()
        member = page_as(member_user)
        open_chat(member)
        box = member.get_by_label("Message")
        box.fill('please use uitools__echo with {"text": "hello from the browser"}')
        box.press("Enter")
        card = member.get_by_role("group", name="Tool call waiting for approval: uitools__echo")
        expect(card).to_contain_text("echo (from uitools)", timeout=20_000)
        expect(card).to_contain_text("hello from the browser")
        card.get_by_role("button", name="Edit arguments").click()
        card.get_by_label("Arguments for uitools__echo").fill('{"text": "<b>edited</b> text"}')
        card.get_by_role("button", name="Approve").click()
        answer = member.locator(".msg.assistant").last
        expect(answer).to_contain_text("the uitools__echo tool returned", timeout=20_000)
        result = member.locator(".tool-card.status-succeeded").last
        expect(result).to_contain_text("echo (from uitools)")
        result.locator("summary").click()
        # The tool's output is shown as text, never parsed as HTML.
        expect(result.locator(".tool-detail")).to_contain_text("<b>edited</b> text")
        expect(result.locator("b")).to_have_count(0)

        audit = admin.api.get("/api/admin/tool-executions", params={"server": "uitools"}).json()
        [call] = audit["data"]
        assert call["user"] == member_user.username
        assert call["execution"]["arguments"] == {"text": "<b>edited</b> text"}
        assert call["execution"]["status"] == "succeeded"
        assert call["execution"]["approved_by"] == member_user.username
        # The admin reviews it on the usage page.
        page.goto("/usage.html")
        page.wait_for_selector("body[data-ready=true]")
        audit_row = page.locator("#tool-audit-body tr", has_text="uitools__echo")
        expect(audit_row).to_contain_text(member_user.username)
        expect(audit_row).to_contain_text("succeeded")
        expect(audit_row).to_contain_text("<b>edited</b> text")
        assert not member.js_errors  # type: ignore[attr-defined]
        assert not page.js_errors  # type: ignore[attr-defined]
    finally:
        admin.api.delete("/api/admin/mcp-servers/uitools")


def test_a_rejection_with_a_reason_is_told_to_the_assistant(
    page_as: Callable[..., Page], admin: User, make_user: Callable[..., User]
) -> None:
    entry = {"command": sys.executable, "args": [str(TOOLS_SERVER)]}
    created = admin.api.post("/api/admin/mcp-servers", json={"name": "uireject", "config": entry})
    assert created.status_code == 201, created.text
    try:
        deadline = time.monotonic() + 40
        while not admin.api.get("/api/admin/mcp-servers").json()["data"][0]["healthy"]:
            assert time.monotonic() < deadline, "the MCP server never connected"
            time.sleep(0.2)
        member = page_as(make_user())
        open_chat(member)
        box = member.get_by_label("Message")
        box.fill('use uireject__echo with {"text": "secret plans"}')
        box.press("Enter")
        card = member.get_by_role("group", name="Tool call waiting for approval: uireject__echo")
        expect(card).to_be_visible(timeout=40_000)
        card.get_by_label("Reason for rejecting").fill("do not send my plans anywhere")
        card.get_by_role("button", name="Reject").click()
        answer = member.locator(".msg.assistant").last
        expect(answer).to_contain_text("do not send my plans anywhere", timeout=20_000)
    finally:
        admin.api.delete("/api/admin/mcp-servers/uireject")


def test_admin_authorizes_an_oauth_server_in_the_browser(
    page_as: Callable[..., Page], admin: User, make_user: Callable[..., User]
) -> None:
    """The admin adds a server behind OAuth, clicks Authorize, passes its authorization
    server (which approves at once) and comes back to Open Chat, connected."""
    with oauth_tools_server(token_seconds=3600) as (url, _issuer):
        page = page_as(admin)
        page.goto("/admin.html#mcp")
        page.wait_for_selector("body[data-ready=true]")
        section = page.locator("#mcp")
        try:
            section.get_by_label("Name").fill("uioauth")
            entry = json.dumps({"url": url, "oauth": True})
            section.get_by_label("Server entry (as in an mcpServers file)").fill(entry)
            section.get_by_role("button", name="Add server").click()
            server = section.locator(".mcp-server", has_text="uioauth")
            expect(server.locator(".mcp-oauth")).to_contain_text("not authorized yet")
            server.get_by_role("button", name="Authorize: uioauth").click()
            # Off to the authorization server and back through Open Chat's callback.
            page.wait_for_url("**/admin.html#mcp", timeout=30_000)
            page.wait_for_selector("body[data-ready=true]")
            expect(page.locator("#toasts")).to_contain_text("uioauth is authorized")
            assert "oauth=" not in page.url
            server = page.locator("#mcp .mcp-server", has_text="uioauth")
            expect(server.locator(".mcp-oauth")).to_contain_text("OAuth: authorized")
            expect(server.locator(".mcp-health")).to_contain_text("· connected", timeout=30_000)
            expect(server.get_by_role("button", name="Authorize again: uioauth")).to_be_visible()
            listing = admin.api.get("/api/admin/mcp-servers").text
            assert "access_token" not in listing and "refresh_token" not in listing
            member = make_user()
            offered = member.api.get("/api/tools").json()["data"]
            assert "uioauth__echo" in {tool["name"] for tool in offered}
            assert not page.js_errors  # type: ignore[attr-defined]
        finally:
            admin.api.delete("/api/admin/mcp-servers/uioauth")
