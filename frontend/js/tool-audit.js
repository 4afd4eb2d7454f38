// Usage › Tool calls (admins): every user's tool calls from the audit log, newest first.
// Arguments and results are shown as text (never parsed as HTML), cut to a readable length.
import { request } from './api.js';
import { $, h, requireUser, setFormError } from './common.js';

const clip = (text, n = 160) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);

function row({ user, execution: x }) {
  const args = typeof x.arguments === 'string' ? x.arguments : JSON.stringify(x.arguments);
  const tool = x.server ? `${x.tool_name} (${x.server})` : x.tool_name;
  const when = x.created_at ? new Date(x.created_at).toLocaleString() : '';
  return h('tr', {},
    h('td', {}, when),
    h('td', {}, user || '—'),
    h('td', {}, h('code', {}, tool)),
    h('td', {}, x.status + (x.reason && x.status === 'rejected' ? `: ${clip(x.reason, 80)}` : '')),
    h('td', {}, x.approved_by || (x.approval === 'auto' ? 'ran automatically' : '—')),
    h('td', {}, h('code', {}, clip(args))),
    h('td', {}, clip(x.result ?? '')));
}

async function load() {
  const query = new URLSearchParams({ limit: '100' });
  const server = $('#tool-audit-server').value.trim();
  const user = $('#tool-audit-user').value.trim();
  if (server) query.set('server', server);
  if (user) query.set('username', user);
  try {
    const data = await request('GET', `/api/admin/tool-executions?${query}`);
    const rows = (data?.data || []).map(row);
    $('#tool-audit-body').replaceChildren(...rows);
    $('#tool-audit-count').textContent = `${data?.count ?? 0} calls${rows.length < (data?.count ?? 0) ? `, the newest ${rows.length} shown` : ''}`;
  } catch (e) {
    setFormError($('#page-error'), e.message);
  }
}

async function init() {
  const me = await requireUser();
  if (!me?.admin) return;
  $('#tool-audit').hidden = false;
  $('#tool-audit-form').addEventListener('submit', (event) => {
    event.preventDefault();
    load();
  });
  await load();
}

init().catch(() => {});
