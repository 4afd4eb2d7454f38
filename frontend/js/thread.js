// The thread: the messages of the branch shown, as nodes (questions, answers, an answer being
// written), and paging back through a long branch. Its state is what is on screen; what the
// buttons of a message do is the page's (`configure`).
import * as api from './api.js';
import { $, copyText, formatDuration, h, icon, parseDate, toast } from './common.js';
import { renderMarkdown } from './markdown.js';
import { versionNav } from './versions.js';

const el = { thread: $('#thread'), messages: $('#messages'), jump: $('#jump') };

// The loaded messages of the branch, oldest first; the server offset of the first of them.
export const state = { messages: [], oldestOffset: 0, total: null, olderBuffer: null, loadingOlder: false };

const hooks = {
  busy: () => false, // an answer is being written or watched
  temporary: () => false, // a temporary chat: nothing stored, so nothing to edit or regenerate
  conversationId: () => null,
  token: () => 0, // changes when another chat is opened
  regenerate: () => {},
  edit: () => {},
  switchVersion: async () => {},
};

export function configure(given) {
  Object.assign(hooks, given);
}

const PAGE = 50;
const STOPPED_NOTE = 'Stopped. What was written so far is saved.';

export function metaText(meta) {
  if (!meta) return '';
  const parts = [];
  if (meta.model) parts.push(meta.model);
  const p = meta.promptTokens;
  const c = meta.completionTokens;
  if (p !== null && p !== undefined && c !== null && c !== undefined) {
    parts.push(`${p} in · ${c} out tokens`);
  } else if (meta.totalTokens !== null && meta.totalTokens !== undefined) {
    parts.push(`${meta.totalTokens} tokens`);
  }
  const t = formatDuration(meta.timeMs);
  if (t) parts.push(t);
  return parts.join(' · ');
}

export function userNode(m) {
  const node = h(
    'article',
    { class: 'msg user', dataset: { id: m.id || '' } },
    h('div', { class: 'bubble' }, m.content),
    h('div', { class: 'msg-foot' }),
  );
  node._message = { role: 'user', versions: [], ...m };
  fillUserFoot(node);
  return node;
}

// A question's versions and its Edit button (a stored question only).
export function fillUserFoot(node) {
  const m = node._message;
  const edit = h('button', { type: 'button', class: 'icon-btn edit-q', 'aria-label': 'Edit question', title: 'Edit question' }, icon('edit', 16));
  edit.addEventListener('click', () => hooks.edit(node, edit));
  edit.hidden = hooks.temporary() || !m.id || hooks.busy();
  const nav = m.id ? versionNav(m, hooks.switchVersion) : null;
  node.querySelector('.msg-foot').replaceChildren(...[nav, edit].filter(Boolean));
}

// The server confirmed a question (the `start` or `done` event): it is stored, with its id.
export function adoptUser(node, user) {
  if (!user?.id) return;
  node.dataset.id = user.id;
  node._message = { ...node._message, ...user };
  fillUserFoot(node);
}

export function assistantNode(m) {
  const content = h('div', { class: 'msg-content markdown' });
  renderMarkdown(content, m.content);
  const node = h(
    'article',
    { class: 'msg assistant', dataset: { id: m.id || '' } },
    h('div', { class: 'avatar', 'aria-hidden': 'true' }, 'AI'),
    h('div', { class: 'msg-body' }, content, h('div', { class: 'msg-foot' })),
  );
  node._message = m;
  fillFoot(node, m);
  if (m.stopped) node.querySelector('.msg-body').append(stoppedNote());
  return node;
}

