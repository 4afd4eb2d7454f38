"""axe-core (the copy bundled with axe-playwright-python) run in the page under test."""

from __future__ import annotations

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page

_axe = Axe()


def serious_violations(page: Page) -> list[str]:
    """Critical and serious axe-core violations, one readable line each (empty: clean)."""
    results = _axe.run(page)
    return [
        f"{v['impact']}: {v['id']} ({v['help']}) at "
        + ", ".join(str(n["target"]) for n in v["nodes"][:3])
        for v in results.response["violations"]
        if v["impact"] in ("critical", "serious")
    ]
