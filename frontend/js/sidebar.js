// The sidebar: the user's chats (pinned first, then by last message, grouped by day), title
// search, the archive view and each chat's menu. The list is virtual: only the rows in view
// (plus a margin) are in the page, so thousands of chats cost what a screenful does; pages of
// the list are fetched from the server as the reader scrolls towards the end.
import * as api from './api.js';
import { $, confirmDialog, dayGroup, h, icon, parseDate, toast } from './common.js';

const PAGE = 200;
const OVERSCAN = 400; // px of rows kept above and below the view, so Tab finds its neighbour
const LOAD_AHEAD = 600; // px before the end of the loaded rows at which the next page is asked for

const el = {
  app: $('#app'),
  list: $('#conv-list'),
  search: $('#search'),
  archived: $('#toggle-archived'),
  newChat: $('#new-chat'),
  openSidebar: $('#open-sidebar'),
  folder: $('#folder-filter'),
  manageFolders: $('#manage-folders'),
};

const state = {
  conversations: [],
  total: 0,
  loading: false,
  showArchived: false,
  query: '',
  folder: '', // the folder whose chats are listed ('' for all chats)
  folders: [], // the user's folders: {id, name, chats}
  activeId: null,
  token: 0,
  rows: [], // [{key, kind: 'group' | 'chat', label?, c?}] in display order
  tops: [], // tops[i]: the row's offset from the list's top; tops[rows.length]: total height
  rendered: new Map(), // key -> node, the rows in the page now
  heights: null, // {group, chat} in px, read from the stylesheet
  menu: null, // {menu, button} of the open chat menu
};

// What the page around the sidebar does when the user acts in it.
const hooks = {
  open: (_id) => {},
  changed: (_conversation) => {},
  deleted: (_id) => {},
  actions: (_conversation) => {},
};

/* ---------- the drawer (phones) ---------- */

export function isPhone() {
  return window.matchMedia('(max-width: 767px)').matches;
}

export function openSidebar(open) {
  el.app.classList.toggle('sidebar-open', open);
  el.openSidebar.setAttribute('aria-expanded', open ? 'true' : 'false');
  if (open) el.newChat.focus();
}

export function focusSearch() {
  if (isPhone()) openSidebar(true);
  el.search.focus();
  el.search.select();
}

/* ---------- the list's data ---------- */

function sortConversations(list) {
  const time = (c) => parseDate(c.updatedAt)?.getTime() ?? 0;
  return [...list].sort((a, b) => (b.pinned - a.pinned) || time(b) - time(a));
}

export function find(id) {
  return state.conversations.find((c) => c.id === id) || null;
}

// Loads the first page of the list (reset) or the next one (when scrolled near the end).
export async function load({ more = false } = {}) {
  if (more && (state.loading || state.conversations.length >= state.total)) return;
  const token = more ? state.token : ++state.token;
  state.loading = true;
  try {
    const { items, total } = await api.listConversations({
      q: state.query.trim() || undefined,
      archived: state.showArchived,
      folder: state.folder || undefined,
      limit: PAGE,
      offset: more ? state.conversations.length : 0,
    });
    if (token !== state.token) return;
    const known = more ? state.conversations : [];
    const ids = new Set(known.map((c) => c.id));
    state.conversations = sortConversations([...known, ...items.filter((c) => !ids.has(c.id))]);
    state.total = total ?? state.conversations.length;
    if (!more) el.list.scrollTop = 0;
    render();
  } catch (e) {
    if (token === state.token && !more) {
      state.rendered.clear();
      el.list.replaceChildren(h('p', { class: 'conv-empty', role: 'alert' }, e.message));
    }
  } finally {
    if (token === state.token) state.loading = false;
  }
}

function unfiltered() {
  return !state.showArchived && !state.query.trim() && !state.folder;
}

// A conversation created or changed elsewhere on the page (a new chat, its title): added to
// the list when the list shows current chats unfiltered, and put in its place.
export function upsert(conversation) {
  const known = find(conversation.id);
  if (known) Object.assign(known, conversation);
  else if (unfiltered()) {
    state.conversations.unshift({ ...conversation });
    state.total += 1;
  }
  state.conversations = sortConversations(state.conversations);
  render();
}

