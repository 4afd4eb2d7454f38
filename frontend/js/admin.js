// Admin page: users (active, admin, allowed models) and the global model list.
// The backend enforces all of this; the page only refuses to show itself to others.
import * as api from './api.js';
import { resetControl, zeroAccessIds } from './admin-reset.js';
import { $, h, icon, requireUser, setFormError, toast } from './common.js';

let me = null;
let globalModels = [];
let savedModels = [];
let sealedUsers = new Set();

function renderChips() {
  const chips = globalModels.map((m) => {
    const remove = h('button', { type: 'button', class: 'icon-btn', 'aria-label': `Remove ${m}`, title: `Remove ${m}` }, icon('close', 14));
    remove.addEventListener('click', () => {
      globalModels = globalModels.filter((x) => x !== m);
      renderChips();
      $('#new-model').focus();
    });
    return h('li', { class: 'chip' }, h('span', {}, m), remove);
  });
  if (!chips.length) chips.push(h('li', { class: 'muted' }, 'No models yet: nobody can chat until one is added.'));
  $('#model-chips').replaceChildren(...chips);
  const dirty = JSON.stringify(globalModels) !== JSON.stringify(savedModels);
  $('#models-state').textContent = dirty ? 'Unsaved changes' : '';
}

$('#add-model-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = $('#new-model');
  const names = input.value.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
  for (const n of names) if (!globalModels.includes(n)) globalModels.push(n);
  input.value = '';
  renderChips();
  input.focus();
});

$('#save-models').addEventListener('click', async () => {
  const button = $('#save-models');
  button.disabled = true;
  setFormError($('#page-error'), '');
  try {
    const saved = await api.adminSaveModels(globalModels);
    globalModels = saved.models;
    savedModels = [...globalModels];
    renderChips();
    $('#models-state').textContent = 'Models saved.';
    await loadUsers();
  } catch (e) {
    setFormError($('#page-error'), e.message);
  } finally {
    button.disabled = false;
  }
});

function switchInput(label, checked, disabled, onchange) {
  const input = h('input', { type: 'checkbox', role: 'switch', 'aria-label': label, checked, disabled });
  input.addEventListener('change', () => onchange(input));
  return h('label', { class: 'switch' }, input);
}

async function patchUser(user, changes, input) {
  try {
    const updated = await api.adminUpdateUser(user.id, changes);
    Object.assign(user, changes, updated ? Object.fromEntries(Object.entries(updated).filter(([, v]) => v !== null && v !== undefined)) : {});
    toast(`Saved ${user.username}`);
    return true;
  } catch (e) {
    if (input) input.checked = !input.checked;
    toast(e.message, 'error', 5000);
    return false;
  }
}

function accessSummary(user) {
  if (!user.allowedModels) return 'All models';
  if (!user.allowedModels.length) return 'No models';
  return `${user.allowedModels.length} of ${globalModels.length} models`;
}

function modelAccess(user) {
  const details = h('details', { class: 'model-access' });
  const summaryText = h('span', {}, accessSummary(user));
  const summary = h('summary', { 'aria-label': `Allowed models for ${user.username}: ${accessSummary(user)}` }, summaryText, icon('chevron', 14));
  const all = h('input', { type: 'checkbox', checked: !user.allowedModels });
  const boxes = globalModels.map((m) =>
    h('input', { type: 'checkbox', value: m, checked: !user.allowedModels || user.allowedModels.includes(m), disabled: !user.allowedModels }),
  );
  all.addEventListener('change', () => {
    for (const b of boxes) {
      b.disabled = all.checked;
      if (all.checked) b.checked = true;
    }
  });
  const save = h('button', { type: 'button', class: 'btn primary' }, 'Save access');
  save.addEventListener('click', async () => {
    const allowed = all.checked ? null : boxes.filter((b) => b.checked).map((b) => b.value);
    save.disabled = true;
    const ok = await patchUser(user, { allowedModels: allowed });
    save.disabled = false;
    if (ok) {
      user.allowedModels = allowed;
      summaryText.textContent = accessSummary(user);
      summary.setAttribute('aria-label', `Allowed models for ${user.username}: ${accessSummary(user)}`);
      details.open = false;
      summary.focus();
    }
  });
  details.append(
    summary,
    h(
      'div',
      { class: 'choices', role: 'group', 'aria-label': `Allowed models for ${user.username}` },
      h('label', { class: 'check' }, all, h('strong', {}, 'All available models')),
      ...boxes.map((b) => h('label', { class: 'check' }, b, b.value)),
      globalModels.length ? null : h('span', { class: 'muted' }, 'Add models above first.'),
      save,
    ),
  );
  return details;
}

function userRow(user) {
  const self = me && user.id === me.id;
  const active = switchInput(`Active: ${user.username}`, user.active !== false, self, (input) =>
    patchUser(user, { active: input.checked }, input));
  const admin = switchInput(`Admin: ${user.username}`, user.admin, self, (input) =>
    patchUser(user, { admin: input.checked }, input));
  return h(
    'tr',
    { dataset: { user: user.username } },
    h('td', {}, h('div', { class: 'uname' }, user.username, self ? h('span', { class: 'you' }, 'you') : null), h('div', { class: 'muted' }, user.email || '')),
    h('td', { 'data-label': 'Active' }, active),
    h('td', { 'data-label': 'Admin' }, admin),
    h('td', { 'data-label': 'Models' }, modelAccess(user)),
    h('td', { 'data-label': 'Password' }, resetControl(user, { self, zeroAccess: sealedUsers.has(user.id) })),
  );
}

async function loadUsers() {
  const [users, sealed] = await Promise.all([api.adminListUsers(), zeroAccessIds()]);
  sealedUsers = sealed;
  users.sort((a, b) => a.username.localeCompare(b.username));
  $('#users-body').replaceChildren(...users.map(userRow));
}

async function main() {
  $('#back').prepend(icon('back', 18));
  me = await requireUser();
  if (!me.admin) {
    $('#refused').hidden = false;
    document.title = 'Admins only · Open Chat';
    document.body.dataset.ready = 'true';
    return;
  }
  try {
    const models = await api.adminGetModels();
    globalModels = models.models;
    savedModels = [...globalModels];
    renderChips();
    $('#admin-root').hidden = false;
    await loadUsers();
  } catch (e) {
    if (e.status === 403) {
      $('#admin-root').hidden = true;
      $('#refused').hidden = false;
    } else {
      $('#admin-root').hidden = false;
      setFormError($('#page-error'), e.message);
    }
  }
  document.body.dataset.ready = 'true';
}

main().catch(() => {});
