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


HIGHLIGHT = """async (text) => {
  const { renderMarkdown } = await import('/js/markdown.js');
  const box = document.createElement('div');
  document.body.append(box);
  renderMarkdown(box, text);
  const code = box.querySelector('pre code');
  return {
    keywords: [...box.querySelectorAll('.hljs-keyword')].map((k) => k.textContent),
    text: code.textContent,
    styled: box.querySelectorAll('[style]').length,
    scripts: box.querySelectorAll('script').length,
  };
}"""


def test_code_blocks_are_highlighted_by_the_vendored_highlighter(
    page_as: Callable[..., Page], make_user: Callable[..., User]
) -> None:
    page = page_as(make_user())
    page.goto("/settings.html")
    source = "def f(x):\n    return '<script>alert(1)</script>' if x else None"
    out = page.evaluate(HIGHLIGHT, f"```python\n{source}\n```")
    assert "def" in out["keywords"] and "return" in out["keywords"]
    assert out["text"].rstrip("\n") == source  # the code reads as written; HTML stays text
    assert out["styled"] == 0 and out["scripts"] == 0
    plain = page.evaluate(HIGHLIGHT, "```\nplain text, no language\n```")
    assert plain["keywords"] == []
