"""Markdown rendering details checked in the page: task lists as disabled checkboxes."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page

from .ui_helpers import User

RENDER = """async (text) => {
  const { renderMarkdown } = await import('/js/markdown.js');
  const box = document.createElement('div');
  document.body.append(box);
  renderMarkdown(box, text);
  return {
    boxes: [...box.querySelectorAll('input')].map((i) => [i.type, i.checked, i.disabled]),
    items: [...box.querySelectorAll('li.task-item')].map((li) => li.textContent.trim()),
    html: box.innerHTML,
  };
}"""


def test_task_lists_render_as_disabled_checkboxes(
    page_as: Callable[..., Page], make_user: Callable[..., User]
) -> None:
    page = page_as(make_user())
    page.goto("/settings.html")  # any page of the app: the module loads from the origin
    text = "- [x] write the tests\n- [ ] ship it\n- plain item\n\n<input type=text value=evil>"
    out = page.evaluate(RENDER, text)
    assert out["boxes"] == [["checkbox", True, True], ["checkbox", False, True]]
    assert out["items"] == ["write the tests", "ship it"]
    assert "evil" not in out["html"]  # raw inputs from the text are still removed
