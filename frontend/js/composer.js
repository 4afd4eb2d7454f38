// The message box: its draft (kept per conversation in localStorage, so a reload or a
// session expiry loses nothing), its height, text put back after a refusal, and Send.
import { $ } from './common.js';

const el = { input: $('#message'), send: $('#send') };

const hooks = {
  scope: () => 'new', // whose draft: the open conversation's id, or "new"
  keepsDraft: () => true,
  canSend: () => true,
};

export function configure(given) {
  Object.assign(hooks, given);
}

const DRAFT_KEY = 'openchat.draft.';

export function autosize() {
  el.input.style.height = 'auto';
  el.input.style.height = `${Math.min(el.input.scrollHeight, 240)}px`;
}

export function draftKey() {
  return DRAFT_KEY + hooks.scope();
}

export function saveDraft() {
  if (!hooks.keepsDraft()) return; // nothing of a temporary chat is kept, not even its draft
  try {
    if (el.input.value) localStorage.setItem(draftKey(), el.input.value);
    else localStorage.removeItem(draftKey());
  } catch {
    /* storage full or disabled */
  }
}

export function restoreDraft() {
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

export function putBackText(text) {
  // Never lose what the user typed: put it back, ahead of anything typed since.
  const now = el.input.value;
  el.input.value = now.trim() ? `${text}\n${now}` : text;
  autosize();
  saveDraft();
  updateSendEnabled();
}

export function updateSendEnabled() {
  el.send.disabled = !el.input.value.trim() || !hooks.canSend();
}