// A known conversation's fields changed (title, model): its row is redrawn where it is.
export function update(changes) {
  const known = find(changes.id);
  if (!known) return;
  Object.assign(known, changes);
  render();
}

// A chat that just got a message moves to the top of its group.
export function bump(id) {
  const c = find(id);
  if (c) c.updatedAt = new Date().toISOString();
  state.conversations = sortConversations(state.conversations);
  render();
}

export function setActive(id) {
  state.activeId = id;
  render();
}

/* ---------- the virtual list ---------- */

function rowHeights() {
  if (!state.heights) {
    const css = getComputedStyle(el.list);
    const px = (name, fallback) => parseFloat(css.getPropertyValue(name)) || fallback;
    state.heights = { group: px('--conv-group-h', 32), chat: px('--conv-row-h', 36) };
  }
  return state.heights;
}

function buildRows() {
  const rows = [];
  let group = null;
  for (const c of state.conversations) {
    const g = state.showArchived ? 'Archived' : c.pinned ? 'Pinned' : dayGroup(c.updatedAt);
    if (g !== group) {
      group = g;
      rows.push({ key: `g:${g}`, kind: 'group', label: g });
    }
    rows.push({ key: `c:${c.id}`, kind: 'chat', c });
  }
  const heights = rowHeights();
  const tops = [0];
  for (const row of rows) tops.push(tops[tops.length - 1] + heights[row.kind]);
  state.rows = rows;
  state.tops = tops;
}

