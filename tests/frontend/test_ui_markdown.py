"""Markdown rendering details checked in the page: task lists as disabled checkboxes."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from .accessibility import serious_violations
from .ui_helpers import Server, User, open_chat, use_fake_provider

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


MATH = """async (text) => {
  const { renderMarkdown } = await import('/js/markdown.js');
  const box = document.createElement('div');
  box.className = 'markdown';
  document.body.append(box);
  renderMarkdown(box, text);
  return {
    inline: box.querySelectorAll('.math-inline .katex').length,
    display: box.querySelectorAll('.math-display .katex-display').length,
    mathml: [...box.querySelectorAll('annotation')].map((a) => a.textContent),
    code: [...box.querySelectorAll('code')].map((c) => c.textContent),
    text: box.textContent,
    errors: [...box.querySelectorAll('.math-error')].map((e) => e.textContent),
    links: box.querySelectorAll('a').length,
    scripts: box.querySelectorAll('script').length,
  };
}"""


def test_math_renders_with_katex_but_not_inside_code_or_prices(
    page_as: Callable[..., Page], make_user: Callable[..., User]
) -> None:
    page = page_as(make_user())
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    page.goto("/")
    page.wait_for_selector("body[data-ready=true]")
    text = (
        "Euler: $e^{i\\pi} + 1 = 0$ and it costs $5 or $10.\n\n"
        "$$\n\\int_0^1 x^2\\,dx = \\frac{1}{3}\n$$\n\n"
        "Inline code `$a+b$` and a block:\n\n```\n$$not math$$\n```\n\n"
        "Bad: $\\frac{1}{$ and a link attempt $\\href{javascript:alert(1)}{x}$"
    )
    out = page.evaluate(MATH, text)
    assert out["inline"] >= 1 and out["display"] == 1
    assert "e^{i\\pi} + 1 = 0" in out["mathml"]  # the MathML copy for screen readers
    assert "\\int_0^1 x^2\\,dx = \\frac{1}{3}" in out["mathml"]
    assert out["code"] == ["$a+b$", "$$not math$$\n"]  # code keeps its dollars
    assert "costs $5 or $10." in out["text"]  # prices are not math
    assert out["errors"] == ["\\frac{1}{"]  # a formula KaTeX cannot read is shown as written
    assert out["links"] == 0 and out["scripts"] == 0  # \\href is not trusted
    loaded = page.evaluate(
        "async () => (await document.fonts.load('16px KaTeX_Main')).length > 0"
        " && document.fonts.check('16px KaTeX_Main')"
    )
    assert loaded  # the vendored fonts are served and used
    assert refused == []  # KaTeX's styles are set through the CSSOM, which the CSP allows


def test_math_in_a_streamed_answer(
    page_as: Callable[..., Page], make_user: Callable[..., User], server: Server
) -> None:
    user = make_user()
    use_fake_provider(server, user)
    page = page_as(user)
    open_chat(page)
    box = page.get_by_label("Message")
    box.fill("[math] the area of a circle")
    box.press("Enter")
    answer = page.locator(".msg.assistant .msg-content").last
    expect(answer.locator(".math-display .katex-display")).to_have_count(1, timeout=15_000)
    expect(answer.locator(".math-inline .katex")).to_have_count(1)
    expect(answer).to_contain_text("Done.")
    page.reload()  # stored and drawn the same way from the history
    expect(page.locator(".msg.assistant .math-display .katex-display")).to_have_count(1)
    assert serious_violations(page) == []
