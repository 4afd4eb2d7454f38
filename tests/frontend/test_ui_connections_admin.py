"""Admin › Connections: connect a provider, Test lists its models, pick which users may use,
and a user's answer then comes from it; the key is never shown again in full."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from .ui_helpers import Server, User, open_chat

KEY = "sk-connection-abcdefghijkl-7890"


def test_an_admin_connects_a_provider_and_users_get_its_model(
    page_as: Callable[..., Page], admin: User, make_user: Callable[..., User], server: Server
) -> None:
    page = page_as(admin)
    page.goto("/admin.html")
    page.wait_for_selector("body[data-ready=true]")
    section = page.locator("#connections")
    expect(section.locator("#server-connection")).to_contain_text("built-in offline model")
    try:
        section.get_by_label("Name").fill("Fake provider")
        section.get_by_label("Base URL").fill(server.provider.base_url)
        section.get_by_label("API key").fill(KEY)
        section.get_by_role("button", name="Test").click()
        expect(section.locator("#conn-test-state")).to_contain_text("2 models listed")
        section.get_by_label("fake-large").check()
        section.get_by_role("button", name="Save connection").click()
        item = section.locator(".connection", has_text="Fake provider")
        expect(item).to_contain_text("key …7890")
        expect(item).to_contain_text("fake-large")
        assert KEY not in page.content()
        page.reload()
        page.wait_for_selector("body[data-ready=true]")
        expect(section.locator(".connection", has_text="Fake provider")).to_contain_text("…7890")
        assert KEY not in page.content()

        # A user picks the connection's model; the answer comes from that provider.
        member = page_as(make_user())
        open_chat(member)
        expect(member.locator("#offline-hint")).to_be_visible()  # on the mock's model
        picker = member.get_by_label("Model")
        picker.select_option("fake-large")
        expect(member.locator("#offline-hint")).to_have_count(0)  # a real model now
        member.get_by_label("Message").fill("Who answers?")
        member.get_by_label("Message").press("Enter")
        answer = member.locator(".msg.assistant").last
        expect(answer).to_contain_text("A short answer from the fake provider.")
        expect(answer.locator(".meta")).to_contain_text("fake-large")
    finally:
        for connection in admin.api.get("/api/admin/connections").json()["data"]:
            admin.api.delete(f"/api/admin/connections/{connection['id']}")


def test_a_failing_test_shows_one_sentence(page_as: Callable[..., Page], admin: User) -> None:
    page = page_as(admin)
    page.goto("/admin.html")
    page.wait_for_selector("body[data-ready=true]")
    section = page.locator("#connections")
    section.get_by_label("Base URL").fill("http://127.0.0.1:9/v1")  # nothing listens there
    section.get_by_role("button", name="Test").click()
    expect(section.locator("#conn-error")).to_contain_text("could not be reached")
    assert admin.api.get("/api/admin/connections").json()["data"] == []


def test_the_empty_chat_says_when_the_offline_model_answers(
    page_as: Callable[..., Page], admin: User, make_user: Callable[..., User]
) -> None:
    member = page_as(make_user())
    open_chat(member)
    hint = member.locator("#offline-hint")
    expect(hint).to_contain_text("built-in offline model")
    expect(hint).to_contain_text("An administrator can connect a real one.")
    admin_page = page_as(admin)
    open_chat(admin_page)
    link = admin_page.locator("#offline-hint").get_by_role("link", name="Connect a real model")
    expect(link).to_have_attribute("href", "/admin.html#connections")
