"""The API docs page renders in a browser that may reach only the app itself."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import BrowserContext, Route, expect

from .ui_helpers import Server


def test_swagger_ui_renders_with_every_other_origin_blocked(
    new_context: Callable[..., BrowserContext], server: Server
) -> None:
    context = new_context()
    elsewhere: list[str] = []

    def only_the_app(route: Route) -> None:
        if route.request.url.startswith(server.url + "/"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_app)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto("/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Open Chat")
    expect(page.locator(".opblock-summary-path", has_text="/api/health/ready")).to_be_visible()
    page.wait_for_timeout(300)  # anything Swagger UI fetches after rendering
    assert elsewhere == [] and errors == []