// The first row whose bottom is below y (binary search over the row tops).
function rowAt(y) {
  let lo = 0;
  let hi = state.rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (state.tops[mid + 1] <= y) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function emptyText() {
  if (state.query.trim()) return 'No chats match your search.';
  if (state.folder && state.showArchived) return 'No archived chats in this folder.';
  if (state.folder) return 'No chats in this folder yet. Move one here from its menu (Move to folder).';
  if (state.showArchived) return 'No archived chats.';
  return 'No chats yet. Start one with New chat.';
}

function ensureFrame() {
  let frame = el.list.querySelector(':scope > .conv-rows');
  if (!frame) {
    state.rendered.clear();
    frame = h('div', { class: 'conv-rows' });
    el.list.replaceChildren(frame);
  }
  return frame;
}

// Rebuilds the rows from the data, then paints the window in view.
export function render() {
  buildRows();
  if (!state.rows.length) {
    state.rendered.clear();
    el.list.replaceChildren(h('p', { class: 'conv-empty' }, emptyText()));
    return;
  }
  ensureFrame();
  paint();
}

// Puts in the page exactly the rows that intersect the view (plus OVERSCAN), reusing the
// nodes already there so the focused link keeps its focus while the list scrolls.
function paint() {
  const frame = ensureFrame();
  const { rows, tops } = state;
  frame.style.height = `${tops[rows.length]}px`;
  const top = el.list.scrollTop;
  const first = rowAt(Math.max(0, top - OVERSCAN));
  const last = Math.min(rows.length, rowAt(top + el.list.clientHeight + OVERSCAN) + 1);
  const wanted = new Map();
  for (let i = first; i < last; i += 1) wanted.set(rows[i].key, i);
  for (const [key, node] of state.rendered) {
    if (!wanted.has(key) || node._signature !== signature(rows[wanted.get(key)])) {
      node.remove();
      state.rendered.delete(key);
    }
  }
  let previous = null;
  for (const [key, i] of wanted) {
    let node = state.rendered.get(key);
    if (!node) {
      node = rowNode(rows[i]);
      state.rendered.set(key, node);
    }
    node.style.top = `${tops[i]}px`;
    const inPlace = previous ? previous.nextSibling === node : frame.firstChild === node;
    if (!inPlace) {
      if (previous) previous.after(node);
      else frame.prepend(node);
    }
    previous = node;
  }
  restoreFocus();
  if (tops[rows.length] - (top + el.list.clientHeight) < LOAD_AHEAD) load({ more: true });
}

// Where the keyboard is in the list ({key, menu}): a row rebuilt or moved while focused gets
// its focus back, on the same control (a row scrolled out of the page lets it go).
let focused = null;

el.list.addEventListener('focusin', (e) => {
  const row = e.target.closest?.('.conv-rows > [data-key]');
  focused = row ? { key: row.dataset.key, menu: e.target.classList.contains('conv-menu-btn') } : null;
});
el.list.addEventListener('focusout', (e) => {
  if (e.relatedTarget && !el.list.contains(e.relatedTarget)) focused = null; // left the list
});

function restoreFocus() {
  if (!focused || el.list.contains(document.activeElement)) return;
  if (document.activeElement && document.activeElement !== document.body) return;
  const row = state.rendered.get(focused.key);
  row?.querySelector(focused.menu ? '.conv-menu-btn' : '.conv-link')?.focus({ preventScroll: true });
}

function signature(row) {
  if (row.kind === 'group') return row.key;
  const { c } = row;
  return [c.id, c.title, c.pinned, c.archived, state.activeId === c.id, state.showArchived].join('\u0000');
}

function rowNode(row) {
  const node = row.kind === 'group'
    ? h('h2', { class: 'conv-group', dataset: { key: row.key } }, row.label)
    : conversationItem(row.c);
  node.dataset.key = row.key;
  node._signature = signature(row);
  return node;
}

function conversationItem(c) {
  const active = state.activeId === c.id;
  const linkId = `conv-${c.id}`;
  const link = h(
    'a',
    {
      class: 'conv-link',
      id: linkId,
      href: `/?c=${encodeURIComponent(c.id)}`,
      'aria-current': active ? 'page' : null,
      title: c.title || 'Untitled chat',
    },
    c.pinned && !state.showArchived ? icon('pin', 14) : null,
    h('span', { class: 't' }, c.title || 'Untitled chat'),
  );
  link.addEventListener('click', (e) => {
    if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    hooks.open(c.id);
    if (isPhone()) openSidebar(false);
  });
  const menuBtn = h(
    'button',
    {
      type: 'button',
      class: 'icon-btn conv-menu-btn',
      'aria-label': 'Chat options',
      'aria-describedby': linkId,
      'aria-haspopup': 'menu',
      'aria-expanded': 'false',
      title: 'Chat options',
    },
    icon('dots', 18),
  );
  menuBtn.addEventListener('click', () => openMenu(menuBtn, c));
  return h('div', { class: `conv-item${active ? ' active' : ''}`, dataset: { id: c.id } }, link, menuBtn);
}

// Arrow keys, Home and End move between chats; the target row is scrolled into view (and so
// put in the page) before it is focused.
function chatIndexes() {
  const out = [];
  state.rows.forEach((row, i) => {
    if (row.kind === 'chat') out.push(i);
  });
  return out;
}

function focusRow(index, { menu = false } = {}) {
  const row = state.rows[index];
  const top = state.tops[index];
  const bottom = state.tops[index + 1];
  const l = el.list;
  if (top < l.scrollTop) l.scrollTop = top;
  else if (bottom > l.scrollTop + l.clientHeight) l.scrollTop = bottom - l.clientHeight;
  paint();
  state.rendered.get(row.key)?.querySelector(menu ? '.conv-menu-btn' : '.conv-link')?.focus({ preventScroll: true });
}

// Tab within and between rows is done here too (link -> its menu button -> next chat, and
// back): the row is scrolled into view and drawn first, so focus never lands on a row about
// to leave the page (left to the browser, a Tab that scrolled the list could lose focus). Tab past the last loaded chat leaves the list as usual.
function tabKey(e, at, chats) {
  if (e.altKey || e.ctrlKey || e.metaKey) return false;
  const onMenu = e.target.classList.contains('conv-menu-btn');
  const onLink = e.target.classList.contains('conv-link');
  if (!e.shiftKey && onMenu && at < chats.length - 1) focusRow(chats[at + 1]);
  else if (!e.shiftKey && onLink) focusRow(chats[at], { menu: true });
  else if (e.shiftKey && onMenu) focusRow(chats[at]);
  else if (e.shiftKey && onLink && at > 0) focusRow(chats[at - 1], { menu: true });
  else return false;
  return true;
}

el.list.addEventListener('keydown', (e) => {
  const item = e.target.closest?.('.conv-rows > .conv-item');
  if (!item || !e.target.matches('.conv-link, .conv-menu-btn')) return;
  const chats = chatIndexes();
  const at = chats.indexOf(state.rows.findIndex((r) => r.key === item.dataset.key));
  if (at < 0) return;
  if (e.key === 'Tab') {
    if (tabKey(e, at, chats)) e.preventDefault();
    return;
  }
  if (!e.target.classList.contains('conv-link')) return;
  let next = null;
  if (e.key === 'ArrowDown') next = Math.min(chats.length - 1, at + 1);
  else if (e.key === 'ArrowUp') next = Math.max(0, at - 1);
  else if (e.key === 'Home') next = 0;
  else if (e.key === 'End') next = chats.length - 1;
  if (next === null) return;
  e.preventDefault();
  focusRow(chats[next]);
});

el.list.addEventListener(
  'scroll',
  () => {
    closeMenu(false);
    if (state.rows.length) paint();
  },
  { passive: true },
);
window.addEventListener('resize', () => {
  closeMenu(false);
  if (state.rows.length) paint();
});

/* ---------- a chat's menu ---------- */

export function menuOpen() {
  return state.menu !== null;
}

export function closeMenu(focusBack = true) {
  if (!state.menu) return;
  const { menu, button } = state.menu;
  menu.remove();
  button.setAttribute('aria-expanded', 'false');
  state.menu = null;
  if (focusBack && button.isConnected) button.focus();
}

function openMenu(button, c) {
  if (state.menu && state.menu.button === button) {
    closeMenu();
    return;
  }
  closeMenu(false);
  const item = (label, iconName, action, cls = '') =>
    h('li', { role: 'none' }, h('button', { type: 'button', role: 'menuitem', class: cls, onclick: () => { closeMenu(true); action(); } }, icon(iconName, 16), label));
  const menu = h(
    'ul',
    { class: 'menu', role: 'menu', 'aria-label': 'Chat options' },
    item('Rename', 'edit', () => startRename(c)),
    state.showArchived ? null : item(c.pinned ? 'Unpin' : 'Pin', 'pin', () => patch(c, { pinned: !c.pinned })),
    item(c.archived ? 'Unarchive' : 'Archive', 'archive', () => patch(c, { archived: !c.archived })),
    item('Move to folder', 'folder', () => moveDialog(c)),
    item('Snapshots and tools', 'camera', () => {
      closeMenu(false);
      hooks.actions(c);
    }),
    item('Delete', 'trash', () => remove(c), 'danger'),
  );
  document.body.append(menu);
  const r = button.getBoundingClientRect();
  const mh = menu.offsetHeight;
  const top = r.bottom + 4 + mh > window.innerHeight ? r.top - mh - 4 : r.bottom + 4;
  menu.style.top = `${Math.max(8, top)}px`;
  menu.style.left = `${Math.max(8, Math.min(r.left, window.innerWidth - menu.offsetWidth - 8))}px`;
  button.setAttribute('aria-expanded', 'true');
  state.menu = { menu, button };
  const items = [...menu.querySelectorAll('[role=menuitem]')];
  items[0].focus();
  menu.addEventListener('keydown', (e) => {
    const i = items.indexOf(document.activeElement);
    if (e.key === 'ArrowDown') items[(i + 1) % items.length].focus();
    else if (e.key === 'ArrowUp') items[(i - 1 + items.length) % items.length].focus();
    else if (e.key === 'Home') items[0].focus();
    else if (e.key === 'End') items[items.length - 1].focus();
    else if (e.key === 'Escape' || e.key === 'Tab') closeMenu();
    else return;
    e.preventDefault();
  });
}

document.addEventListener('pointerdown', (e) => {
  const open = state.menu;
  if (open && !open.menu.contains(e.target) && !open.button.contains(e.target)) closeMenu(false);
});

/* ---------- actions ---------- */

async function patch(c, changes) {
  try {
    const updated = await api.updateConversation(c.id, changes);
    const merged = { ...c, ...changes, ...(updated || {}) };
    state.conversations = state.conversations.map((x) => (x.id === c.id ? { ...x, ...merged } : x));
    hooks.changed(merged);
    if ('archived' in changes) {
      state.conversations = state.conversations.filter((x) => x.id !== c.id || x.archived === state.showArchived);
      state.total = Math.max(state.conversations.length, state.total - 1);
      toast(changes.archived ? 'Chat archived' : 'Chat restored');
    } else if ('pinned' in changes) {
      toast(changes.pinned ? 'Chat pinned' : 'Chat unpinned');
    }
    state.conversations = sortConversations(state.conversations);
    render();
    return true;
  } catch (e) {
    toast(e.message, 'error', 5000);
    return false;
  }
}

function linkOf(id) {
  return el.list.querySelector(`.conv-item[data-id="${CSS.escape(id)}"] .conv-link`);
}

function startRename(c) {
  const item = el.list.querySelector(`.conv-item[data-id="${CSS.escape(c.id)}"]`);
  if (!item) return;
  const input = h('input', {
    type: 'text',
    class: 'conv-rename',
    'aria-label': 'Chat title',
    maxlength: '200',
  });
  input.value = c.title || '';
  item.replaceChildren(input);
  input.focus();
  input.select();
  let done = false;
  const finish = async (save) => {
    if (done) return;
    done = true;
    // The row is drawn afresh from the data, whether the title changed or not.
    state.rendered.delete(`c:${c.id}`);
    item.remove();
    const title = input.value.trim();
    if (save && title && title !== c.title) {
      const ok = await patch(c, { title });
      if (ok) toast('Chat renamed');
      else render();
    } else {
      render();
    }
    linkOf(c.id)?.focus();
  };
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      finish(true);
    } else if (e.key === 'Escape') {
      e.preventDefault();
      finish(false);
    }
  });
  input.addEventListener('blur', () => finish(true));
}

