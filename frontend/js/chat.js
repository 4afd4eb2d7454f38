// The chat page: what happens when the user asks, edits, regenerates, switches versions or
// opens a chat, the sidebar of conversations and the model picker. The thread (thread.js),
// the answer being written (stream.js), the message box (composer.js) and versions
// (versions.js) are modules of their own, each with its own state.
import * as api from './api.js';
import {
  $,
  confirmDialog,
  dayGroup,
  h,
  icon,
  initials,
  parseDate,
  requireUser,
  shortcutsDialog,
  signOut,
  toast,
} from './common.js';
import * as sidebar from './sidebar.js';
import { openChatActions } from './snapshots.js';
import * as tools from './tools.js';
import * as thread from './thread.js';
import {
  adoptUser,
  cutThreadAt,
  fetchLatestPage,
  fillViewport,
  finishAnswer,
  hasOlder,
  loadOlder,
  nodeFor,
  nearBottom,
  olderStatus,
  pendingAssistant,
  refreshActions,
  revealMessage,
  scrollToBottom,
  showAnswerError,
  typingNode,
  userNode,
} from './thread.js';
import * as stream from './stream.js';
import {
  consume,
  detachStream,
  stopStreaming,
} from './stream.js';
import * as composer from './composer.js';
import {
  autosize,
  draftKey,
  putBackText,
  restoreDraft,
  saveDraft,
  updateSendEnabled,
} from './composer.js';
import { editInPlace } from './versions.js';


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
  refreshActions();
  if (on) el.stop.focus({ preventScroll: true });
  else if (document.activeElement === el.stop || document.activeElement === document.body) {
    el.input.focus({ preventScroll: true });
  }
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
  if (!thread.state.messages.length && !state.current) {
    renderEmpty();
    return;
  }
  el.thread.replaceChildren(...thread.state.messages.map(nodeFor));
  if (hasOlder()) olderStatus().textContent = 'Scroll up for earlier messages';
  const last = thread.state.messages[thread.state.messages.length - 1];
  if (last && last.role === 'user') {
    // The last question has no answer yet: the server may still be writing it.
    const node = pendingAssistant();
    el.thread.append(node);
    followAnswer(node);
  }
  refreshActions();
}

