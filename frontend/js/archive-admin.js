// Admin › Archive idle chats: a dry-run preview, then the real run.
import * as api from './api.js';
import { $, confirmDialog, h, parseDate } from './common.js';

const out = $('#archive-result');
const runBtn = $('#archive-run');
let previewed = null;

function days() {
  const v = $('#idle-days').value.trim();
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 36500) return null;
  return Number(v);
}

function list(r) {
  if (!r.count) return null;
  return h('ul', {}, r.conversations.slice(0, 200).map((c) => {
    const d = parseDate(c.updatedAt);
    return h('li', {}, `${c.title || 'Untitled chat'} (user #${c.userId}, last active ${d ? d.toLocaleDateString() : '?'})`);
  }));
}

$('#archive-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const n = days();
  runBtn.disabled = true;
  previewed = null;
  if (!n) {
    out.replaceChildren(h('span', { class: 'form-error', role: 'alert' }, 'Days: a whole number from 1 to 36500.'));
    return;
  }
  try {
    const r = await api.adminArchiveIdle({ days: n, dryRun: true });
    out.replaceChildren(h('strong', {}, `${r.count} chat${r.count === 1 ? '' : 's'} idle for ${n} days or more would be archived.`), list(r));
    previewed = n;
    runBtn.disabled = r.count === 0;
  } catch (err) {
    out.replaceChildren(h('span', { class: 'form-error', role: 'alert' }, err.message));
  }
});

$('#idle-days').addEventListener('input', () => {
  runBtn.disabled = true;
  previewed = null;
});

runBtn.addEventListener('click', async () => {
  if (!previewed) return;
  const ok = await confirmDialog({ title: 'Archive idle chats?', body: `Chats idle for ${previewed} days or more will be archived. Their owners can restore them.`, confirmLabel: 'Archive', danger: true });
  if (!ok) return;
  try {
    const r = await api.adminArchiveIdle({ days: previewed, dryRun: false });
    out.replaceChildren(h('strong', {}, `Archived ${r.count} chat${r.count === 1 ? '' : 's'}.`), list(r));
    runBtn.disabled = true;
    previewed = null;
  } catch (err) {
    out.replaceChildren(h('span', { class: 'form-error', role: 'alert' }, err.message));
  }
});
