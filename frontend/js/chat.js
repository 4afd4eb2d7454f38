// The chat page: sidebar of conversations, the history with paging, the composer and
// token-by-token streaming.
import * as api from './api.js';
import {
  $,
  confirmDialog,
  copyText,
  dayGroup,
  formatDuration,
  h,
  icon,
  initials,
  parseDate,
  requireUser,
  shortcutsDialog,
  signOut,
  toast,
} from './common.js';
import { renderMarkdown } from './markdown.js';
import * as sidebar from './sidebar.js';
import { openChatActions } from './snapshots.js';
import * as tools from './tools.js';

const PAGE = 50;
const DRAFT_KEY = 'openchat.draft.';
const STOPPED_NOTE = 'Stopped. What was written so far is saved.';

const el = {
  app: $('#app'),
  sidebar: $('#sidebar'),
  newChat: $('#new-chat'),
  who: $('#who'),
  adminLink: $('#admin-link'),
  signOut: $('#sign-out'),
  openSidebar: $('#open-sidebar'),
  closeSidebar: $('#close-sidebar'),
  scrim: $('#scrim'),
  model: $('#model'),
  title: $('#chat-title'),
  messages: $('#messages'),
  thread: $('#thread'),
  jump: $('#jump'),
  composer: $('#composer'),
  input: $('#message'),
  send: $('#send'),
  stop: $('#stop'),
  error: $('#chat-error'),
  errorText: $('#chat-error-text'),
  errorClose: $('#chat-error-close'),
  announcer: $('#announcer'),
  temporary: $('#temporary-toggle'),
};

const TEMPORARY_NOTICE =
  'Temporary chat: nothing of it is stored on the server, and it is gone when you leave or reload this page.';

const state = {
  me: null,
  models: [],
  serverDefault: null,
  userDefault: null,
  current: null, // the open conversation, or null for a new chat
  messages: [], // loaded messages, oldest first
  oldestOffset: 0, // server offset of messages[0]
  total: null,
  loadingOlder: false,
  olderBuffer: null, // when the server gives no total: older messages kept client-side
  streaming: null, // {controller}
  started: false, // set once the first chat is shown
  openToken: 0,
  temporary: false, // a temporary chat: messages only in this page, never stored
  temporaryMessages: [], // its {role, content} so far, sent with each question
};

/* ---------- small UI pieces ---------- */

function announce(text) {
  el.announcer.textContent = '';
  setTimeout(() => {
    el.announcer.textContent = text;
  }, 30);
}

function showError(message) {
  el.errorText.textContent = message;
  el.error.hidden = false;
}

function hideError() {
  el.error.hidden = true;
  el.errorText.textContent = '';
}

function setStreamingUi(on) {
  el.send.hidden = on;
  el.stop.hidden = !on;
  el.messages.setAttribute('aria-busy', on ? 'true' : 'false');
  updateSendEnabled();
  if (on) el.stop.focus({ preventScroll: true });
  else if (document.activeElement === el.stop || document.activeElement === document.body) {
    el.input.focus({ preventScroll: true });
  }
}

function updateSendEnabled() {
  el.send.disabled = !el.input.value.trim() || !!state.streaming || !state.models.length;
}

function autosize() {
  el.input.style.height = 'auto';
  el.input.style.height = `${Math.min(el.input.scrollHeight, 240)}px`;
}

function draftKey() {
  return DRAFT_KEY + (state.current ? state.current.id : 'new');
}

function saveDraft() {
  if (state.temporary) return; // nothing of a temporary chat is kept, not even its draft
  try {
    if (el.input.value) localStorage.setItem(draftKey(), el.input.value);
    else localStorage.removeItem(draftKey());
  } catch {
    /* storage full or disabled */
  }
}

function restoreDraft() {
  let text = '';
  try {
    text = localStorage.getItem(draftKey()) || '';
  } catch {
    text = '';
  }
  el.input.value = text;
  autosize();
  updateSendEnabled();
}

function putBackText(text) {
  // Never lose what the user typed: put it back, ahead of anything typed since.
  const now = el.input.value;
  el.input.value = now.trim() ? `${text}\n${now}` : text;
  autosize();
  saveDraft();
  updateSendEnabled();
}

function nearBottom() {
  const m = el.messages;
  return m.scrollHeight - m.scrollTop - m.clientHeight < 80;
}

function scrollToBottom() {
  el.messages.scrollTop = el.messages.scrollHeight;
  el.jump.hidden = true;
}

function setTitle(text) {
  const t = text || (state.current ? 'Untitled chat' : state.temporary ? 'Temporary chat' : '');
  el.title.textContent = t;
  document.title = t ? `${t} · Open Chat` : 'Open Chat';
  const actions = $('#chat-actions');
  if (actions) actions.hidden = !state.current;
  el.temporary.hidden = !!state.current;
  el.temporary.setAttribute('aria-pressed', state.temporary ? 'true' : 'false');
}

/* ---------- models ---------- */

