// Markdown rendering: marked turns text into HTML, DOMPurify removes anything active
// (scripts, event handlers, javascript: and other non-http(s) URLs, forms, iframes), and
// only then is the result put in the page. Code blocks get a language label and a copy
// button built with DOM calls, never from content.
import { Marked } from '../vendor/marked-18.2.1/marked.esm.js';
import DOMPurify from '../vendor/dompurify-3.4.18/purify.es.mjs';
import hljs from '../vendor/highlightjs-11.11.1/highlight.min.js';
import katex from '../vendor/katex-0.19.1/katex.mjs';
import { copyText, h, icon } from './common.js';

const marked = new Marked({ gfm: true, breaks: true, async: false });
// Task list items ("- [x] done"): inputs never pass the sanitizer, so marked writes a plain
// marker span and decorateTasks() puts a disabled checkbox, made with DOM calls, in its place.
marked.use({
  renderer: {
    checkbox({ checked }) {
      return `<span class="task-marker ${checked ? 'task-done' : 'task-open'}"></span> `;
    },
  },
});

// Math: `$…$` inline and `$$…$$` on their own lines (or inline) for display. marked only
// marks the TeX source (escaped text in a span or div, so it is sanitized like any text);
// decorateMath() renders it with KaTeX after sanitizing, into DOM nodes whose few styles are
// set through the CSSOM (allowed by the CSP, unlike style attributes). Code spans and blocks
// are tokenized before math, so `$x$` inside code stays code. A `$` before a digit or space
// does not open math ("$5 and $10"), and a closing `$` must follow a non-space.
const escapeHtml = (text) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

marked.use({
  extensions: [
    {
      name: 'mathBlock',
      level: 'block',
      start: (src) => src.match(/^ {0,3}\$\$/m)?.index,
      tokenizer(src) {
        const m = /^ {0,3}\$\$([\s\S]+?)\$\$ *(?:\n+|$)/.exec(src);
        if (m && m[1].trim()) return { type: 'mathBlock', raw: m[0], tex: m[1].trim() };
        return undefined;
      },
      renderer: (token) => `<div class="math-display">${escapeHtml(token.tex)}</div>\n`,
    },
    {
      name: 'mathInline',
      level: 'inline',
      start: (src) => src.indexOf('$') < 0 ? undefined : src.indexOf('$'),
      tokenizer(src) {
        const display = /^\$\$([^$]+?)\$\$/.exec(src);
        if (display && display[1].trim()) {
          return { type: 'mathInline', raw: display[0], tex: display[1].trim(), display: true };
        }
        const m = /^\$(?![\s\d$])((?:\\.|[^\\$\n])+?)(?<!\s)\$(?!\d)/.exec(src);
        if (m) return { type: 'mathInline', raw: m[0], tex: m[1], display: false };
        return undefined;
      },
      renderer: (token) =>
        token.display
          ? `<span class="math-display">${escapeHtml(token.tex)}</span>`
          : `<span class="math-inline">${escapeHtml(token.tex)}</span>`,
    },
  ],
});

const ALLOWED_URL = /^(?:https?:|mailto:|#|\/(?!\/))/i;

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.hasAttribute && node.hasAttribute('href')) {
    const href = node.getAttribute('href') || '';
    if (!ALLOWED_URL.test(href.trim())) {
      node.removeAttribute('href');
    } else if (node.tagName === 'A' && !href.startsWith('#')) {
      node.setAttribute('target', '_blank');
      node.setAttribute('rel', 'noopener noreferrer nofollow');
    }
  }
  if (node.tagName === 'IMG') {
    const src = node.getAttribute('src') || '';
    // Remote images would leak that a message was read; only same-origin and data: PNG/JPEG/GIF.
    if (!/^(?:\/(?!\/)|data:image\/(?:png|jpe?g|gif|webp);)/i.test(src)) node.removeAttribute('src');
    node.setAttribute('loading', 'lazy');
    node.setAttribute('referrerpolicy', 'no-referrer');
  }
});