export function fillFoot(node, m) {
  const foot = node.querySelector('.msg-foot');
  const copyBtn = h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Copy answer', title: 'Copy answer' }, icon('copy', 16));
  copyBtn.addEventListener('click', async () => {
    const ok = await copyText(node._message?.content ?? '');
    toast(ok ? 'Copied' : 'Copy failed', ok ? 'info' : 'error', 1500);
  });
  const regen = h('button', { type: 'button', class: 'icon-btn regen', 'aria-label': 'Regenerate', title: 'Regenerate' }, icon('refresh', 16));
  regen.addEventListener('click', () => hooks.regenerate(node));
  const meta = metaText(m.meta);
  const when = parseDate(m.createdAt);
  const stamp = when
    ? h(
        'time',
        { class: 'stamp', datetime: when.toISOString(), title: when.toLocaleString() },
        when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }),
      )
    : null;
  // replaceChildren() would write a missing part as the text "null": keep only real nodes.
  const nav = m.id ? versionNav(m, hooks.switchVersion) : null;
  foot.replaceChildren(...[nav, copyBtn, regen, meta ? h('span', { class: 'meta' }, meta) : null, stamp].filter(Boolean));
  refreshActions();
}

// Every stored answer can be written again and every stored question edited, except while
// an answer is being written and in a temporary chat (which the server never stores).
export function refreshActions() {
  const off = hooks.temporary() || hooks.busy();
  el.thread.querySelectorAll('.msg.assistant .regen').forEach((btn) => {
    btn.hidden = off;
  });
  el.thread.querySelectorAll('.msg.user').forEach((node) => {
    const btn = node.querySelector('.edit-q');
    if (btn) btn.hidden = off || !node.dataset.id;
  });
}

export function nodeFor(m) {
  return m.role === 'user' ? userNode(m) : assistantNode(m);
}

export function olderStatus() {
  let s = el.thread.querySelector('.older-status');
  if (!s) {
    s = h('div', { class: 'older-status', 'aria-live': 'polite' });
    el.thread.prepend(s);
  }
  return s;
}

export function hasOlder() {
  return state.oldestOffset > 0 || (state.olderBuffer && state.olderBuffer.length > 0);
}

export async function fetchLatestPage(id) {
  // Ask for the first page; if the server reports a total beyond it, jump to the end.
  let page = await api.listMessages(id, { limit: PAGE, offset: 0 });
  if (page.total !== null) {
    if (page.total > PAGE) {
      const offset = page.total - PAGE;
      const last = await api.listMessages(id, { limit: PAGE, offset });
      return { items: last.items, offset, total: last.total ?? page.total, buffer: null };
    }
    return { items: page.items, offset: 0, total: page.total, buffer: null };
  }
  // No total: walk forward to the end, keep the last page on screen, the rest in memory.
  const all = [...page.items];
  let offset = page.items.length;
  while (page.items.length === PAGE && offset < 100000) {
    page = await api.listMessages(id, { limit: PAGE, offset });
    all.push(...page.items);
    offset += page.items.length;
  }
  const start = Math.max(0, all.length - PAGE);
  return { items: all.slice(start), offset: 0, total: all.length, buffer: all.slice(0, start) };
}

// Keep loading older pages until the history fills the screen (so scrolling works).
export async function fillViewport() {
  for (let i = 0; i < 5; i += 1) {
    if (!hasOlder() || el.messages.scrollHeight > el.messages.clientHeight + 40) return;
    await loadOlder();
  }
}

export async function loadOlder() {
  if (state.loadingOlder || !hasOlder() || !hooks.conversationId()) return;
  state.loadingOlder = true;
  const token = hooks.token();
  const status = olderStatus();
  status.textContent = 'Loading earlier messages…';
  try {
    let items;
    if (state.olderBuffer && state.olderBuffer.length) {
      items = state.olderBuffer.splice(Math.max(0, state.olderBuffer.length - PAGE));
    } else {
      const offset = Math.max(0, state.oldestOffset - PAGE);
      const page = await api.listMessages(hooks.conversationId(), { limit: state.oldestOffset - offset, offset });
      if (token !== hooks.token()) return;
      items = page.items;
      state.oldestOffset = offset;
    }
    const m = el.messages;
    const before = m.scrollHeight - m.scrollTop;
    state.messages = [...items, ...state.messages];
    const frag = document.createDocumentFragment();
    for (const msg of items) frag.append(nodeFor(msg));
    status.after(frag);
    refreshActions();
    m.scrollTop = m.scrollHeight - before;
    status.textContent = hasOlder() ? 'Scroll up for earlier messages' : 'Beginning of the conversation';
  } catch (e) {
    status.textContent = `Could not load earlier messages: ${e.message}`;
  } finally {
    state.loadingOlder = false;
  }
}