async function loadModels() {
  try {
    const [{ models, offline, defaultModel }, settings] = await Promise.all([
      api.listModels(),
      api.getSettings().catch(() => null),
    ]);
    state.models = models;
    state.offlineModels = new Set(offline);
    state.serverDefault = defaultModel;
    state.userDefault = settings?.defaultModel || null;
  } catch (e) {
    state.models = [];
    showError(`Could not load the models: ${e.message}`);
  }
  renderModelPicker();
}

function preferredModel() {
  const allowed = new Set(state.models);
  const candidates = [state.current?.defaultModel, state.userDefault, state.serverDefault];
  for (const m of candidates) if (m && allowed.has(m)) return m;
  return state.models[0] || '';
}

function renderModelPicker() {
  const select = el.model;
  if (!state.models.length) {
    select.replaceChildren(h('option', { value: '' }, 'No models available'));
    select.disabled = true;
    showError('No models are enabled for your account. Ask an administrator to allow one.');
  } else {
    select.replaceChildren(...state.models.map((m) => h('option', { value: m }, m)));
    select.disabled = false;
    select.value = preferredModel();
  }
  updateSendEnabled();
}

el.model.addEventListener('change', async () => {
  const model = el.model.value;
  const empty = el.thread.querySelector('.empty'); // the offline-model hint follows the pick
  if (empty) {
    empty.querySelector('#offline-hint')?.remove();
    const hint = offlineHint();
    if (hint) empty.querySelector('.suggestions')?.before(hint);
  }
  if (!state.current || !model) return;
  try {
    const updated = await api.updateConversation(state.current.id, { defaultModel: model });
    replaceConversation({ ...state.current, defaultModel: model, ...(updated || {}) });
  } catch (e) {
    toast(e.message, 'error', 5000);
  }
});

/* ---------- messages ---------- */

