// Admin › Tool servers (MCP): list, add, test, enable/disable, remove, per-tool policies, and
// OAuth authorization of HTTP servers. The server does the connecting (and checks HTTP
// addresses) and holds the tokens; this page only shows and asks.
import { request } from './api.js';
import { $, confirmDialog, h, setFormError, toast } from './common.js';

const BASE = '/api/admin/mcp-servers';
const POLICIES = [['auto', 'Run automatically'], ['ask', 'Ask the user'], ['never', 'Never']];

function formBody() {
  const name = $('#mcp-name').value.trim();
  let config;
  try {
    config = JSON.parse($('#mcp-config').value);
  } catch {
    throw new Error('The server entry must be a JSON object, e.g. {"command": "…", "args": []}.');
  }
  if (!config || typeof config !== 'object' || Array.isArray(config)) {
    throw new Error('The server entry must be a JSON object.');
  }
  const access = $('#mcp-access').value;
  const users = $('#mcp-users').value.split(',').map((u) => u.trim()).filter(Boolean);
  return { name, config, access, users };
}

function policySelect(server, tool) {
  const select = h('select', { 'aria-label': `Policy for ${tool.name}` },
    ...POLICIES.map(([value, label]) => h('option', { value, selected: tool.policy === value }, label)));
  select.addEventListener('change', async () => {
    try {
      const policies = { ...server.tool_policies, [tool.name]: select.value };
      await request('PATCH', `${BASE}/${encodeURIComponent(server.name)}`, { body: { tool_policies: policies } });
      server.tool_policies = policies;
      toast(`${tool.name}: ${select.selectedOptions[0].textContent}`);
    } catch (e) {
      toast(e.message, 'error', 5000);
    }
  });
  return select;
}

function oauthState(server) {
  const status = server.oauth_status;
  if (!server.oauth || !status) return '';
  if (server.oauth.grant === 'client_credentials') return ' · OAuth: client credentials';
  if (status.pending) return ' · OAuth: waiting for the authorization';
  if (status.error) return ` · OAuth: authorization failed: ${status.error}`;
  return status.authorized ? ' · OAuth: authorized' : ' · OAuth: not authorized yet';
}

// The authorization happens at the server's authorization server; it sends the browser back
// to Open Chat's callback, which comes back here.
function authorizeButton(server) {
  if (server.oauth?.grant !== 'authorization_code') return '';
  const label = server.oauth_status?.authorized ? 'Authorize again' : 'Authorize';
  const button = h('button', { type: 'button', class: 'btn', 'aria-label': `${label}: ${server.name}` }, label);
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      const started = await request('POST', `${BASE}/${encodeURIComponent(server.name)}/oauth/start`);
      window.location.assign(started.authorization_url);
    } catch (e) {
      button.disabled = false;
      toast(e.message, 'error', 6000);
    }
  });
  return button;
}