export function typingNode() {
  return h('div', { class: 'typing', 'aria-label': 'Writing' }, h('span'), h('span'), h('span'));
}

export function pendingAssistant() {
  const content = h('div', { class: 'msg-content markdown' }, typingNode());
  const node = h(
    'article',
    { class: 'msg assistant streaming' },
    h('div', { class: 'avatar', 'aria-hidden': 'true' }, 'AI'),
    h('div', { class: 'msg-body' }, content, h('div', { class: 'msg-foot' })),
  );
  node._message = { role: 'assistant', content: '' };
  return node;
}

export function stoppedNote() {
  return h('p', { class: 'msg-note' }, STOPPED_NOTE);
}

export function finishAnswer(node, result) {
  node.classList.remove('streaming');
  const content = node.querySelector('.msg-content');
  const assistant = result.final?.assistant;
  const m = {
    id: assistant?.id || '',
    role: 'assistant',
    content: result.text,
    meta: assistant?.meta || null,
    createdAt: assistant?.createdAt || new Date().toISOString(),
    parentId: assistant?.parentId ?? null,
    versions: assistant?.versions || [],
  };
  node._message = m;
  node.dataset.id = m.id;
  renderMarkdown(content, m.content);
  fillFoot(node, m);
  node.querySelector('.msg-note')?.remove();
  if (result.stopped) node.querySelector('.msg-body').append(stoppedNote());
  return m;
}

export function showAnswerError(node, message, partial, prefix = 'The answer failed: ') {
  node.classList.remove('streaming');
  const content = node.querySelector('.msg-content');
  if (partial) renderMarkdown(content, partial);
  else content.replaceChildren();
  const retry = h('button', { type: 'button', class: 'btn' }, 'Retry');
  retry.addEventListener('click', () => hooks.regenerate(node));
  node.querySelector('.msg-foot').replaceChildren(
    h('div', { class: 'msg-error', role: 'alert' }, `${prefix}${message}`, retry),
  );
  node._message = { role: 'assistant', content: partial || '', failed: true };
}

// Removes `node` and everything after it in the thread; the messages kept before it.
export function cutThreadAt(node, { keepNode = false } = {}) {
  const id = node.dataset.id;
  const at = id ? state.messages.findIndex((m) => m.id === id) : -1;
  const kept = at >= 0 ? state.messages.slice(0, at) : [...state.messages];
  while (node.nextElementSibling) node.nextElementSibling.remove();
  if (!keepNode) node.remove();
  state.messages = kept;
  return kept;
}

// Scrolls to a message of the branch shown (a search hit), loading older pages until it is
// found; false when the branch does not hold it.
export async function revealMessage(messageId, { focus = true } = {}) {
  if (!messageId) return false;
  for (let i = 0; i < 60; i += 1) {
    const node = el.thread.querySelector(`.msg[data-id="${CSS.escape(messageId)}"]`);
    if (node) {
      node.scrollIntoView({ block: 'center' });
      if (!focus) return true;
      node.classList.add('found');
      node.setAttribute('tabindex', '-1');
      node.focus({ preventScroll: true });
      return true;
    }
    if (!hasOlder()) return false;
    await loadOlder();
  }
  return false;
}

export function nearBottom() {
  const m = el.messages;
  return m.scrollHeight - m.scrollTop - m.clientHeight < 80;
}

export function scrollToBottom() {
  el.messages.scrollTop = el.messages.scrollHeight;
  el.jump.hidden = true;
}