function metaText(meta) {
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

function userNode(m) {
  return h('article', { class: 'msg user', dataset: { id: m.id || '' } }, h('div', { class: 'bubble' }, m.content));
}

function assistantNode(m) {
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

function fillFoot(node, m) {
  const foot = node.querySelector('.msg-foot');
  const copyBtn = h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Copy answer', title: 'Copy answer' }, icon('copy', 16));
  copyBtn.addEventListener('click', async () => {
    const ok = await copyText(node._message?.content ?? '');
    toast(ok ? 'Copied' : 'Copy failed', ok ? 'info' : 'error', 1500);
  });
  const regen = h('button', { type: 'button', class: 'icon-btn regen', 'aria-label': 'Regenerate', title: 'Regenerate' }, icon('refresh', 16));
  regen.addEventListener('click', () => regenerate(node));
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
  foot.replaceChildren(...[copyBtn, regen, meta ? h('span', { class: 'meta' }, meta) : null, stamp].filter(Boolean));
  markLastAnswer();
}

// The latest answer of the thread, if the thread ends with one.
function latestAnswer() {
  const answers = el.thread.querySelectorAll('.msg.assistant');
  const last = answers[answers.length - 1];
  return last && last === el.thread.querySelector('.msg:last-of-type') ? last : null;
}

// Only the latest answer carries a Regenerate button.
function markLastAnswer() {
  const latest = state.temporary ? null : latestAnswer();
  el.thread.querySelectorAll('.msg.assistant').forEach((a) => {
    const btn = a.querySelector('.regen');
    if (btn) btn.hidden = a !== latest || !!state.streaming;
  });
}

function nodeFor(m) {
  return m.role === 'user' ? userNode(m) : assistantNode(m);
}

function olderStatus() {
  let s = el.thread.querySelector('.older-status');
  if (!s) {
    s = h('div', { class: 'older-status', 'aria-live': 'polite' });
    el.thread.prepend(s);
  }
  return s;
}

function hasOlder() {
  return state.oldestOffset > 0 || (state.olderBuffer && state.olderBuffer.length > 0);
}

function renderEmpty() {
  const name = (state.me?.fullName || '').trim().split(/\s+/)[0] || state.me?.username || '';
  const ideas = [
    ['Explain a concept', 'how encryption at rest protects a database'],
    ['Write code', 'a Python function that deduplicates a list, keeping order'],
    ['Summarise', 'the key ideas of the CAP theorem in five bullet points'],
    ['Brainstorm', 'names for a privacy-first team chat tool'],
  ];
  const chips = ideas.map(([head, rest]) =>
    h('button', {
      type: 'button',
      class: 'suggestion',
      onclick: () => {
        el.input.value = `${head}: ${rest}`;
        autosize();
        saveDraft();
        updateSendEnabled();
        el.input.focus();
      },
    }, h('strong', {}, head), rest),
  );
  el.thread.replaceChildren(
    h(
      'div',
      { class: 'empty' },
      h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, 'O'),
      h('h2', {}, name ? `Hello, ${name}` : 'Hello'),
      h('p', { class: 'muted' }, 'How can I help you today?'),
      offlineHint(),
      h('div', { class: 'suggestions' }, chips),
    ),
  );
}

// Connections (egress area): says when the built-in offline model answers, and where a
// real one is connected (admins: Admin › Connections; others are told an admin can).
function offlineHint() {
  const model = el.model?.value || preferredModel();
  if (!model || !state.offlineModels?.has(model)) return null;
  const text = 'Answers come from the built-in offline model (mock), not a real AI model. ';
  const next = state.me?.admin
    ? h('a', { href: '/admin.html#connections' }, 'Connect a real model')
    : 'An administrator can connect a real one.';
  return h('p', { class: 'offline-hint muted', id: 'offline-hint', role: 'note' }, text, next);
}

function renderThread() {
  if (!state.messages.length && !state.current) {
    renderEmpty();
    return;
  }
  el.thread.replaceChildren(...state.messages.map(nodeFor));
  if (hasOlder()) olderStatus().textContent = 'Scroll up for earlier messages';
  const last = state.messages[state.messages.length - 1];
  if (last && last.role === 'user') {
    // The last question has no answer yet: the server may still be writing it.
    const node = pendingAssistant();
    el.thread.append(node);
    followAnswer(node);
  }
  markLastAnswer();
}

// Shows the answer the server is writing (asked here before a reload, or on another
// device) and follows it live; without one, the question gets a Retry.
async function followAnswer(node) {
  const conv = state.current;
  if (!conv || state.streaming) return;
  const controller = new AbortController();
  state.streaming = { controller, conversationId: conv.id, confirmed: true };
  setStreamingUi(true);
  const token = state.openToken;
  const result = await consume(api.followAnswer(conv.id, {}, controller.signal), node, controller, {
    conversationId: conv.id,
  });
  if (state.streaming?.controller === controller) {
    state.streaming = null;
    setStreamingUi(false);
  }
  if (token !== state.openToken || !node.isConnected) return;
  if (result.ok && result.final?.pending) {
    node.remove();
    return;
  }
  if (result.ok) {
    const m = finishAnswer(node, result);
    state.messages.push(m);
    announce(result.stopped ? 'Stopped' : 'Answer complete');
    if (result.final?.title) replaceConversation({ ...state.current, title: result.final.title });
    return;
  }
  if (result.detached) return;
  if (result.error?.status === 404) {
    showAnswerError(node, 'No answer was saved for this question.', '', '');
    return;
  }
  if (result.lost) {
    openConversation(conv.id);
    return;
  }
  showAnswerError(node, result.error.message, '');
}

async function fetchLatestPage(id) {
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

async function openConversation(id, { push = false, replace = false } = {}) {
  if (state.streaming) detachStream();
  state.temporary = false;
  state.temporaryMessages = [];
  sidebar.closeMenu(false);
  hideError();
  if (state.started) saveDraft(); // keep what was typed in the chat being left
  const token = ++state.openToken;
  if (push) history.pushState({ c: id }, '', `/?c=${encodeURIComponent(id)}`);
  else if (replace) history.replaceState({ c: id }, '', `/?c=${encodeURIComponent(id)}`);
  const known = sidebar.find(id);
  state.current = known ? { ...known } : { id, title: '' };
  state.messages = [];
  state.olderBuffer = null;
  setTitle(known?.title || '');
  sidebar.setActive(id);
  el.thread.replaceChildren(h('p', { class: 'older-status' }, 'Loading…'));
  restoreDraft();
  try {
    const [conv, page] = await Promise.all([api.getConversation(id), fetchLatestPage(id)]);
    if (token !== state.openToken) return;
    state.current = conv;
    state.messages = page.items;
    state.oldestOffset = page.offset;
    state.total = page.total;
    state.olderBuffer = page.buffer;
    setTitle(conv.title);
    renderModelPicker();
    renderThread();
    scrollToBottom();
    await fillViewport();
    await loadToolLog(id, token);
  } catch (e) {
    if (token !== state.openToken) return;
    if (e.status === 404) {
      toast('That chat no longer exists.', 'error');
      newChat({ replace: true });
      return;
    }
    el.thread.replaceChildren();
    showError(e.message);
  }
}

// Keep loading older pages until the history fills the screen (so scrolling works).
async function fillViewport() {
  for (let i = 0; i < 5; i += 1) {
    if (!hasOlder() || el.messages.scrollHeight > el.messages.clientHeight + 40) return;
    await loadOlder();
  }
}

async function loadOlder() {
  if (state.loadingOlder || !hasOlder() || !state.current) return;
  state.loadingOlder = true;
  const token = state.openToken;
  const status = olderStatus();
  status.textContent = 'Loading earlier messages…';
  try {
    let items;
    if (state.olderBuffer && state.olderBuffer.length) {
      items = state.olderBuffer.splice(Math.max(0, state.olderBuffer.length - PAGE));
    } else {
      const offset = Math.max(0, state.oldestOffset - PAGE);
      const page = await api.listMessages(state.current.id, { limit: state.oldestOffset - offset, offset });
      if (token !== state.openToken) return;
      items = page.items;
      state.oldestOffset = offset;
    }
    const m = el.messages;
    const before = m.scrollHeight - m.scrollTop;
    state.messages = [...items, ...state.messages];
    const frag = document.createDocumentFragment();
    for (const msg of items) frag.append(nodeFor(msg));
    status.after(frag);
    markLastAnswer(); // older answers are never the latest: they get no Regenerate button
    m.scrollTop = m.scrollHeight - before;
    status.textContent = hasOlder() ? 'Scroll up for earlier messages' : 'Beginning of the conversation';
  } catch (e) {
    status.textContent = `Could not load earlier messages: ${e.message}`;
  } finally {
    state.loadingOlder = false;
  }
}

el.messages.addEventListener(
  'scroll',
  () => {
    if (el.messages.scrollTop < 400 && hasOlder()) loadOlder();
    el.jump.hidden = nearBottom() || !state.messages.length;
  },
  { passive: true },
);

el.jump.addEventListener('click', () => {
  scrollToBottom();
  el.input.focus();
});

function newChat({ push = false, replace = false, temporary = false } = {}) {
  if (state.streaming) detachStream();
  if (state.started) saveDraft(); // keep what was typed in the chat being left
  state.temporary = temporary;
  state.temporaryMessages = [];
  state.openToken += 1;
  state.current = null;
  state.messages = [];
  state.olderBuffer = null;
  state.oldestOffset = 0;
  state.total = 0;
  hideError();
  if (push) history.pushState({}, '', '/');
  else if (replace) history.replaceState({}, '', '/');
  setTitle('');
  sidebar.setActive(null);
  renderModelPicker();
  renderEmpty();
  if (temporary) {
    el.thread.replaceChildren(h('p', { class: 'temporary-notice', role: 'note' }, TEMPORARY_NOTICE));
    el.input.value = '';
    autosize();
    updateSendEnabled();
  } else restoreDraft();
  // On touch screens focusing would pop the keyboard over the page; wait for a tap there.
  if (!window.matchMedia('(pointer: coarse)').matches) el.input.focus();
}

/* ---------- sending and streaming ---------- */

function typingNode() {
  return h('div', { class: 'typing', 'aria-label': 'Writing' }, h('span'), h('span'), h('span'));
}

function pendingAssistant() {
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

// Stop asks the server: it ends the answer and stores what was written, which then arrives
// as the stream's last event. Before the server confirmed the question there is nothing to
// stop yet: the wish is kept and sent as soon as it does.
function stopStreaming() {
  const s = state.streaming;
  if (!s || s.stopping) return;
  s.stopping = true;
  if (s.temporary) s.controller.abort(); // nothing goes on on the server
  if (s.conversationId && s.confirmed) requestStop(s);
}

function requestStop(s) {
  api.stopAnswer(s.conversationId).catch(() => s.controller.abort());
}

// Leaving a chat only stops watching: the server goes on writing (and storing) the answer.
function detachStream() {
  if (state.streaming) state.streaming.controller.abort();
}

// Called by consume() when the server confirms the question (its `start` event).
function confirmStream() {
  const s = state.streaming;
  if (!s || s.confirmed) return;
  s.confirmed = true;
  if (s.stopping && s.conversationId) requestStop(s);
}

const RESUME_ATTEMPTS = 3;

// Consumes one answer stream into `node`. Returns {ok, confirmed, error, detached, lost,
// text, final}. A connection lost mid-answer is resumed from the characters already shown
// (the answer goes on on the server); `lost` means it ended meanwhile and is stored.
async function consume(stream, node, controller, { conversationId = null, onStart = null } = {}) {
  const content = node.querySelector('.msg-content');
  let text = '';
  let confirmed = false;
  let final = null;
  let frame = 0;
  const paint = () => {
    frame = 0;
    const stick = nearBottom();
    renderMarkdown(content, text);
    if (stick) scrollToBottom();
  };
  const confirm = () => {
    if (!confirmed && onStart) onStart();
    confirmed = true;
    confirmStream();
  };
  try {
    for (let attempt = 0; ; attempt += 1) {
      try {
        for await (const ev of stream) {
          if (ev.type === 'delta') {
            confirm();
            text += ev.text;
            node._message.content = text;
            if (!frame) frame = requestAnimationFrame(paint);
          } else if (ev.type === 'start') {
            confirm();
            if (ev.user?.id) node._userId = ev.user.id;
            if (ev.title && state.current && !state.current.title) {
              replaceConversation({ ...state.current, title: ev.title });
            }
          } else if (ev.type === 'tool_call' || ev.type === 'tool_result') {
            confirm();
            tools.showExecution(node, ev.execution, decideTool);
            if (stickNow()) scrollToBottom();
          } else if (ev.type === 'title') {
            if (state.current) replaceConversation({ ...state.current, title: ev.title });
          } else if (ev.type === 'done') {
            confirm();
            final = ev;
          } else if (ev.type === 'error') {
            throw new api.ApiError(ev.status, ev.message);
          }
        }
      } catch (e) {
        if (!(e instanceof api.ApiError) || e.status !== 0) throw e;
      }
      if (final) break;
      if (!confirmed || !conversationId || attempt >= RESUME_ATTEMPTS || controller.signal.aborted) {
        throw new api.ApiError(0, 'The connection was lost before the answer was complete. Reload to see it.');
      }
      // The server is still writing: follow it from where this page is.
      await new Promise((r) => setTimeout(r, 300 * (attempt + 1)));
      stream = guardFollow(api.followAnswer(conversationId, { after: text.length }, controller.signal));
    }
    if (frame) cancelAnimationFrame(frame);
    if (final.assistant?.content && final.assistant.content.length >= text.length) text = final.assistant.content;
    return { ok: true, confirmed, text, final, stopped: !!final.assistant?.stopped };
  } catch (e) {
    if (frame) cancelAnimationFrame(frame);
    if (e?.name === 'AbortError' || controller.signal.aborted) return { ok: false, detached: true, confirmed, text };
    if (e?.lost) return { ok: false, lost: true, confirmed, text };
    return { ok: false, error: e, confirmed, text };
  }
}

// A resumed follow that finds nothing running (404): the answer ended and is stored.
async function* guardFollow(stream) {
  try {
    yield* stream;
  } catch (e) {
    if (e instanceof api.ApiError && e.status === 404) {
      const lost = new Error('ended');
      lost.lost = true;
      throw lost;
    }
    throw e;
  }
}

function stoppedNote() {
  return h('p', { class: 'msg-note' }, STOPPED_NOTE);
}

function finishAnswer(node, result) {
  node.classList.remove('streaming');
  const content = node.querySelector('.msg-content');
  const assistant = result.final?.assistant;
  const m = {
    id: assistant?.id || '',
    role: 'assistant',
    content: result.text,
    meta: assistant?.meta || null,
    createdAt: assistant?.createdAt || new Date().toISOString(),
  };
  node._message = m;
  node.dataset.id = m.id;
  renderMarkdown(content, m.content);
  fillFoot(node, m);
  node.querySelector('.msg-note')?.remove();
  if (result.stopped) node.querySelector('.msg-body').append(stoppedNote());
  return m;
}

async function refreshTitleSoon(id) {
  // The title is generated from the first exchange; it may land just after the answer.
  for (const wait of [0, 600, 1500, 3000]) {
    if (wait) await new Promise((r) => setTimeout(r, wait));
    if (!state.current || state.current.id !== id) return;
    try {
      const conv = await api.getConversation(id);
      const updated = { ...conv, updatedAt: conv.updatedAt || new Date().toISOString() };
      sidebar.upsert(updated);
      showChanged(updated);
      if (conv.title) return;
    } catch {
      return;
    }
  }
}

function bumpConversation(id) {
  sidebar.bump(id);
}

// A conversation changed in the sidebar (renamed, pinned, archived): the header follows.
function showChanged(updated) {
  if (state.current && state.current.id === updated.id) {
    state.current = { ...state.current, ...updated };
    setTitle(state.current.title);
  }
}

// A conversation changed here (its title, its model): the sidebar's row and the header.
function replaceConversation(updated) {
  sidebar.update(updated);
  showChanged(updated);
}

async function submit() {
  const text = el.input.value;
  if (!text.trim() || state.streaming) return;
  if (!state.models.length) {
    showError('No models are enabled for your account. Ask an administrator to allow one.');
    return;
  }
  hideError();
  if (state.temporary) {
    await submitTemporary(text);
    return;
  }
  const model = el.model.value || undefined;
  const controller = new AbortController();
  state.streaming = { controller, conversationId: state.current?.id || null };
  setStreamingUi(true);

  // The text stays in the box (read-only) until the server confirms it has the question.
  const draftId = draftKey();
  el.input.readOnly = true;
  const release = () => {
    el.input.readOnly = false;
  };

  let conv = state.current;
  if (!conv) {
    try {
      conv = await api.createConversation({ model });
      state.current = conv;
      state.messages = [];
      state.oldestOffset = 0;
      history.pushState({ c: conv.id }, '', `/?c=${encodeURIComponent(conv.id)}`);
      sidebar.upsert(conv);
      sidebar.setActive(conv.id);
      setTitle(conv.title);
      el.thread.replaceChildren();
    } catch (e) {
      state.streaming = null;
      release();
      setStreamingUi(false);
      showError(e.message);
      return;
    }
    state.streaming.conversationId = conv.id;
  }
  const userEl = userNode({ id: '', content: text });
  const asstEl = pendingAssistant();
  el.thread.querySelector('.empty')?.remove();
  el.thread.append(userEl, asstEl);
  markLastAnswer();
  scrollToBottom();

  const clearBox = () => {
    if (el.input.value === text) {
      el.input.value = '';
      autosize();
    }
    release();
    try {
      localStorage.removeItem(draftId);
      if (!el.input.value) localStorage.removeItem(draftKey());
    } catch {
      /* ignore */
    }
  };
  const stream = api.streamMessage(conv.id, { content: text, model }, controller.signal);
  const result = await consume(stream, asstEl, controller, { conversationId: conv.id, onStart: clearBox });
  state.streaming = null;
  release();
  setStreamingUi(false);
  if (state.current?.id !== conv.id) return; // the user moved elsewhere meanwhile
  if (result.lost || result.detached) {
    openConversation(conv.id); // the answer went on on the server: show it as stored
    return;
  }

  const userMsg = { id: userEl.dataset.id || asstEl._userId || '', role: 'user', content: text };
  if (result.ok || result.confirmed) clearBox(); // the server has the question
  if (result.ok && result.final?.pending) {
    asstEl.remove();
    state.messages.push(userMsg);
    awaitDecision();
    bumpConversation(conv.id);
    if (!result.final?.title) refreshTitleSoon(conv.id);
    return;
  }
  if (result.ok) {
    const m = finishAnswer(asstEl, result);
    state.messages.push(userMsg, m);
    announce(result.stopped ? 'Stopped' : 'Answer complete');
    if (result.final?.title) replaceConversation({ ...state.current, title: result.final.title });
    bumpConversation(conv.id);
    if (!result.final?.title) refreshTitleSoon(conv.id);
    return;
  }
  // Failed. Did the server keep the user's message? If not, give the text back.
  let kept = result.confirmed;
  if (!kept) {
    try {
      const page = await fetchLatestPage(conv.id);
      const last = page.items.filter((x) => x.role === 'user').pop();
      kept = !!last && last.content === text && page.items[page.items.length - 1]?.role === 'user';
    } catch {
      kept = false;
    }
  }
  if (!kept) {
    userEl.remove();
    asstEl.remove();
    if (el.input.value !== text) putBackText(text);
    if (draftId !== draftKey()) {
      try {
        localStorage.removeItem(draftId);
      } catch {
        /* ignore */
      }
    }
    showError(result.error.message);
    if (!el.thread.children.length && !state.messages.length) renderThread();
    el.input.focus();
    return;
  }
  clearBox();
  state.messages.push(userMsg);
  // Nothing of a failed answer is stored, so its partial text is not kept either. The
  // reason is shown in place of the answer (an alert), with Retry.
  showAnswerError(asstEl, result.error.message, '');
  bumpConversation(conv.id);
  refreshTitleSoon(conv.id);
}

// A temporary chat's question: answered from the messages this page holds; nothing is stored.
async function submitTemporary(text) {
  const model = el.model.value || undefined;
  const controller = new AbortController();
  state.streaming = { controller, conversationId: null, temporary: true };
  setStreamingUi(true);
  el.input.readOnly = true;
  const userEl = userNode({ id: '', content: text });
  const asstEl = pendingAssistant();
  el.thread.append(userEl, asstEl);
  scrollToBottom();
  const messages = [...state.temporaryMessages, { role: 'user', content: text }];
  const clearBox = () => {
    if (el.input.value === text) {
      el.input.value = '';
      autosize();
    }
    el.input.readOnly = false;
  };
  const stream = api.streamTemporary({ messages, model }, controller.signal);
  const result = await consume(stream, asstEl, controller, { onStart: clearBox });
  state.streaming = null;
  el.input.readOnly = false;
  setStreamingUi(false);
  if (!state.temporary) return; // left meanwhile: the chat is gone
  if (result.ok || (result.detached && result.confirmed)) {
    finishAnswer(asstEl, { ...result, stopped: false });
    if (!result.ok) asstEl.querySelector('.msg-body').append(h('p', { class: 'msg-note' }, 'Stopped.'));
    state.temporaryMessages.push({ role: 'user', content: text }, { role: 'assistant', content: result.text || '…' });
    announce(result.ok ? 'Answer complete' : 'Stopped');
    return;
  }
  userEl.remove();
  asstEl.remove();
  if (el.input.value !== text) putBackText(text);
  showError(result.error ? result.error.message : 'Stopped before the question was answered.');
}

function showAnswerError(node, message, partial, prefix = 'The answer failed: ') {
  node.classList.remove('streaming');
  const content = node.querySelector('.msg-content');
  if (partial) renderMarkdown(content, partial);
  else content.replaceChildren();
  const retry = h('button', { type: 'button', class: 'btn' }, 'Retry');
  retry.addEventListener('click', () => regenerate(node));
  node.querySelector('.msg-foot').replaceChildren(
    h('div', { class: 'msg-error', role: 'alert' }, `${prefix}${message}`, retry),
  );
  node._message = { role: 'assistant', content: partial || '', failed: true };
}

async function regenerate(node) {
  if (state.streaming || !state.current || node !== latestAnswer()) return;
  hideError();
  const conv = state.current;
  const previous = node._message;
  const controller = new AbortController();
  state.streaming = { controller, conversationId: conv.id };
  setStreamingUi(true);
  node.classList.add('streaming');
  node.querySelector('.msg-note')?.remove();
  node.querySelector('.msg-content').replaceChildren(typingNode());
  node.querySelector('.msg-foot').replaceChildren();
  node._message = { role: 'assistant', content: '' };
  const model = el.model.value || undefined;
  // The server refuses (409) if this is no longer the conversation's latest answer.
  const replaces = previous && !previous.failed ? previous.id || undefined : undefined;
  const stream = api.streamRegenerate(conv.id, { model, replaces }, controller.signal);
  const result = await consume(stream, node, controller, { conversationId: conv.id });
  state.streaming = null;
  setStreamingUi(false);
  if (state.current?.id !== conv.id) return;
  if (result.lost || result.detached) {
    openConversation(conv.id);
    return;
  }
  if (result.ok) {
    const m = finishAnswer(node, result);
    const i = state.messages.lastIndexOf(previous);
    if (i >= 0) state.messages[i] = m;
    else state.messages.push(m);
    announce(result.stopped ? 'Stopped' : 'Answer complete');
    bumpConversation(conv.id);
    return;
  }
  showError(result.error.message);
  if (previous && previous.content && !previous.failed) {
    node._message = previous;
    renderMarkdown(node.querySelector('.msg-content'), previous.content);
    node.classList.remove('streaming');
    fillFoot(node, previous);
  } else {
    showAnswerError(node, result.error.message, '');
  }
}

/* ---------- tool calls, snapshots, search hits ---------- */

function stickNow() {
  return nearBottom();
}

function awaitDecision() {
  announce('A tool call is waiting for your approval');
  const btn = [...el.thread.querySelectorAll('.tool-card.pending .btn.primary')].pop();
  if (btn) {
    btn.scrollIntoView({ block: 'nearest' });
    btn.focus({ preventScroll: true });
  }
}

// Approve or reject a proposed tool call; the continuation streams into a new answer.
async function decideTool(execution, approve, card, details) {
  if (state.streaming || !state.current) {
    tools.setDeciding(card, false);
    return;
  }
  hideError();
  const conv = state.current;
  const block = card.closest('.tool-calls');
  const node = pendingAssistant();
  (block || el.thread.lastElementChild).after(node);
  const controller = new AbortController();
  state.streaming = { controller, conversationId: conv.id };
  setStreamingUi(true);
  scrollToBottom();
  const stream = api.streamToolDecision(conv.id, execution.id, approve, controller.signal, details);
  const result = await consume(stream, node, controller, { conversationId: conv.id });
  state.streaming = null;
  setStreamingUi(false);
  if (state.current?.id !== conv.id) return;
  if (result.ok && result.final?.pending) {
    node.remove();
    awaitDecision();
    return;
  }
  if (result.lost || result.detached) {
    openConversation(conv.id);
    return;
  }
  if (result.ok) {
    const m = finishAnswer(node, result);
    state.messages.push(m);
    announce(result.stopped ? 'Stopped' : 'Answer complete');
    bumpConversation(conv.id);
    return;
  }
  if (!result.confirmed) {
    node.remove();
    if (card.isConnected) tools.setDeciding(card, false);
    showError(result.error.message);
    return;
  }
  showAnswerError(node, result.error.message, '');
}

async function loadToolLog(id, token) {
  try {
    const executions = await api.listToolExecutions(id);
    if (token !== state.openToken || !executions.length) return;
    const pending = tools.attachToolLog(el.thread, executions, decideTool);
    markLastAnswer();
    if (pending.length) scrollToBottom();
  } catch {
    /* the log is extra information; the chat works without it */
  }
}

// Scrolls to a message (a search hit), loading older pages until it is found.
async function revealMessage(messageId) {
  if (!messageId) return;
  for (let i = 0; i < 60; i += 1) {
    const node = el.thread.querySelector(`.msg[data-id="${CSS.escape(messageId)}"]`);
    if (node) {
      node.classList.add('found');
      node.setAttribute('tabindex', '-1');
      node.scrollIntoView({ block: 'center' });
      node.focus({ preventScroll: true });
      return;
    }
    if (!hasOlder()) return;
    await loadOlder();
  }
}

function showChatActions(c) {
  sidebar.closeMenu(false);
  openChatActions(c, {
    onRestored: async (conv, mode) => {
      await sidebar.load();
      openConversation(conv.id, { push: mode === 'new', replace: mode !== 'new' });
    },
  });
}

/* ---------- composer events ---------- */

el.composer.addEventListener('submit', (e) => {
  e.preventDefault();
  submit();
});

el.input.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && !e.altKey && !e.ctrlKey && !e.metaKey) {
    e.preventDefault();
    submit();
  }
});

