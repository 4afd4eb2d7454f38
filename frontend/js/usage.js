// Usage page: the user's (or, for admins, everyone's) daily tokens and messages per model as
// accessible SVG bar charts (each with a data table), the limits that apply and their use,
// and for admins the default and per-user limits.
import * as api from './api.js';
import { $, h, icon, parseDate, requireUser, setFormError } from './common.js';

const SVG = 'http://www.w3.org/2000/svg';
const fmt = new Intl.NumberFormat();
let me = null;

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function isoDay(d) {
  return d.toISOString().slice(0, 10);
}

function daysBetween(start, end) {
  const out = [];
  const d = new Date(`${start}T00:00:00Z`);
  const last = new Date(`${end}T00:00:00Z`);
  while (d <= last && out.length < 400) {
    out.push(isoDay(d));
    d.setUTCDate(d.getUTCDate() + 1);
  }
  return out;
}

function niceMax(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

// A stacked bar chart: one bar per day, one colour per model. `rows`: [{day, model, value}].
function barChart({ title, rows, days, unit }) {
  const models = [...new Set(rows.map((r) => r.model || '(none)'))].sort();
  const byDay = new Map(days.map((d) => [d, new Map()]));
  for (const r of rows) {
    const m = byDay.get(r.day);
    if (m) m.set(r.model || '(none)', (m.get(r.model || '(none)') || 0) + r.value);
  }
  const totals = days.map((d) => [...byDay.get(d).values()].reduce((a, b) => a + b, 0));
  const top0 = Math.max(0, ...totals);
  let max = niceMax(top0);
  if (max < 8) max = Math.max(4, Math.ceil(top0 / 4) * 4); // whole-number ticks
  const W = 760;
  const H = 240;
  const left = 56;
  const bottom = 28;
  const top = 10;
  const plotW = W - left - 10;
  const plotH = H - top - bottom;
  const step = plotW / Math.max(1, days.length);
  const barW = Math.max(2, Math.min(28, step * 0.7));
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${title}: bar chart, ${days.length} days, highest ${fmt.format(Math.max(0, ...totals))} ${unit}` });
  for (let i = 0; i <= 4; i += 1) {
    const y = top + plotH - (plotH * i) / 4;
    svg.append(s('line', { class: i ? 'grid' : 'axis', x1: left, x2: W - 10, y1: y, y2: y }));
    svg.append(s('text', { x: left - 6, y: y + 4, 'text-anchor': 'end' }, fmt.format(Math.round((max * i) / 4))));
  }
  const labelEvery = Math.ceil(days.length / 8);
  days.forEach((d, i) => {
    const x = left + i * step + (step - barW) / 2;
    let y = top + plotH;
    models.forEach((m, mi) => {
      const v = byDay.get(d).get(m) || 0;
      if (!v) return;
      const bh = (plotH * v) / max;
      y -= bh;
      svg.append(s('rect', { class: `bar series-${mi % 8}`, x, y, width: barW, height: Math.max(bh, 1), rx: 2 },
        s('title', {}, `${d} · ${m}: ${fmt.format(v)} ${unit}`)));
    });
    if (i % labelEvery === 0) {
      svg.append(s('text', { x: x + barW / 2, y: H - 8, 'text-anchor': 'middle' }, d.slice(5)));
    }
  });
  const legend = h('ul', { class: 'legend', 'aria-label': 'Models' },
    models.map((m, mi) => h('li', {}, h('span', { class: `sw series-${mi % 8}`, 'aria-hidden': 'true' }), m)));
  const activeDays = days.filter((d, i) => totals[i] > 0);
  const table = h('table', { class: 'data-table' },
    h('caption', {}, `${title}, by day and model`),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Day'), models.map((m) => h('th', { scope: 'col', class: 'num' }, m)), h('th', { scope: 'col', class: 'num' }, 'Total'))),
    h('tbody', {}, activeDays.map((d) => h('tr', {},
      h('th', { scope: 'row' }, d),
      models.map((m) => h('td', { class: 'num' }, fmt.format(byDay.get(d).get(m) || 0))),
      h('td', { class: 'num' }, fmt.format(totals[days.indexOf(d)])))),
    ),
  );
  if (!rows.length) return h('p', { class: 'muted' }, 'No activity in this period.');
  return h('div', {},
    h('div', { class: 'chart' }, svg),
    legend,
    h('details', { class: 'table-details' }, h('summary', {}, 'Show as a table'), h('div', { class: 'table-wrap' }, table)));
}

function renderUsage(u) {
  const days = daysBetween(u.start, u.end);
  $('#tokens-chart').replaceChildren(barChart({
    title: 'Tokens per day', unit: 'tokens', days,
    rows: u.rows.map((r) => ({ day: r.day, model: r.model, value: r.totalTokens })),
  }));
  $('#messages-chart').replaceChildren(barChart({
    title: 'Messages per day', unit: 'messages', days,
    rows: u.rows.map((r) => ({ day: r.day, model: r.model, value: r.messages })),
  }));
  const t = u.totals;
  const stat = (label, value) => h('div', { class: 'stat' }, h('dt', {}, label), h('dd', {}, value));
  $('#stats').replaceChildren(
    stat('Messages', fmt.format(t.messages)),
    stat('Tokens', fmt.format(t.totalTokens)),
    stat('Prompt / completion', `${fmt.format(t.promptTokens)} / ${fmt.format(t.completionTokens)}`),
    stat('Chats created', fmt.format(t.conversations)),
    stat('Average answer time', t.avgMs === null ? '—' : `${fmt.format(Math.round(t.avgMs))} ms`),
  );
  const card = $('#by-user-card');
  card.hidden = !u.byUser;
  if (u.byUser) {
    const rows = [...u.byUser].sort((a, b) => b.totalTokens - a.totalTokens);
    $('#by-user').replaceChildren(h('table', { class: 'data-table' },
      h('thead', {}, h('tr', {}, ['User', 'Messages', 'Prompt tokens', 'Completion tokens', 'Total tokens', 'Chats created']
        .map((c, i) => h('th', { scope: 'col', class: i ? 'num' : null }, c)))),
      h('tbody', {}, rows.length
        ? rows.map((r) => h('tr', {}, h('th', { scope: 'row' }, r.username || `#${r.userId}`),
          [r.messages, r.promptTokens, r.completionTokens, r.totalTokens, r.conversations].map((v) => h('td', { class: 'num' }, fmt.format(v)))))
        : h('tr', {}, h('td', { colspan: '6', class: 'muted' }, 'No activity in this period.'))),
      rows.length ? h('tfoot', {}, h('tr', {}, h('th', { scope: 'row' }, 'Total'),
        [t.messages, t.promptTokens, t.completionTokens, t.totalTokens, t.conversations].map((v) => h('td', { class: 'num' }, fmt.format(v))))) : null,
    ));
  }
}

