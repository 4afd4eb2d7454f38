// Small helpers shared by every page: element building, auth guard, notices, formatting.
import * as api from './api.js';

// h('button', {class: 'x', onclick: fn, 'aria-label': 'Send'}, 'text', child...)
// Text children become text nodes, so nothing passed here is ever parsed as HTML.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

// Inline SVG icons built from fixed path data (never from user content).
const ICONS = {
  plus: 'M12 5v14M5 12h14',
  menu: 'M4 6h16M4 12h16M4 18h16',
  send: 'M5 12h14M13 6l6 6-6 6',
  stop: 'M7 7h10v10H7z',
  gear: 'M12 15a3 3 0 1 0 0-6 3 3 0 0 0 0 6zM19.4 15a1.7 1.7 0 0 0 .3 1.8l.1.1a2 2 0 1 1-2.8 2.8l-.1-.1a1.7 1.7 0 0 0-1.8-.3 1.7 1.7 0 0 0-1 1.5V21a2 2 0 1 1-4 0v-.1a1.7 1.7 0 0 0-1.1-1.5 1.7 1.7 0 0 0-1.8.3l-.1.1a2 2 0 1 1-2.8-2.8l.1-.1a1.7 1.7 0 0 0 .3-1.8 1.7 1.7 0 0 0-1.5-1H3a2 2 0 1 1 0-4h.1a1.7 1.7 0 0 0 1.5-1.1 1.7 1.7 0 0 0-.3-1.8l-.1-.1a2 2 0 1 1 2.8-2.8l.1.1a1.7 1.7 0 0 0 1.8.3H9a1.7 1.7 0 0 0 1-1.5V3a2 2 0 1 1 4 0v.1a1.7 1.7 0 0 0 1 1.5 1.7 1.7 0 0 0 1.8-.3l.1-.1a2 2 0 1 1 2.8 2.8l-.1.1a1.7 1.7 0 0 0-.3 1.8V9a1.7 1.7 0 0 0 1.5 1H21a2 2 0 1 1 0 4h-.1a1.7 1.7 0 0 0-1.5 1z',
  shield: 'M12 3l8 3v6c0 5-3.5 8-8 9-4.5-1-8-4-8-9V6z',
  out: 'M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4M16 17l5-5-5-5M21 12H9',
  dots: 'M5 12h.01M12 12h.01M19 12h.01',
  search: 'M11 18a7 7 0 1 0 0-14 7 7 0 0 0 0 14zM21 21l-4.3-4.3',
  copy: 'M9 9h11v11H9zM5 15H4V4h11v1',
  check: 'M5 12l5 5L20 7',
  refresh: 'M20 11a8 8 0 1 0-2.3 5.7M20 4v7h-7',
  pin: 'M12 17v5M8 3h8l-1 6 3 4H6l3-4z',
  archive: 'M3 4h18v4H3zM5 8v12h14V8M10 12h4',
  trash: 'M3 6h18M8 6V4h8v2M6 6l1 14h10l1-14',
  edit: 'M4 20h4L19 9l-4-4L4 16zM14 6l4 4',
  back: 'M19 12H5M11 18l-6-6 6-6',
  chevron: 'M6 9l6 6 6-6',
  left: 'M15 6l-6 6 6 6',
  right: 'M9 6l6 6-6 6',
  close: 'M6 6l12 12M18 6L6 18',
  down: 'M12 5v14M6 13l6 6 6-6',
  chart: 'M4 20V10M10 20V4M16 20v-7M22 20H2',
  camera: 'M4 8h3l2-3h6l2 3h3v11H4zM12 17a3.5 3.5 0 1 0 0-7 3.5 3.5 0 0 0 0 7z',
  folder: 'M3 6h6l2 2h10v11H3z',
};

export function icon(name, size = 18) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('width', String(size));
  svg.setAttribute('height', String(size));
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.classList.add('icon');
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', ICONS[name] || '');
  svg.append(path);
  return svg;
}

export function loginUrl() {
  const here = window.location.pathname + window.location.search + window.location.hash;
  const next = here === '/' || here === '/index.html' ? '' : `?next=${encodeURIComponent(here)}`;
  return `/login.html${next}`;
}

// Only this origin's own pages are accepted as a post-login destination. `next` is resolved
// the way the browser would resolve it (which drops tabs and newlines, and reads `/\host`
// and `//host` as other hosts), and kept only if it stays on this origin. The answer is
// absolute: a path such as `//evil` (from `/.//evil`) would be another host again.
export function safeNext(value) {
  if (!value || typeof value !== 'string' || !value.startsWith('/')) return '/';
  let url;
  try {
    url = new URL(value, window.location.origin);
  } catch {
    return '/';
  }
  if (url.origin !== window.location.origin || !url.pathname.startsWith('/')) return '/';
  if (/^\/(login|register)\.html/.test(url.pathname)) return '/';
  return url.href;
}