const PURIFY = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ['style', 'form', 'input', 'button', 'textarea', 'select', 'option', 'iframe', 'object', 'embed', 'svg', 'math', 'link', 'meta', 'base'],
  FORBID_ATTR: ['style', 'srcset', 'action', 'formaction', 'xlink:href'],
  ALLOW_DATA_ATTR: false,
  RETURN_DOM_FRAGMENT: true,
};

export function sanitizeToFragment(html) {
  return DOMPurify.sanitize(html, PURIFY);
}

// Errors are thrown and shown here, as the source in a span styled by app.css: KaTeX's own
// error node carries a style attribute, which the CSP refuses.
const KATEX = { throwOnError: true, strict: 'ignore', trust: false, maxSize: 50, maxExpand: 500 };

function decorateMath(root) {
  for (const node of root.querySelectorAll('.math-inline, .math-display')) {
    if (node.closest('pre, code')) continue; // written as HTML inside code: left as text
    const tex = node.textContent;
    const displayMode = node.classList.contains('math-display');
    try {
      katex.render(tex, node, { ...KATEX, displayMode });
    } catch (e) {
      const reason = e instanceof katex.ParseError ? e.message : 'This formula could not be drawn';
      node.replaceChildren(h('span', { class: 'math-error', title: reason }, tex));
    }
  }
}

function decorateTasks(root) {
  for (const marker of root.querySelectorAll('span.task-marker')) {
    const box = h('input', { type: 'checkbox', class: 'task-box', disabled: true, tabindex: '-1' });
    box.checked = marker.classList.contains('task-done');
    box.setAttribute('aria-label', box.checked ? 'Done' : 'Not done');
    marker.closest('li')?.classList.add('task-item');
    marker.replaceWith(box);
  }
}

function decorateCode(root) {
  for (const pre of root.querySelectorAll('pre')) {
    if (pre.parentElement?.classList.contains('code-block')) continue;
    const code = pre.querySelector('code');
    const langClass = code ? [...code.classList].find((c) => c.startsWith('language-')) : null;
    const lang = langClass ? langClass.slice('language-'.length) : '';
    // Highlighted only when the block names a language highlight.js knows (no guessing):
    // it rewrites the (escaped) code text into spans with classes, no styles, no script.
    if (code && lang && hljs.getLanguage(lang)) hljs.highlightElement(code);
    const button = h(
      'button',
      { type: 'button', class: 'code-copy', title: 'Copy code' },
      icon('copy', 15),
      h('span', {}, 'Copy'),
    );
    button.addEventListener('click', async () => {
      const ok = await copyText((code || pre).textContent);
      const label = button.querySelector('span');
      label.textContent = ok ? 'Copied' : 'Copy failed';
      setTimeout(() => {
        label.textContent = 'Copy';
      }, 1500);
    });
    // A long line scrolls sideways: the block is focusable, so the keyboard can scroll it too.
    pre.setAttribute('tabindex', '0');
    pre.setAttribute('aria-label', `Code${lang ? ` (${lang})` : ''}`);
    const wrap = h('div', { class: 'code-block' }, h('div', { class: 'code-head' }, h('span', { class: 'code-lang' }, lang || 'text'), button));
    pre.replaceWith(wrap);
    wrap.append(pre);
  }
  for (const table of root.querySelectorAll('table')) {
    if (table.parentElement?.classList.contains('table-wrap')) continue;
    const wrap = h('div', { class: 'table-wrap' });
    table.replaceWith(wrap);
    wrap.append(table);
  }
}

// Renders markdown text into `target`, replacing its content. Safe for any input.
export function renderMarkdown(target, text) {
  let html;
  try {
    html = marked.parse(String(text ?? ''));
  } catch {
    target.textContent = String(text ?? '');
    return;
  }
  const frag = sanitizeToFragment(html);
  decorateCode(frag);
  decorateTasks(frag);
  decorateMath(frag);
  target.replaceChildren(frag);
}