function resetsIn(value) {
  const d = parseDate(value);
  if (!d) return '';
  return `resets ${d.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' })}`;
}

function renderMeters(l) {
  const meter = (label, used, limit, resets) => {
    const unlimited = limit === null;
    const bar = h('progress', { max: String(unlimited ? 1 : Math.max(1, limit)), value: String(unlimited ? 0 : Math.min(used ?? 0, limit)), 'aria-label': label });
    if (!unlimited && (used ?? 0) >= limit) bar.classList.add('full');
    return h('div', { class: 'meter-row' },
      h('div', { class: 'meter-head' },
        h('strong', {}, label),
        h('span', {}, unlimited ? `${fmt.format(used ?? 0)} used · no limit` : `${fmt.format(used ?? 0)} of ${fmt.format(limit)} · ${resets}`)),
      bar);
  };
  $('#meters').replaceChildren(
    meter('Tokens today', l.tokensToday, l.dailyTokenBudget, resetsIn(l.dayResetsAt)),
    meter('Messages today', l.messagesToday, l.messagesPerDay, resetsIn(l.dayResetsAt)),
    meter('Messages this minute', l.messagesThisMinute, l.messagesPerMinute, resetsIn(l.minuteResetsAt)),
    meter('Conversations', l.conversations, l.maxConversations, 'delete some to free room'),
    meter('Stored bytes', l.storedBytes, l.maxStoredBytes, 'delete conversations to free room'),
  );
}