el.input.addEventListener('input', () => {
  autosize();
  updateSendEnabled();
  saveDraft();
});

el.stop.addEventListener('click', stopStreaming);
el.errorClose.addEventListener('click', hideError);
$('#shortcuts-btn').addEventListener('click', showShortcuts);
el.temporary.addEventListener('click', () => {
  const on = !state.temporary;
  newChat({ push: true, temporary: on });
  announce(on ? 'Temporary chat: nothing of it is stored' : 'Temporary chat ended');
});
el.newChat.addEventListener('click', () => {
  newChat({ push: true });
  if (sidebar.isPhone()) sidebar.openSidebar(false);
});
el.openSidebar.addEventListener('click', () => sidebar.openSidebar(true));
el.closeSidebar.addEventListener('click', () => {
  sidebar.openSidebar(false);
  el.openSidebar.focus();
});
el.scrim.addEventListener('click', () => sidebar.openSidebar(false));
const SHORTCUTS = [
  ['Ctrl+Shift+O', 'New chat'],
  ['Ctrl+K', 'Search chats'],
  ['Shift+Escape', 'Focus the message box'],
  ['Enter', 'Send the message'],
  ['Shift+Enter', 'New line in the message'],
  ['Escape', 'Close the open menu, dialog or sidebar (one at a time), else stop the answer'],
  ['Ctrl+/', 'Show these shortcuts'],
];

