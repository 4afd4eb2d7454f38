"""Every page passes axe-core (0 critical, 0 serious): light and dark, desktop (1280x800) and
phone (390x844), signed out where a page is for signing in, as an admin elsewhere."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page

from .accessibility import serious_violations
from .ui_helpers import DESKTOP, PHONE, User, open_chat

SIGNED_OUT = ["/login.html", "/register.html"]
SIGNED_IN = ["/", "/settings.html", "/search.html?q=hello", "/usage.html", "/admin.html"]
LOOKS = [("light", DESKTOP), ("dark", DESKTOP), ("light", PHONE), ("dark", PHONE)]
LOOK_IDS = ["light-desktop", "dark-desktop", "light-phone", "dark-phone"]


@pytest.mark.parametrize(("scheme", "viewport"), LOOKS, ids=LOOK_IDS)
def test_every_page_has_no_serious_accessibility_violations(
    page_as: Callable[..., Page], admin: User, scheme: str, viewport: dict[str, int]
) -> None:
    look = {"color_scheme": scheme, "viewport": viewport, "mobile": viewport is PHONE}
    found: dict[str, list[str]] = {}
    signed_out = page_as(None, **look)
    for path in SIGNED_OUT:
        signed_out.goto(path)
        signed_out.wait_for_load_state("networkidle")
        found[path] = serious_violations(signed_out)
    page = page_as(admin, **look)
    for path in SIGNED_IN:
        open_chat(page, path)
        page.wait_for_load_state("networkidle")
        found[path] = serious_violations(page)
    assert {path: lines for path, lines in found.items() if lines} == {}
    assert page.js_errors == [] and signed_out.js_errors == []  # type: ignore[attr-defined]
