// Search page: the user's own messages and chat titles, ranked by the server, with the
// matched words highlighted. Snippets are plain text from the API; highlights are applied
// with text nodes and <mark> elements (no HTML from the server is ever inserted).
import * as api from './api.js';
import { $, h, icon, parseDate, requireUser, setFormError } from './common.js';

const PAGE = 20;
const form = $('#search-form');
const input = $('#q');
const archived = $('#include-archived');
const meta = $('#search-meta');
const list = $('#hits');
const errorBox = $('#search-error');
let offset = 0;
let token = 0;

// Splits `text` at the [start, end) ranges into text nodes and <mark>s.
export function highlighted(text, ranges) {
  const out = [];
  let at = 0;
  const sorted = [...(ranges || [])]
    .filter((r) => Array.isArray(r) && r.length === 2 && r[0] < r[1])
    .sort((a, b) => a[0] - b[0]);
  for (const [s, e] of sorted) {
    const start = Math.max(at, Math.min(s, text.length));
    const end = Math.min(e, text.length);
    if (end <= start) continue;
    if (start > at) out.push(text.slice(at, start));
    out.push(h('mark', {}, text.slice(start, end)));
    at = end;
  }
  if (at < text.length) out.push(text.slice(at));
  return out;
}

function hitHref(hit) {
  const q = new URLSearchParams({ c: hit.conversationId });
  if (hit.messageId) q.set('m', hit.messageId);
  return `/?${q}`;
}

function hitItem(hit) {
  const title = hit.conversationTitle || 'Untitled chat';
  const d = parseDate(hit.createdAt);
  const where = hit.kind === 'title' ? 'Chat title' : hit.role === 'user' ? 'You wrote' : 'Assistant answered';
  return h(
    'li',
    { class: 'hit', dataset: { kind: hit.kind } },
    h(
      'a',
      { class: 'hit-link', href: hitHref(hit) },
      h(
        'div',
        { class: 'hit-head' },
        h('span', { class: 'hit-title' }, hit.kind === 'title' ? highlighted(hit.snippet || title, hit.highlights) : title),
        hit.archived ? h('span', { class: 'tag archived' }, 'Archived') : null,
        h('span', { class: 'tag' }, where),
      ),
      hit.kind === 'message' ? h('p', { class: 'hit-snippet' }, highlighted(hit.snippet, hit.highlights)) : null,
      d ? h('div', { class: 'hit-foot' }, d.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' })) : null,
    ),
  );
}

async function run({ push = true } = {}) {
  const q = input.value.trim();
  setFormError(errorBox, '');
  if (push) {
    const params = new URLSearchParams();
    if (q) params.set('q', q);
    if (!archived.checked) params.set('archived', 'false');
    if (offset) params.set('offset', String(offset));
    history.replaceState({}, '', `/search.html${params.toString() ? `?${params}` : ''}`);
  }
  if (!q) {
    list.replaceChildren();
    meta.textContent = '';
    $('#pager').hidden = true;
    return;
  }
  const mine = ++token;
  meta.textContent = 'Searching…';
  list.setAttribute('aria-busy', 'true');
  try {
    const res = await api.search({ q, limit: PAGE, offset, includeArchived: archived.checked });
    if (mine !== token) return;
    list.replaceChildren(...res.hits.map(hitItem));
    const n = res.count;
    const took = res.tookMs !== null ? ` in ${Math.round(res.tookMs)} ms` : '';
    meta.textContent = n
      ? `${n} result${n === 1 ? '' : 's'} for “${res.query}”${took}`
      : `No results for “${res.query}”.`;
    const pager = $('#pager');
    pager.hidden = n <= PAGE;
    $('#prev').disabled = offset === 0;
    $('#next').disabled = offset + PAGE >= n || offset + PAGE > 1000;
    $('#page-info').textContent = `${offset + 1}–${Math.min(offset + PAGE, n)} of ${n}`;
  } catch (e) {
    if (mine !== token) return;
    list.replaceChildren();
    meta.textContent = '';
    setFormError(errorBox, e.message);
  } finally {
    if (mine === token) list.removeAttribute('aria-busy');
  }
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  offset = 0;
  run();
});
archived.addEventListener('change', () => {
  offset = 0;
  run();
});
$('#prev').addEventListener('click', () => {
  offset = Math.max(0, offset - PAGE);
  run();
  input.focus();
});
$('#next').addEventListener('click', () => {
  offset += PAGE;
  run();
  input.focus();
});

async function main() {
  $('#back').prepend(icon('back', 18));
  await requireUser();
  const params = new URLSearchParams(window.location.search);
  input.value = params.get('q') || '';
  archived.checked = params.get('archived') !== 'false';
  offset = Math.max(0, Number(params.get('offset')) || 0);
  if (input.value) await run({ push: false });
  input.focus();
  document.body.dataset.ready = 'true';
}

main().catch(() => {});
