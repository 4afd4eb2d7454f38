// Admin page: resetting a user's password, with the warning zero-access users need first.
import * as api from './api.js';
import { h, toast } from './common.js';

// The ids of users with zero-access conversations (their content a reset cannot recover).
export async function zeroAccessIds() {
  const data = await api.request('GET', '/api/admin/users', { query: { limit: 500 } });
  return new Set((data.data || []).filter((u) => u.zero_access).map((u) => u.id));
}

export function resetControl(user, { self, zeroAccess }) {
  if (self) return h('span', { class: 'muted' }, 'In Settings');
  // A button and a panel (not <details>): the row's other disclosure stays the only summary.
  const details = h('div', { class: 'password-reset' });
  const toggle = h('button', { type: 'button', class: 'btn ghost', 'aria-expanded': 'false' }, 'Reset password');
  const setOpen = (open) => {
    toggle.setAttribute('aria-expanded', String(open));
    panel.hidden = !open;
  };
  toggle.addEventListener('click', () => setOpen(panel.hidden));
  const input = h('input', { type: 'password', minlength: '8', autocomplete: 'new-password', 'aria-label': `New password for ${user.username}` });
  const understood = h('input', { type: 'checkbox' });
  const button = h('button', { type: 'button', class: zeroAccess ? 'btn danger' : 'btn primary' }, zeroAccess ? 'Reset anyway' : 'Reset password');
  const warning = zeroAccess
    ? h(
        'p',
        { class: 'reset-warning', role: 'note' },
        `${user.username} uses zero-access conversations. A password reset cannot recover them: `
          + 'they stay sealed until the user enters their recovery key, and without it they are lost.',
      )
    : null;
  button.addEventListener('click', async () => {
    if (input.value.length < 8) {
      toast('The new password needs at least 8 characters.', 'error', 5000);
      input.focus();
      return;
    }
    if (zeroAccess && !understood.checked) {
      toast('Confirm that you understand the conversations stay sealed.', 'error', 5000);
      understood.focus();
      return;
    }
    button.disabled = true;
    try {
      await api.request('PATCH', `/api/admin/users/${encodeURIComponent(user.id)}`, { body: { password: input.value } });
      input.value = '';
      setOpen(false);
      toast(`Password of ${user.username} reset; their sessions were signed out`);
    } catch (e) {
      toast(e.message, 'error', 5000);
    } finally {
      button.disabled = false;
    }
  });
  const panel = h(
    'div',
    { class: 'choices', role: 'group', 'aria-label': `Reset the password of ${user.username}`, hidden: true },
    warning,
    input,
    zeroAccess ? h('label', { class: 'check' }, understood, 'I understand their conversations stay sealed') : null,
    button,
  );
  details.append(toggle, panel);
  return details;
}