async function loadUsage() {
  setFormError($('#page-error'), '');
  const start = $('#start').value;
  const end = $('#end').value;
  try {
    const everyone = me.admin && $('#scope').value === 'all';
    const u = everyone ? await api.adminGetUsage({ start, end }) : await api.getUsage({ start, end });
    renderUsage(u);
  } catch (e) {
    setFormError($('#page-error'), e.message);
  }
}

/* ---------- admin limits ---------- */

const LIMIT_FIELDS = [
  ['dailyTokenBudget', 'Daily token budget'],
  ['messagesPerMinute', 'Messages per minute'],
  ['messagesPerDay', 'Messages per day'],
  // Storage limits: an empty default means the server's built-in default, not unlimited.
  ['maxConversations', 'Conversations at most', 'Built-in default'],
  ['maxStoredBytes', 'Stored bytes at most', 'Built-in default'],
];

function limitInputs(host, prefix, values) {
  host.replaceChildren(...LIMIT_FIELDS.map(([k, label, unset = 'No limit']) => {
    const id = `${prefix}-${k}`;
    const input = h('input', { id, name: k, type: 'number', min: '0', step: '1', inputmode: 'numeric', placeholder: prefix === 'user' ? 'Default' : unset });
    input.value = values?.[k] ?? '';
    return h('div', { class: 'field' }, h('label', { for: id }, label), input);
  }));
}

function readLimits(form) {
  const out = {};
  for (const [k, label] of LIMIT_FIELDS) {
    const v = form.elements[k].value.trim();
    if (v !== '' && (!/^\d+$/.test(v) || Number(v) > 1e12)) throw new Error(`${label}: a whole number from 0, or empty.`);
    out[k] = v;
  }
  return out;
}

async function loadUserLimits() {
  const id = $('#limits-user').value;
  if (!id) return;
  $('#user-limits-state').textContent = '';
  try {
    limitInputs($('#user-limits'), 'user', await api.adminGetUserLimits(id));
    $('#user-limits').dataset.user = id;
  } catch (e) {
    $('#user-limits-state').textContent = e.message;
  }
}

async function setupAdmin() {
  $('#scope-field').hidden = false;
  $('#limits-admin').hidden = false;
  const [def, users] = await Promise.all([api.adminGetDefaultLimits(), api.adminListUsers()]);
  limitInputs($('#default-limits'), 'default', def);
  $('#limits-user').replaceChildren(...users.map((u) => h('option', { value: String(u.id) }, u.username)));
  $('#limits-user').addEventListener('change', loadUserLimits);
  await loadUserLimits();
  $('#default-limits-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const state = $('#default-limits-state');
    try {
      limitInputs($('#default-limits'), 'default', await api.adminSetDefaultLimits(readLimits(e.target)));
      state.textContent = 'Default limits saved.';
      api.getMyLimits().then(renderMeters, () => {});
    } catch (err) {
      state.textContent = err.message;
    }
  });
  $('#user-limits-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const state = $('#user-limits-state');
    try {
      limitInputs($('#user-limits'), 'user', await api.adminSetUserLimits($('#limits-user').value, readLimits(e.target)));
      state.textContent = 'User limits saved.';
    } catch (err) {
      state.textContent = err.message;
    }
  });
  $('#reset-user-limits').addEventListener('click', async () => {
    const state = $('#user-limits-state');
    try {
      await api.adminResetUserLimits($('#limits-user').value);
      await loadUserLimits();
      state.textContent = 'This user now has the default limits.';
    } catch (err) {
      state.textContent = err.message;
    }
  });
}

$('#range-form').addEventListener('submit', (e) => {
  e.preventDefault();
  loadUsage();
});
$('#scope').addEventListener('change', loadUsage);

async function main() {
  $('#back').prepend(icon('back', 18));
  me = await requireUser();
  const today = new Date();
  const from = new Date(today.getTime() - 29 * 86400000);
  $('#end').value = isoDay(today);
  $('#start').value = isoDay(from);
  const tasks = [loadUsage(), api.getMyLimits().then(renderMeters, (e) => setFormError($('#page-error'), e.message))];
  if (me.admin) tasks.push(setupAdmin().catch((e) => setFormError($('#page-error'), e.message)));
  await Promise.all(tasks);
  document.body.dataset.ready = 'true';
}

main().catch(() => {});