function showShortcuts() {
  if (document.querySelector('dialog[open]')) return;
  shortcutsDialog('Keyboard shortcuts', SHORTCUTS);
}

// Shortcuts, and Escape closing one layer at a time: a dialog or a menu handles its own
// Escape (and marks it handled); then the phone drawer; only then does Escape stop an answer.
document.addEventListener('keydown', (e) => {
  const ctrl = e.ctrlKey || e.metaKey;
  if (ctrl && e.shiftKey && (e.key === 'O' || e.key === 'o')) {
    e.preventDefault();
    newChat({ push: true });
    return;
  }
  if (ctrl && !e.shiftKey && (e.key === 'k' || e.key === 'K')) {
    e.preventDefault();
    sidebar.focusSearch();
    return;
  }
  if (ctrl && e.key === '/') {
    e.preventDefault();
    showShortcuts();
    return;
  }
  if (e.key !== 'Escape' || e.defaultPrevented || e.isComposing) return;
  if (document.querySelector('dialog[open]') || sidebar.menuOpen()) return;
  if (e.shiftKey) {
    e.preventDefault();
    el.input.focus();
    return;
  }
  if (el.app.classList.contains('sidebar-open')) {
    e.preventDefault();
    sidebar.openSidebar(false);
    el.openSidebar.focus();
    return;
  }
  if (state.streaming && document.activeElement !== el.input) stopStreaming();
});

