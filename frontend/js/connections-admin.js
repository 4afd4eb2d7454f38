// Admin › Connections: model providers answering for everyone. Test lists a provider's
// models (through the server, which checks the address); the admin ticks those users may pick.
import * as api from './api.js';
import { $, confirmDialog, h, setFormError, toast } from './common.js';

let tested = []; // the model names the last Test listed

function describeServer({ serverConnection, guarded }) {
  const server = serverConnection === 'mock'
    ? "Other models are answered by the built-in offline model (mock): no provider key is set in the server's environment."
    : `Other models are answered by the server's own connection (${serverConnection}, from its environment).`;
  const guard = guarded ? ' Connections here follow the same address rules as users\' own (GUARD_ADMIN_CONNECTIONS).' : '';
  $('#server-connection').textContent = server + guard;
}

function connectionItem(c) {
  const remove = h('button', { type: 'button', class: 'btn danger', 'aria-label': `Remove ${c.name}` }, 'Remove');
  remove.addEventListener('click', async () => {
    const ok = await confirmDialog({ title: `Remove ${c.name}?`, body: 'Its models leave everyone\'s list.', confirmLabel: 'Remove', danger: true });
    if (!ok) return;
    try {
      await api.adminDeleteConnection(c.id);
      toast(`Removed ${c.name}`);
      await load();
    } catch (e) {
      toast(e.message, 'error', 5000);
    }
  });
  const enabled = h('input', { type: 'checkbox', role: 'switch', 'aria-label': `${c.name} enabled`, checked: c.enabled });
  enabled.addEventListener('change', async () => {
    try {
      await api.adminUpdateConnection(c.id, { enabled: enabled.checked });
      toast(`${c.name} ${enabled.checked ? 'enabled' : 'disabled'}`);
    } catch (e) {
      enabled.checked = !enabled.checked;
      toast(e.message, 'error', 5000);
    }
  });
  const key = c.hasApiKey ? `key ${c.apiKeyHint}` : 'no key';
  return h('li', { class: 'connection', 'data-id': String(c.id) },
    h('strong', {}, c.name), ' ',
    h('code', {}, c.baseUrl), ' ',
    h('span', { class: 'muted' }, `· ${key} · ${c.models.length ? c.models.join(', ') : 'no models offered'}`), ' ',
    h('label', { class: 'switch' }, enabled), ' ',
    remove);
}

async function load() {
  try {
    const data = await api.adminListConnections();
    describeServer(data);
    const items = data.connections.map(connectionItem);
    if (!items.length) items.push(h('li', { class: 'muted' }, 'No connections yet.'));
    $('#connection-list').replaceChildren(...items);
  } catch (e) {
    setFormError($('#conn-error'), e.message);
  }
}

function renderChoices() {
  const choices = tested.map((name) => h('label', { class: 'check' },
    h('input', { type: 'checkbox', value: name, name: 'conn-model' }), ` ${name}`));
  if (!tested.length) choices.push(h('p', { class: 'muted' }, 'The provider listed no models.'));
  $('#conn-model-choices').replaceChildren(...choices);
  $('#conn-models').hidden = false;
}

$('#conn-test').addEventListener('click', async () => {
  const button = $('#conn-test');
  const state = $('#conn-test-state');
  setFormError($('#conn-error'), '');
  button.disabled = true;
  state.textContent = 'Testing…';
  try {
    tested = await api.adminTestConnection({ baseUrl: $('#conn-url').value.trim(), apiKey: $('#conn-key').value.trim() });
    state.textContent = `Connected: ${tested.length} model${tested.length === 1 ? '' : 's'} listed.`;
    renderChoices();
  } catch (e) {
    state.textContent = '';
    setFormError($('#conn-error'), e.message);
  } finally {
    button.disabled = false;
  }
});

$('#connection-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  setFormError($('#conn-error'), '');
  const models = [...document.querySelectorAll('input[name="conn-model"]:checked')].map((i) => i.value);
  const name = $('#conn-name').value.trim();
  const baseUrl = $('#conn-url').value.trim();
  if (!name || !baseUrl) {
    setFormError($('#conn-error'), 'Give the connection a name and a base URL.');
    return;
  }
  try {
    await api.adminCreateConnection({ name, baseUrl, apiKey: $('#conn-key').value.trim(), models });
    toast(`Saved ${name}`);
    $('#connection-form').reset();
    $('#conn-models').hidden = true;
    $('#conn-test-state').textContent = '';
    tested = [];
    await load();
  } catch (err) {
    setFormError($('#conn-error'), err.message);
  }
});

load();