async function remove(c) {
  const ok = await confirmDialog({
    title: 'Delete chat?',
    body: `“${c.title || 'Untitled chat'}” and all its messages will be deleted. This cannot be undone.`,
    confirmLabel: 'Delete',
    danger: true,
  });
  if (!ok) return;
  try {
    await api.deleteConversation(c.id);
  } catch (e) {
    if (e.status !== 404) {
      toast(e.message, 'error', 5000);
      return;
    }
  }
  state.conversations = state.conversations.filter((x) => x.id !== c.id);
  state.total = Math.max(0, state.total - 1);
  render();
  toast('Chat deleted');
  hooks.deleted(c.id);
}

/* ---------- search and the archive view ---------- */

let searchTimer = 0;
el.search.addEventListener('input', () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => {
    state.query = el.search.value;
    load();
  }, 220);
});

el.archived.addEventListener('click', () => {
  state.showArchived = !state.showArchived;
  el.archived.setAttribute('aria-pressed', state.showArchived ? 'true' : 'false');
  const label = state.showArchived ? 'Show current chats' : 'Show archived';
  el.archived.setAttribute('aria-label', label);
  el.archived.title = label;
  load();
});

/* ---------- folders ---------- */

function folderLabel(f) {
  return `${f.name} (${f.chats})`;
}

