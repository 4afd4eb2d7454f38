// Admin › Zero-access conversations: required for everyone, or not (a server setting).
// The environment variable ZERO_ACCESS_REQUIRED, when set, wins: the switch is then fixed.
import * as api from './api.js';
import { $, confirmDialog, parseDate, toast } from './common.js';

const input = $('#zero-access-required');
const state = $('#zero-access-state');

function describe(r) {
  const parts = [];
  if (r.source === 'configuration') {
    parts.push(`${r.required ? 'Required' : 'Not required'}: fixed by the server's configuration (ZERO_ACCESS_REQUIRED); change it there.`);
  } else if (r.source === 'admin') {
    const when = parseDate(r.updated_at);
    const by = r.updated_by ? ` by ${r.updated_by}` : '';
    parts.push(`${r.required ? 'Required' : 'Not required'} since ${when ? when.toLocaleString() : '?'}${by}.`);
  } else {
    parts.push('Not required: each user decides in Settings, Privacy.');
  }
  if (r.required) {
    const n = r.users_without;
    parts.push(n ? `${n} user${n === 1 ? ' has' : 's have'} not turned it on yet; they are asked to before they can write.` : 'Every user has it on.');
  }
  return parts.join(' ');
}

function render(r) {
  input.checked = r.required;
  input.disabled = r.source === 'configuration';
  state.textContent = describe(r);
}

async function load() {
  try {
    render(await api.request('GET', '/api/admin/zero-access'));
  } catch (e) {
    if (e.status !== 403) state.textContent = e.message;
  }
}

input.addEventListener('change', async () => {
  const required = input.checked;
  if (required) {
    const ok = await confirmDialog({
      title: 'Require zero-access for everyone?',
      body: 'Users who have not turned it on cannot write until they do (their next sign-in turns it on and shows their recovery key). A password reset can then never recover anyone\'s conversations: only their recovery key can.',
      confirmLabel: 'Require it',
    });
    if (!ok) {
      input.checked = false;
      return;
    }
  }
  input.disabled = true;
  try {
    render(await api.request('PUT', '/api/admin/zero-access', { body: { required } }));
    toast(required ? 'Zero-access is now required for everyone' : 'Zero-access is no longer required');
  } catch (e) {
    input.checked = !required;
    input.disabled = false;
    toast(e.message, 'error', 5000);
  }
});

load();