function serverItem(server) {
  const where = server.transport === 'stdio' ? [server.command, ...server.args].join(' ') : server.url;
  const health = server.enabled ? (server.healthy ? 'connected' : (server.last_error ? `failing: ${server.last_error}` : 'connecting…')) : 'disabled';
  const secrets = [...server.env_keys, ...server.header_keys, ...(server.oauth?.has_client_secret ? ['OAuth client secret'] : [])];
  const enabled = h('input', { type: 'checkbox', role: 'switch', 'aria-label': `${server.name} enabled`, checked: server.enabled });
  enabled.addEventListener('change', async () => {
    try {
      await request('PATCH', `${BASE}/${encodeURIComponent(server.name)}`, { body: { enabled: enabled.checked } });
      toast(`${server.name} ${enabled.checked ? 'enabled' : 'disabled'}`);
      await load();
    } catch (e) {
      enabled.checked = !enabled.checked;
      toast(e.message, 'error', 5000);
    }
  });
  const test = h('button', { type: 'button', class: 'btn' }, 'Test');
  test.addEventListener('click', async () => {
    test.disabled = true;
    try {
      const probe = await request('POST', `${BASE}/${encodeURIComponent(server.name)}/test`);
      toast(probe.ok ? `${server.name}: ${probe.tools.length} tools` : `${server.name}: ${probe.error}`, probe.ok ? 'info' : 'error', 6000);
    } catch (e) {
      toast(e.message, 'error', 5000);
    } finally {
      test.disabled = false;
    }
  });
  const remove = h('button', { type: 'button', class: 'btn danger', 'aria-label': `Remove ${server.name}` }, 'Remove');
  remove.hidden = server.source === 'file';
  remove.addEventListener('click', async () => {
    const ok = await confirmDialog({ title: `Remove ${server.name}?`, body: 'Its tools are no longer offered.', confirmLabel: 'Remove', danger: true });
    if (!ok) return;
    try {
      await request('DELETE', `${BASE}/${encodeURIComponent(server.name)}`);
      toast(`Removed ${server.name}`);
      await load();
    } catch (e) {
      toast(e.message, 'error', 5000);
    }
  });
  const tools = server.tools.map((tool) => h('li', { class: 'mcp-tool' },
    h('code', {}, tool.qualified_name || tool.name), ' ',
    h('span', { class: 'muted' }, tool.description || ''), ' ',
    policySelect(server, tool)));
  return h('li', { class: 'connection mcp-server', 'data-name': server.name },
    h('strong', {}, server.name), ' ',
    h('code', {}, where || ''), ' ',
    h('span', { class: 'muted mcp-health' }, `· ${health}${server.source === 'file' ? ' · from MCP_SERVERS_FILE' : ''}${secrets.length ? ` · secrets: ${secrets.join(', ')}` : ''}`),
    h('span', { class: 'muted mcp-oauth' }, oauthState(server)), ' ',
    h('label', { class: 'switch' }, enabled), ' ', authorizeButton(server), ' ', test, ' ', remove,
    tools.length ? h('ul', { class: 'mcp-tools', 'aria-label': `Tools of ${server.name}` }, ...tools) : '');
}

async function load() {
  try {
    const data = await request('GET', BASE);
    const items = (data?.data || []).map(serverItem);
    if (!items.length) items.push(h('li', { class: 'muted' }, 'No tool servers yet.'));
    $('#mcp-list').replaceChildren(...items);
    // A server that is still starting shows up connected a moment later.
    if ((data?.data || []).some((s) => s.enabled && !s.healthy)) setTimeout(load, 1500);
  } catch (e) {
    setFormError($('#mcp-error'), e.message);
  }
}

async function testNew() {
  const state = $('#mcp-test-state');
  setFormError($('#mcp-error'), '');
  try {
    state.textContent = 'Connecting…';
    const probe = await request('POST', `${BASE}/test`, { body: formBody() });
    state.textContent = probe.ok ? `Found ${probe.tools.length} tools: ${probe.tools.map((t) => t.name).join(', ')}` : '';
    if (!probe.ok) setFormError($('#mcp-error'), probe.error || 'The server did not answer.');
  } catch (e) {
    state.textContent = '';
    setFormError($('#mcp-error'), e.message);
  }
}

async function save(event) {
  event.preventDefault();
  setFormError($('#mcp-error'), '');
  try {
    const body = formBody();
    await request('POST', BASE, { body });
    toast(`Added ${body.name}`);
    $('#mcp-form').reset();
    $('#mcp-users').hidden = true;
    $('#mcp-test-state').textContent = '';
    await load();
  } catch (e) {
    setFormError($('#mcp-error'), e.message);
  }
}

// Back from an authorization: say how it went, once (a reload does not repeat it).
function reportAuthorization() {
  const params = new URLSearchParams(window.location.search);
  const outcome = params.get('oauth');
  if (!outcome) return;
  const server = params.get('server') || 'The server';
  if (outcome === 'authorized') toast(`${server} is authorized`);
  else toast(`${server}: the authorization did not complete`, 'error', 8000);
  window.history.replaceState(null, '', `${window.location.pathname}${window.location.hash}`);
}

function init() {
  if (!$('#mcp')) return;
  reportAuthorization();
  $('#mcp-test').addEventListener('click', testNew);
  $('#mcp-form').addEventListener('submit', save);
  $('#mcp-access').addEventListener('change', () => {
    $('#mcp-users').hidden = $('#mcp-access').value !== 'users';
  });
  load();
}

init();