function fillFolderFilter() {
  if (state.folder && !state.folders.some((f) => f.id === state.folder)) {
    state.folder = ''; // deleted meanwhile
    load();
  }
  el.folder.replaceChildren(
    h('option', { value: '' }, 'All chats'),
    ...state.folders.map((f) => h('option', { value: f.id }, folderLabel(f))),
  );
  el.folder.value = state.folder;
}

export async function loadFolders() {
  try {
    state.folders = await api.listFolders();
  } catch (e) {
    toast(e.message, 'error', 5000);
    return;
  }
  fillFolderFilter();
}

el.folder.addEventListener('change', () => {
  state.folder = el.folder.value;
  load();
});

// A <dialog> with a title, a body and buttons; focus goes back where it was when it closes.
function openDialog(title, ...content) {
  const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': 'folder-dlg-title' }, h('h2', { id: 'folder-dlg-title' }, title), ...content);
  const before = document.activeElement;
  dlg.addEventListener('close', () => {
    dlg.remove();
    if (before instanceof HTMLElement && before.isConnected) before.focus();
  });
  document.body.append(dlg);
  dlg.showModal();
  return dlg;
}

function moveDialog(c) {
  const select = h(
    'select',
    { id: 'move-folder' },
    h('option', { value: '' }, 'No folder'),
    ...state.folders.map((f) => h('option', { value: f.id }, f.name)),
  );
  select.value = state.folder;
  const fresh = h('input', { type: 'text', id: 'move-new-folder', maxlength: '80', autocomplete: 'off' });
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const cancel = h('button', { type: 'button', class: 'btn' }, 'Cancel');
  const move = h('button', { type: 'submit', class: 'btn primary' }, 'Move');
  const form = h(
    'form',
    {},
    h('div', { class: 'field' }, h('label', { for: 'move-folder' }, 'Folder'), select),
    h('div', { class: 'field' }, h('label', { for: 'move-new-folder' }, 'Or a new folder named'), fresh),
    error,
    h('div', { class: 'dialog-actions' }, cancel, move),
  );
  const dlg = openDialog(`Move “${c.title || 'Untitled chat'}”`, form);
  cancel.addEventListener('click', () => dlg.close());
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    move.disabled = true;
    try {
      let target = state.folders.find((f) => f.id === select.value) || null;
      if (fresh.value.trim()) target = await api.createFolder(fresh.value.trim());
      await api.moveToFolder(c.id, target ? target.id : null);
      dlg.close();
      toast(target ? `Moved to ${target.name}` : 'Taken out of its folder');
      if (state.folder && state.folder !== (target ? target.id : '')) {
        state.conversations = state.conversations.filter((x) => x.id !== c.id);
        state.total = Math.max(0, state.total - 1);
        render();
      }
      await loadFolders();
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
      move.disabled = false;
    }
  });
  select.focus();
}