// Resolves to the signed-in user; signed-out visitors are sent to the sign-in page.
export async function requireUser() {
  api.onUnauthorized(() => window.location.replace(loginUrl()));
  let user;
  try {
    user = await api.me();
  } catch (e) {
    showFatal(e.message || 'Cannot reach the server.');
    throw e;
  }
  if (!user) {
    window.location.replace(loginUrl());
    // Never resolves: the page is going away.
    return new Promise(() => {});
  }
  document.documentElement.classList.remove('auth-pending');
  return user;
}

export function showFatal(message) {
  document.documentElement.classList.remove('auth-pending');
  const box = h(
    'div',
    { class: 'fatal', role: 'alert' },
    h('h1', {}, 'Open Chat is unavailable'),
    h('p', {}, message),
    h('button', { class: 'btn primary', type: 'button', onclick: () => window.location.reload() }, 'Try again'),
  );
  document.body.replaceChildren(box);
}

export async function signOut() {
  try {
    await api.logout();
  } finally {
    window.location.replace('/login.html?signedout=1');
  }
}

// Brief status messages at the bottom of the screen, announced to screen readers.
export function toast(message, kind = 'info', ms = 3500) {
  let host = $('#toasts');
  if (!host) {
    host = h('div', { id: 'toasts', class: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.append(host);
  }
  const t = h('div', { class: `toast ${kind}` }, message);
  host.append(t);
  setTimeout(() => t.classList.add('leaving'), ms);
  setTimeout(() => t.remove(), ms + 400);
}

// A modal confirmation built on <dialog>; resolves true when confirmed.
export function confirmDialog({ title, body, confirmLabel = 'Confirm', danger = false }) {
  return new Promise((resolve) => {
    const cancel = h('button', { type: 'button', class: 'btn', value: 'cancel' }, 'Cancel');
    const ok = h('button', { type: 'button', class: `btn ${danger ? 'danger' : 'primary'}` }, confirmLabel);
    const dlg = h(
      'dialog',
      { class: 'dialog', 'aria-labelledby': 'dlg-title' },
      h('h2', { id: 'dlg-title' }, title),
      body ? h('p', { class: 'muted' }, body) : null,
      h('div', { class: 'dialog-actions' }, cancel, ok),
    );
    let result = false;
    const before = document.activeElement; // focus goes back there when the dialog closes
    cancel.addEventListener('click', () => dlg.close());
    ok.addEventListener('click', () => {
      result = true;
      dlg.close();
    });
    dlg.addEventListener('close', () => {
      dlg.remove();
      if (before instanceof HTMLElement && before.isConnected) before.focus();
      resolve(result);
    });
    document.body.append(dlg);
    dlg.showModal();
    cancel.focus();
  });
}

export function formatDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(Number(ms))) return '';
  const n = Number(ms);
  return n < 1000 ? `${Math.round(n)} ms` : `${(n / 1000).toFixed(n < 10000 ? 1 : 0)} s`;
}

export function parseDate(value) {
  if (!value) return null;
  // Naive ISO timestamps from the server are UTC.
  const s = typeof value === 'string' && /T\d\d:\d\d(:\d\d(\.\d+)?)?$/.test(value) ? `${value}Z` : value;
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? null : d;
}

export function dayGroup(value) {
  const d = parseDate(value);
  if (!d) return 'Older';
  const now = new Date();
  const start = new Date(now.getFullYear(), now.getMonth(), now.getDate()).getTime();
  const t = d.getTime();
  if (t >= start) return 'Today';
  if (t >= start - 86400000) return 'Yesterday';
  if (t >= start - 7 * 86400000) return 'Previous 7 days';
  if (t >= start - 30 * 86400000) return 'Previous 30 days';
  return 'Older';
}

export function initials(name) {
  return (name || '?').trim().slice(0, 1).toUpperCase() || '?';
}

// Copies text; falls back to a hidden textarea where the async clipboard is unavailable
// (plain http on a LAN address is not a secure context).
export async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    /* fall through */
  }
  const ta = h('textarea', { class: 'visually-hidden', 'aria-hidden': 'true', tabindex: '-1' });
  ta.value = text;
  document.body.append(ta);
  ta.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  }
  ta.remove();
  return ok;
}

// Shows a message inside a form's error slot (role=alert so it is announced).
export function setFormError(slot, message) {
  slot.textContent = message || '';
  slot.hidden = !message;
}

// An information dialog (title, then rows of [key, what it does]) that gives focus back to
// where it was when it closes. Escape closes it (the browser's own dialog behaviour).
export function shortcutsDialog(title, rows) {
  const before = document.activeElement;
  const close = h('button', { type: 'button', class: 'btn primary' }, 'Close');
  const list = h(
    'dl',
    { class: 'shortcuts' },
    rows.flatMap(([keys, what]) => [h('dt', {}, h('kbd', {}, keys)), h('dd', {}, what)]),
  );
  const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': 'shortcuts-title' }, h('h2', { id: 'shortcuts-title' }, title), list, h('div', { class: 'dialog-actions' }, close));
  close.addEventListener('click', () => dlg.close());
  dlg.addEventListener('close', () => {
    dlg.remove();
    if (before instanceof HTMLElement && before.isConnected) before.focus();
  });
  document.body.append(dlg);
  dlg.showModal();
  close.focus();
  return dlg;
}
