// "This chat" dialog on the chat page: the conversation's tool settings (tools offered to the
// model, approval before each call) and its snapshots (take, list, restore, delete).
import * as api from './api.js';
import { confirmDialog, h, parseDate, toast } from './common.js';

function when(value) {
  const d = parseDate(value);
  return d ? d.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' }) : '';
}

// conv: {id, title}; onRestored(conversation, mode) is called after a restore.
export function openChatActions(conv, { onRestored } = {}) {
  const status = h('p', { class: 'muted dlg-status', role: 'status', 'aria-live': 'polite' });
  const say = (t) => {
    status.textContent = t;
  };

  // --- tools ---
  const toolsOn = h('input', { type: 'checkbox', role: 'switch', id: 'tools-enabled', disabled: true });
  const approval = h('input', { type: 'checkbox', role: 'switch', id: 'tools-approval', disabled: true });
  const toolsSection = h(
    'section',
    { class: 'dlg-section', 'aria-labelledby': 'tools-h' },
    h('h3', { id: 'tools-h' }, 'Tools'),
    h('div', { class: 'switch-row' },
      h('label', { class: 'switch', for: 'tools-enabled' }, toolsOn, h('span', {}, 'Let the assistant use tools')),
      h('p', { class: 'hint' }, 'Calculator, current date and time, search in your own chats.')),
    h('div', { class: 'switch-row' },
      h('label', { class: 'switch', for: 'tools-approval' }, approval, h('span', {}, 'Ask me before each tool call')),
      h('p', { class: 'hint' }, 'You see the tool and its arguments and approve or reject the call.')),
  );
  const sync = (t) => {
    toolsOn.checked = t.toolsEnabled;
    approval.checked = t.toolApproval;
    toolsOn.disabled = false;
    approval.disabled = !t.toolsEnabled;
  };
  const saveTools = async (changes) => {
    toolsOn.disabled = true;
    approval.disabled = true;
    try {
      sync(await api.setConversationTools(conv.id, changes));
      say('Tool settings saved.');
    } catch (e) {
      say(e.message);
      api.getConversationTools(conv.id).then(sync, () => {});
    }
  };
  toolsOn.addEventListener('change', () => saveTools({ toolsEnabled: toolsOn.checked }));
  approval.addEventListener('change', () => saveTools({ toolApproval: approval.checked }));

  // --- snapshots ---
  const nameInput = h('input', { id: 'snapshot-name', type: 'text', maxlength: '200', required: true, autocomplete: 'off', placeholder: 'e.g. before the detour' });
  const takeBtn = h('button', { type: 'submit', class: 'btn primary' }, 'Take snapshot');
  const form = h(
    'form',
    { class: 'snap-form', novalidate: true },
    h('label', { for: 'snapshot-name' }, 'Snapshot name'),
    h('div', { class: 'add-row' }, nameInput, takeBtn),
  );
  const list = h('ul', { class: 'snap-list', 'aria-label': 'Snapshots' });
  const snapSection = h(
    'section',
    { class: 'dlg-section', 'aria-labelledby': 'snaps-h' },
    h('h3', { id: 'snaps-h' }, 'Snapshots'),
    h('p', { class: 'hint' }, 'A snapshot keeps this chat as it is now. Restore it later in place, or as a new chat.'),
    form,
    list,
  );

  const close = h('button', { type: 'button', class: 'btn' }, 'Close');
  const dlg = h(
    'dialog',
    { class: 'dialog wide-dialog', 'aria-labelledby': 'chat-actions-title' },
    h('h2', { id: 'chat-actions-title' }, 'This chat'),
    h('p', { class: 'muted dlg-sub' }, conv.title || 'Untitled chat'),
    toolsSection,
    snapSection,
    status,
    h('div', { class: 'dialog-actions' }, close),
  );
  close.addEventListener('click', () => dlg.close());
  dlg.addEventListener('close', () => dlg.remove());

  const restore = async (s, mode) => {
    const ok = await confirmDialog(
      mode === 'new'
        ? { title: 'Restore as a new chat?', body: `A new chat is made from “${s.name}”. This chat stays as it is.`, confirmLabel: 'Restore as new chat' }
        : { title: 'Restore this snapshot?', body: `This chat's messages, title and model become those of “${s.name}” (${s.messageCount} messages). Take a snapshot first to keep the current state.`, confirmLabel: 'Restore', danger: true },
    );
    if (!ok) return;
    try {
      const restored = await api.restoreSnapshot(conv.id, s.id, mode);
      dlg.close();
      toast(mode === 'new' ? 'Restored as a new chat' : 'Snapshot restored');
      onRestored?.(restored, mode);
    } catch (e) {
      say(e.message);
    }
  };

  const remove = async (s) => {
    const ok = await confirmDialog({ title: 'Delete snapshot?', body: `“${s.name}” will be deleted.`, confirmLabel: 'Delete', danger: true });
    if (!ok) return;
    try {
      await api.deleteSnapshot(conv.id, s.id);
      say('Snapshot deleted.');
      await loadSnapshots();
    } catch (e) {
      say(e.message);
    }
  };

  const loadSnapshots = async () => {
    try {
      const snaps = await api.listSnapshots(conv.id);
      if (!snaps.length) {
        list.replaceChildren(h('li', { class: 'muted' }, 'No snapshots yet.'));
        return;
      }
      list.replaceChildren(
        ...snaps.map((s) =>
          h(
            'li',
            { class: 'snap', dataset: { id: s.id } },
            h('div', { class: 'snap-info' },
              h('strong', { class: 'snap-name' }, s.name),
              h('span', { class: 'muted' }, `${s.messageCount} message${s.messageCount === 1 ? '' : 's'} · ${when(s.createdAt)}`)),
            h('div', { class: 'snap-actions' },
              h('button', { type: 'button', class: 'btn', 'aria-label': `Restore ${s.name}`, onclick: () => restore(s, 'replace') }, 'Restore'),
              h('button', { type: 'button', class: 'btn', 'aria-label': `Restore ${s.name} as a new chat`, onclick: () => restore(s, 'new') }, 'As new chat'),
              h('button', { type: 'button', class: 'btn ghost', 'aria-label': `Delete ${s.name}`, onclick: () => remove(s) }, 'Delete')),
          ),
        ),
      );
    } catch (e) {
      list.replaceChildren(h('li', { class: 'form-error', role: 'alert' }, e.message));
    }
  };

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const name = nameInput.value.trim();
    if (!name) {
      say('Give the snapshot a name.');
      nameInput.setAttribute('aria-invalid', 'true');
      nameInput.focus();
      return;
    }
    nameInput.removeAttribute('aria-invalid');
    takeBtn.disabled = true;
    try {
      const s = await api.createSnapshot(conv.id, name);
      nameInput.value = '';
      say(`Snapshot “${s.name}” taken (${s.messageCount} messages).`);
      await loadSnapshots();
    } catch (err) {
      say(err.message);
    } finally {
      takeBtn.disabled = false;
    }
  });

  document.body.append(dlg);
  dlg.showModal();
  nameInput.focus();
  api.getConversationTools(conv.id).then(sync, (e) => say(e.message));
  loadSnapshots();
  return dlg;
}