function folderRow(f, refresh) {
  const name = h('input', { type: 'text', value: f.name, maxlength: '80', 'aria-label': `Name of the folder ${f.name}` });
  const rename = h('button', { type: 'button', class: 'btn' }, 'Rename');
  const remove = h('button', { type: 'button', class: 'btn danger', 'aria-label': `Delete the folder ${f.name}` }, 'Delete');
  const save = async () => {
    const wanted = name.value.trim();
    if (!wanted || wanted === f.name) return;
    try {
      await api.renameFolder(f.id, wanted);
      toast('Folder renamed');
      await refresh();
    } catch (err) {
      toast(err.message, 'error', 5000);
    }
  };
  rename.addEventListener('click', save);
  name.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      save();
    }
  });
  remove.addEventListener('click', async () => {
    try {
      toast(await api.deleteFolder(f.id));
      await refresh();
    } catch (err) {
      toast(err.message, 'error', 5000);
    }
  });
  return h('li', {}, name, rename, remove);
}

function manageDialog() {
  const list = h('ul', { class: 'folder-list' });
  const name = h('input', { type: 'text', id: 'new-folder-name', maxlength: '80', autocomplete: 'off' });
  const create = h('button', { type: 'submit', class: 'btn primary' }, 'Create');
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const close = h('button', { type: 'button', class: 'btn' }, 'Close');
  const refresh = async () => {
    await loadFolders();
    list.replaceChildren(...state.folders.map((f) => folderRow(f, refresh)));
    if (!state.folders.length) list.replaceChildren(h('li', { class: 'muted' }, 'No folders yet.'));
  };
  const form = h(
    'form',
    { class: 'folder-new' },
    h('label', { for: 'new-folder-name', class: 'visually-hidden' }, 'New folder name'),
    name,
    create,
  );
  name.placeholder = 'New folder name';
  const dlg = openDialog('Folders', form, error, list, h('div', { class: 'dialog-actions' }, close));
  close.addEventListener('click', () => dlg.close());
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.hidden = true;
    try {
      const made = await api.createFolder(name.value);
      name.value = '';
      toast(`Folder ${made.name} created`);
      await refresh();
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    }
  });
  refresh();
  name.focus();
}

el.manageFolders.replaceChildren(icon('folder', 18));
el.manageFolders.addEventListener('click', () => {
  closeMenu(false);
  manageDialog();
});

// open(id), changed(conversation), deleted(id), actions(conversation): what the page does.
export function connect({ open, changed, deleted, actions }) {
  Object.assign(hooks, { open, changed, deleted, actions });
}