// Shows the answer the server is writing (asked here before a reload, or on another
// device) and follows it live; without one, the question gets a Retry.
async function followAnswer(node) {
  const conv = state.current;
  if (!conv || stream.state.active) return;
  const controller = new AbortController();
  stream.state.active = { controller, conversationId: conv.id, confirmed: true };
  setStreamingUi(true);
  const token = state.openToken;
  const result = await consume(api.followAnswer(conv.id, {}, controller.signal), node, controller, {
    conversationId: conv.id,
  });
  if (stream.state.active?.controller === controller) {
    stream.state.active = null;
    setStreamingUi(false);
  }
  if (token !== state.openToken || !node.isConnected) return;
  if (result.ok && result.final?.pending) {
    node.remove();
    return;
  }
  if (result.ok) {
    const m = finishAnswer(node, result);
    thread.state.messages.push(m);
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

async function openConversation(id, { push = false, replace = false } = {}) {
  if (stream.state.active) detachStream();
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
  thread.state.messages = [];
  thread.state.olderBuffer = null;
  setTitle(known?.title || '');
  sidebar.setActive(id);
  el.thread.replaceChildren(h('p', { class: 'older-status' }, 'Loading…'));
  restoreDraft();
  try {
    const [conv, page] = await Promise.all([api.getConversation(id), fetchLatestPage(id)]);
    if (token !== state.openToken) return;
    state.current = conv;
    thread.state.messages = page.items;
    thread.state.oldestOffset = page.offset;
    thread.state.total = page.total;
    thread.state.olderBuffer = page.buffer;
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

el.messages.addEventListener(
  'scroll',
  () => {
    if (el.messages.scrollTop < 400 && hasOlder()) loadOlder();
    el.jump.hidden = nearBottom() || !thread.state.messages.length;
  },
  { passive: true },
);

el.jump.addEventListener('click', () => {
  scrollToBottom();
  el.input.focus();
});

function newChat({ push = false, replace = false, temporary = false } = {}) {
  if (stream.state.active) detachStream();
  if (state.started) saveDraft(); // keep what was typed in the chat being left
  state.temporary = temporary;
  state.temporaryMessages = [];
  state.openToken += 1;
  state.current = null;
  thread.state.messages = [];
  thread.state.olderBuffer = null;
  thread.state.oldestOffset = 0;
  thread.state.total = 0;
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
  if (!text.trim() || stream.state.active) return;
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
  stream.state.active = { controller, conversationId: state.current?.id || null };
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
      thread.state.messages = [];
      thread.state.oldestOffset = 0;
      history.pushState({ c: conv.id }, '', `/?c=${encodeURIComponent(conv.id)}`);
      sidebar.upsert(conv);
      sidebar.setActive(conv.id);
      setTitle(conv.title);
      el.thread.replaceChildren();
    } catch (e) {
      stream.state.active = null;
      release();
      setStreamingUi(false);
      showError(e.message);
      return;
    }
    stream.state.active.conversationId = conv.id;
  }
  const userEl = userNode({ id: '', content: text });
  const asstEl = pendingAssistant();
  el.thread.querySelector('.empty')?.remove();
  el.thread.append(userEl, asstEl);
  refreshActions();
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
  const events = api.streamMessage(conv.id, { content: text, model }, controller.signal);
  const result = await consume(events, asstEl, controller, {
    conversationId: conv.id,
    onStart: clearBox,
    onUser: (user) => adoptUser(userEl, user),
  });
  stream.state.active = null;
  release();
  setStreamingUi(false);
  if (state.current?.id !== conv.id) return; // the user moved elsewhere meanwhile
  if (result.lost || result.detached) {
    openConversation(conv.id); // the answer went on on the server: show it as stored
    return;
  }

  const userMsg = { ...userEl._message, id: userEl.dataset.id || asstEl._userId || '', content: text };
  if (result.ok || result.confirmed) clearBox(); // the server has the question
  if (result.ok && result.final?.pending) {
    asstEl.remove();
    thread.state.messages.push(userMsg);
    awaitDecision();
    bumpConversation(conv.id);
    if (!result.final?.title) refreshTitleSoon(conv.id);
    return;
  }
  if (result.ok) {
    const m = finishAnswer(asstEl, result);
    thread.state.messages.push(userMsg, m);
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
    if (!el.thread.children.length && !thread.state.messages.length) renderThread();
    el.input.focus();
    return;
  }
  clearBox();
  thread.state.messages.push(userMsg);
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
  stream.state.active = { controller, conversationId: null, temporary: true };
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
  const events = api.streamTemporary({ messages, model }, controller.signal);
  const result = await consume(events, asstEl, controller, { onStart: clearBox });
  stream.state.active = null;
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

// Writes a new version of an answer (any answer; the old one is kept as a version). What
// followed the old answer belongs to its branch and leaves the screen.
async function regenerate(node) {
  if (stream.state.active || !state.current || state.temporary) return;
  hideError();
  const conv = state.current;
  const previous = node._message;
  const kept = cutThreadAt(node, { keepNode: true });
  const controller = new AbortController();
  stream.state.active = { controller, conversationId: conv.id };
  setStreamingUi(true);
  node.classList.add('streaming');
  node.querySelector('.msg-note')?.remove();
  node.querySelector('.msg-content').replaceChildren(typingNode());
  node.querySelector('.msg-foot').replaceChildren();
  node._message = { role: 'assistant', content: '' };
  const model = el.model.value || undefined;
  // A failed answer has no id: its question (the message shown last) is answered again.
  const replaces = previous && !previous.failed ? previous.id || undefined : undefined;
  const events = api.streamRegenerate(conv.id, { model, replaces }, controller.signal);
  const result = await consume(events, node, controller, { conversationId: conv.id });
  stream.state.active = null;
  setStreamingUi(false);
  if (state.current?.id !== conv.id) return;
  if (result.lost || result.detached) {
    openConversation(conv.id);
    return;
  }
  if (result.ok) {
    const m = finishAnswer(node, result);
    thread.state.messages = [...kept, m];
    announce(result.stopped ? 'Stopped' : 'Answer complete');
    bumpConversation(conv.id);
    return;
  }
  if (previous && previous.id && !previous.failed) {
    // Nothing new was stored: the server shows the earlier branch again, and so does the page.
    await reloadThread();
    showError(result.error.message);
    return;
  }
  showAnswerError(node, result.error.message, '');
}

// Edit a question: Enter sends it as a new version (a branch with its own answer), Escape
// puts it back. Focus returns to `back` (the Edit button, or the message box).
function startEdit(node, back) {
  if (stream.state.active || state.temporary || !node.dataset.id) return;
  editInPlace(node, node._message.content, {
    onSave: (text) => sendEdit(node, text),
    onCancel: () => (back?.isConnected ? back : el.input).focus(),
  });
}

async function sendEdit(node, text) {
  if (stream.state.active || !state.current) return;
  hideError();
  const conv = state.current;
  const edited = node._message;
  const kept = cutThreadAt(node);
  const userEl = userNode({ id: '', content: text });
  const asstEl = pendingAssistant();
  el.thread.append(userEl, asstEl);
  scrollToBottom();
  const controller = new AbortController();
  stream.state.active = { controller, conversationId: conv.id };
  setStreamingUi(true);
  const model = el.model.value || undefined;
  const events = api.streamMessage(conv.id, { content: text, model, editOf: edited.id }, controller.signal);
  const result = await consume(events, asstEl, controller, {
    conversationId: conv.id,
    onUser: (user) => adoptUser(userEl, user),
  });
  stream.state.active = null;
  setStreamingUi(false);
  if (state.current?.id !== conv.id) return;
  if (result.lost || result.detached || (result.ok && result.final?.pending)) {
    openConversation(conv.id);
    return;
  }
  if (result.ok) {
    if (result.final?.user) adoptUser(userEl, result.final.user);
    thread.state.messages = [...kept, userEl._message, finishAnswer(asstEl, result)];
    announce(result.stopped ? 'Stopped' : 'Answer complete');
    bumpConversation(conv.id);
    return;
  }
  if (!result.confirmed) {
    // Refused before it was stored: the branch as it was, and the edit is not lost.
    await reloadThread();
    showError(result.error.message);
    putBackText(text);
    return;
  }
  thread.state.messages = [...kept, userEl._message];
  showAnswerError(asstEl, result.error.message, '');
}

// A version arrow: the server switches the branch shown; the thread is drawn again with the
// message switched to in view and focus kept on the arrows.
async function switchVersion(messageId) {
  if (stream.state.active || !state.current) return;
  const conv = state.current;
  const wasNext = document.activeElement?.getAttribute('aria-label') === 'Next version';
  try {
    await api.showVersion(conv.id, messageId);
  } catch (e) {
    toast(e.message, 'error', 5000);
    return;
  }
  if (state.current?.id !== conv.id) return;
  await reloadThread({ reveal: messageId });
  const node = el.thread.querySelector(`.msg[data-id="${CSS.escape(messageId)}"]`);
  const arrow = node?.querySelector(`.versions [aria-label="${wasNext ? 'Next' : 'Previous'} version"]`);
  const target = arrow && !arrow.disabled ? arrow : node?.querySelector('.versions button:not([disabled])');
  target?.focus({ preventScroll: true });
  announce(`Version ${node?._message?.versions?.indexOf(messageId) + 1} of ${node?._message?.versions?.length}`);
}

// Draws the branch shown again from the server, in place (no "Loading…").
async function reloadThread({ reveal = null } = {}) {
  const conv = state.current;
  if (!conv) return;
  const token = ++state.openToken;
  try {
    const page = await fetchLatestPage(conv.id);
    if (token !== state.openToken) return;
    thread.state.messages = page.items;
    thread.state.oldestOffset = page.offset;
    thread.state.total = page.total;
    thread.state.olderBuffer = page.buffer;
    renderThread();
    if (reveal) await revealMessage(reveal, { focus: false });
    else scrollToBottom();
    await loadToolLog(conv.id, token);
  } catch (e) {
    if (token === state.openToken) showError(e.message);
  }
}

/* ---------- tool calls, snapshots, search hits ---------- */

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
  if (stream.state.active || !state.current) {
    tools.setDeciding(card, false);
    return;
  }
  hideError();
  const conv = state.current;
  const block = card.closest('.tool-calls');
  const node = pendingAssistant();
  (block || el.thread.lastElementChild).after(node);
  const controller = new AbortController();
  stream.state.active = { controller, conversationId: conv.id };
  setStreamingUi(true);
  scrollToBottom();
  const events = api.streamToolDecision(conv.id, execution.id, approve, controller.signal, details);
  const result = await consume(events, node, controller, { conversationId: conv.id });
  stream.state.active = null;
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
    thread.state.messages.push(m);
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
    refreshActions();
    if (pending.length) scrollToBottom();
  } catch {
    /* the log is extra information; the chat works without it */
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
  } else if (e.key === 'ArrowUp' && !el.input.value && !e.shiftKey && !e.altKey && !e.ctrlKey && !e.metaKey) {
    // In an empty box, ArrowUp edits the last question (as in ChatGPT and Open WebUI).
    const last = [...el.thread.querySelectorAll('.msg.user')].pop();
    if (!last?.dataset.id || stream.state.active || state.temporary) return;
    e.preventDefault();
    startEdit(last, el.input);
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
  ['ArrowUp', 'Edit the last question (in an empty message box)'],
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
  if (stream.state.active && document.activeElement !== el.input) stopStreaming();
});

el.signOut.addEventListener('click', () => signOut());

window.addEventListener('popstate', () => {
  const id = new URLSearchParams(window.location.search).get('c');
  if (id) openConversation(id);
  else newChat();
});

/* ---------- the modules' part in the page ---------- */

thread.configure({
  busy: () => !!stream.state.active,
  temporary: () => state.temporary,
  conversationId: () => state.current?.id ?? null,
  token: () => state.openToken,
  regenerate: (node) => regenerate(node),
  edit: (node, button) => startEdit(node, button),
  switchVersion: (id) => switchVersion(id),
});
stream.configure({
  onTitle: (title) => {
    if (!state.current || state.current.title) return;
    replaceConversation({ ...state.current, title });
  },
  onTool: (node, execution) => {
    tools.showExecution(node, execution, decideTool);
    if (nearBottom()) scrollToBottom();
  },
});
composer.configure({
  scope: () => (state.current ? state.current.id : 'new'),
  keepsDraft: () => !state.temporary,
  canSend: () => !stream.state.active && state.models.length > 0,
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

// A search hit: shown in its branch. One on another branch than the one shown switches to it
// (the server remembers that, as with the version arrows).
async function revealHit(id, messageId) {
  if (!messageId || (await revealMessage(messageId))) return;
  try {
    await api.showVersion(id, messageId);
  } catch {
    return; // not a message of this chat (any more)
  }
  await openConversation(id);
  await revealMessage(messageId);
}

// The administrator requires zero-access and this user has not turned it on (a session
// opened before it was required): nothing can be written until they do, so say so up front.
async function checkZeroAccess() {
  try {
    const status = await api.request('GET', '/api/privacy');
    $('#zero-access-needed').hidden = !(status.required && status.state === 'off');
  } catch {
    /* the server's refusal, should they write, says the same */
  }
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
  await Promise.all([loadModels(), sidebar.load(), sidebar.loadFolders(), checkZeroAccess()]);
  const params = new URLSearchParams(window.location.search);
  const id = params.get('c');
  if (id) {
    await openConversation(id);
    await revealHit(id, params.get('m'));
  } else newChat();
  state.started = true;
  document.body.dataset.ready = 'true';
}

main().catch((e) => {
  if (e) console.error(e);
});
