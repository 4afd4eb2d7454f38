// Versions of a message and editing a question in place. A message's versions are its
// siblings in the conversation's tree (an edited question, a regenerated answer): the
// arrows ‹ 2/3 › switch between them, and the server remembers the branch shown.
import { h, icon } from './common.js';

// The version being switched to, so a second click waits for the first (one at a time).
const state = { switching: false };

// ‹ i/n › for a message with more than one version; null otherwise. onPick(id) switches.
export function versionNav(message, onPick) {
  const list = message?.versions || [];
  const at = list.indexOf(message.id);
  if (list.length < 2 || at < 0) return null;
  const step = (delta, label, iconName) => {
    const target = list[at + delta];
    const btn = h(
      'button',
      { type: 'button', class: 'icon-btn version-step', 'aria-label': label, title: label },
      icon(iconName, 14),
    );
    btn.disabled = !target;
    btn.addEventListener('click', async () => {
      if (!target || state.switching) return;
      state.switching = true;
      try {
        await onPick(target);
      } finally {
        state.switching = false;
      }
    });
    return btn;
  };
  return h(
    'div',
    { class: 'versions', role: 'group', 'aria-label': `Version ${at + 1} of ${list.length}` },
    step(-1, 'Previous version', 'left'),
    h('span', { class: 'version-count', 'aria-hidden': 'true' }, `${at + 1}/${list.length}`),
    step(1, 'Next version', 'right'),
  );
}

// Turns a question's bubble into a text box: Enter (or Save) calls onSave(text), Escape (or
// Cancel) puts the question back. Returns false when the node is already being edited.
export function editInPlace(node, text, { onSave, onCancel }) {
  if (node.classList.contains('editing')) return false;
  const bubble = node.querySelector('.bubble');
  const foot = node.querySelector('.msg-foot');
  const box = h('textarea', { class: 'edit-box', rows: '3', 'aria-label': 'Edited question' });
  box.value = text;
  const save = h('button', { type: 'button', class: 'btn primary' }, 'Save');
  const cancel = h('button', { type: 'button', class: 'btn' }, 'Cancel');
  const form = h('div', { class: 'edit-form' }, box, h('div', { class: 'edit-actions' }, cancel, save));
  node.classList.add('editing');
  bubble.hidden = true;
  if (foot) foot.hidden = true;
  bubble.after(form);
  const close = () => {
    form.remove();
    bubble.hidden = false;
    if (foot) foot.hidden = false;
    node.classList.remove('editing');
  };
  const finish = (keep) => {
    const value = box.value;
    close();
    if (keep && value.trim() && value !== text) onSave(value);
    else onCancel();
  };
  box.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && !e.altKey && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      finish(true);
    } else if (e.key === 'Escape') {
      e.preventDefault(); // one Escape, one layer: the page does not also stop an answer
      finish(false);
    }
  });
  save.addEventListener('click', () => finish(true));
  cancel.addEventListener('click', () => finish(false));
  const size = () => {
    box.style.height = 'auto';
    box.style.height = `${Math.min(box.scrollHeight, 320)}px`;
  };
  box.addEventListener('input', size);
  box.focus();
  box.setSelectionRange(box.value.length, box.value.length);
  size();
  return true;
}