el.signOut.addEventListener('click', () => signOut());

window.addEventListener('popstate', () => {
  const id = new URLSearchParams(window.location.search).get('c');
  if (id) openConversation(id);
  else newChat();
});

/* ---------- start ---------- */

function fillStatic() {
  el.newChat.replaceChildren(icon('plus', 18), 'New chat');
  el.openSidebar.replaceChildren(icon('menu', 20));
  el.closeSidebar.replaceChildren(icon('close', 20));
  $('#toggle-archived').replaceChildren(icon('archive', 18));
  $('#search-box').prepend(icon('search', 16));
  el.send.replaceChildren(icon('send', 18));
  el.stop.replaceChildren(icon('stop', 16));
  el.jump.replaceChildren(icon('down', 18));
  el.errorClose.replaceChildren(icon('close', 14));
  el.model.parentElement.append(icon('chevron', 14));
  $('#settings-link').prepend(icon('gear', 18));
  $('#usage-link')?.prepend(icon('chart', 18));
  $('#search-link')?.prepend(icon('search', 18));
  $('#chat-actions')?.replaceChildren(icon('camera', 18));
  $('#chat-actions')?.addEventListener('click', () => state.current && showChatActions(state.current));
  el.adminLink.prepend(icon('shield', 18));
  el.signOut.prepend(icon('out', 18));
}

async function main() {
  fillStatic();
  const me = await requireUser();
  state.me = me;
  el.who.replaceChildren(
    h('span', { class: 'avatar', 'aria-hidden': 'true' }, initials(me.fullName || me.username)),
    h('div', { class: 'who-text' }, h('div', { class: 'name' }, me.fullName || me.username), h('div', { class: 'role' }, me.admin ? 'Administrator' : me.email || 'Member')),
  );
  el.adminLink.hidden = !me.admin;
  sidebar.connect({
    open: (id) => openConversation(id, { push: true }),
    changed: showChanged,
    deleted: (id) => {
      if (state.current && state.current.id === id) newChat({ push: true });
    },
    actions: showChatActions,
  });
  await Promise.all([loadModels(), sidebar.load(), sidebar.loadFolders()]);
  const id = new URLSearchParams(window.location.search).get('c');
  if (id) {
    await openConversation(id);
    await revealMessage(new URLSearchParams(window.location.search).get('m'));
  } else newChat();
  state.started = true;
  document.body.dataset.ready = 'true';
}

main().catch((e) => {
  if (e) console.error(e);
});
