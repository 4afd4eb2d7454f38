// Tool calls in the chat: cards for proposed calls (Approve / Reject) and for executed ones
// (tool, arguments, result, status, duration, who approved), compact and expandable.
// Everything is built with DOM calls (text nodes only); nothing here is parsed as HTML.
import { formatDuration, h } from './common.js';

const STATUS = {
  pending: 'Waiting for approval',
  running: 'Running',
  succeeded: 'Succeeded',
  failed: 'Failed',
  rejected: 'Rejected',
};

function argsText(args) {
  try {
    const keys = Object.keys(args || {});
    if (!keys.length) return '{}';
    return JSON.stringify(args, null, 2);
  } catch {
    return String(args);
  }
}

// One line summary of the arguments, e.g. `2+3*4` for {expression: "2+3*4"}.
function argsInline(args) {
  const vals = Object.values(args || {});
  if (!vals.length) return '';
  const s = vals.length === 1 && typeof vals[0] !== 'object' ? String(vals[0]) : JSON.stringify(args);
  return s.length > 60 ? `${s.slice(0, 57)}…` : s;
}

function approvalText(x) {
  if (x.approval === 'approved') return x.approvedBy ? `Approved by ${x.approvedBy}` : 'Approved';
  if (x.approval === 'rejected') return x.approvedBy ? `Rejected by ${x.approvedBy}` : 'Rejected';
  if (x.approval === 'pending') return 'Waiting for approval';
  return 'Ran automatically';
}

// An MCP tool is `server__tool`: shown as the tool, from its server.
function toolTitle(x) {
  if (!x.server) return x.tool;
  const own = x.tool.startsWith(`${x.server}__`) ? x.tool.slice(x.server.length + 2) : x.tool;
  return `${own} (from ${x.server})`;
}

function pendingCard(x, onDecide) {
  const approve = h('button', { type: 'button', class: 'btn primary' }, 'Approve');
  const edit = h('button', { type: 'button', class: 'btn' }, 'Edit arguments');
  const reject = h('button', { type: 'button', class: 'btn' }, 'Reject');
  const argsPre = h('pre', { class: 'tool-pre' }, argsText(x.arguments));
  const editor = h('textarea', { class: 'tool-args-editor', rows: '6', spellcheck: 'false', 'aria-label': `Arguments for ${x.tool}`, hidden: true });
  const reasonInput = h('input', { type: 'text', class: 'tool-reason', maxlength: '1000', placeholder: 'If you reject it: why? (optional, the assistant is told)', 'aria-label': 'Reason for rejecting' });
  const problem = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const card = h(
    'div',
    {
      class: 'tool-card pending',
      role: 'group',
      'aria-label': `Tool call waiting for approval: ${x.tool}`,
      dataset: { execId: x.id, status: 'pending' },
    },
    h('p', { class: 'tool-ask' }, h('strong', {}, `Run ${toolTitle(x)}?`), ' The assistant wants to use this tool. It runs only if you approve.'),
    h('div', { class: 'tool-label' }, 'Arguments'),
    argsPre,
    editor,
    reasonInput,
    problem,
    h('div', { class: 'tool-actions' }, approve, edit, reject),
  );
  const decide = (ok, details) => {
    if (card.classList.contains('deciding')) return;
    setDeciding(card, true);
    onDecide?.(x, ok, card, details);
  };
  edit.addEventListener('click', () => {
    editor.value = argsText(x.arguments);
    editor.hidden = false;
    argsPre.hidden = true;
    edit.hidden = true;
    editor.focus();
  });
  approve.addEventListener('click', () => {
    if (editor.hidden) return decide(true);
    let parsed;
    try {
      parsed = JSON.parse(editor.value);
    } catch {
      parsed = null;
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      problem.textContent = 'The arguments must be a JSON object.';
      problem.hidden = false;
      editor.focus();
      return undefined;
    }
    return decide(true, { arguments: parsed });
  });
  reject.addEventListener('click', () => {
    const reason = reasonInput.value.trim();
    decide(false, reason ? { reason } : undefined);
  });
  reasonInput.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      event.preventDefault();
      reject.click();
    }
  });
  card._execution = x;
  return card;
}

export function setDeciding(card, on) {
  card.classList.toggle('deciding', on);
  for (const b of card.querySelectorAll('button')) b.disabled = on;
}

function doneCard(x) {
  const duration = formatDuration(x.durationMs);
  const summaryBits = [STATUS[x.status] || x.status, duration, x.approval === 'auto' ? '' : approvalText(x)].filter(Boolean);
  const rows = [
    ['Tool', toolTitle(x)],
    ['Arguments', h('pre', { class: 'tool-pre' }, argsText(x.arguments))],
    ['Result', x.result === null || x.result === undefined ? '—' : h('pre', { class: 'tool-pre' }, String(x.result))],
    ['Status', STATUS[x.status] || x.status],
    ['Duration', duration || '—'],
    ['Approval', approvalText(x)],
    ...(x.reason && x.status === 'rejected' ? [['Reason', x.reason]] : []),
  ];
  if (x.model) rows.push(['Model', x.model]);
  const card = h(
    'details',
    { class: `tool-card status-${x.status}`, dataset: { execId: x.id, status: x.status } },
    h(
      'summary',
      {},
      h('span', { class: 'tool-badge', 'aria-hidden': 'true' }, 'ƒ'),
      h('span', { class: 'tool-name' }, x.tool),
      argsInline(x.arguments) ? h('code', { class: 'tool-inline' }, argsInline(x.arguments)) : null,
      x.result !== null && x.result !== undefined && x.status === 'succeeded'
        ? h('span', { class: 'tool-arrow' }, '→ ', h('code', {}, String(x.result).slice(0, 40)))
        : null,
      h('span', { class: `tool-status s-${x.status}` }, summaryBits.join(' · ')),
    ),
    h('dl', { class: 'tool-detail' }, rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
  );
  card._execution = x;
  return card;
}

export function toolCard(x, onDecide) {
  return x.status === 'pending' && x.approval === 'pending' ? pendingCard(x, onDecide) : doneCard(x);
}

function blockFor(node, { create = true } = {}) {
  const prev = node.previousElementSibling;
  if (prev && prev.classList.contains('tool-calls')) return prev;
  if (!create) return null;
  const block = h('div', { class: 'tool-calls', role: 'group', 'aria-label': 'Tool calls' });
  node.before(block);
  return block;
}

// Shows (or updates, by execution id) a tool card just above the answer `node`.
export function showExecution(node, x, onDecide) {
  const block = blockFor(node);
  const card = toolCard(x, onDecide);
  const old = x.id ? block.querySelector(`[data-exec-id="${CSS.escape(x.id)}"]`) : null;
  if (old) old.replaceWith(card);
  else block.append(card);
  return card;
}

// After a reload: puts the conversation's tool log under each question it belongs to.
// Returns the pending cards (the caller may focus one).
export function attachToolLog(thread, executions, onDecide) {
  const byQuestion = new Map();
  for (const x of executions) {
    if (!x.questionId) continue;
    if (!byQuestion.has(x.questionId)) byQuestion.set(x.questionId, []);
    byQuestion.get(x.questionId).push(x);
  }
  const pending = [];
  for (const [qid, list] of byQuestion) {
    const q = thread.querySelector(`.msg.user[data-id="${CSS.escape(qid)}"]`);
    if (!q) continue;
    let block = q.nextElementSibling;
    if (!block || !block.classList.contains('tool-calls')) {
      block = h('div', { class: 'tool-calls', role: 'group', 'aria-label': 'Tool calls' });
      q.after(block);
    }
    for (const x of list) {
      if (block.querySelector(`[data-exec-id="${CSS.escape(x.id)}"]`)) continue;
      const card = toolCard(x, onDecide);
      block.append(card);
      if (x.status === 'pending' && x.approval === 'pending') pending.push(card);
    }
    // A question waiting for a decision has no answer yet: drop the "no answer" placeholder.
    if (block.querySelector('.tool-card.pending')) {
      const next = block.nextElementSibling;
      if (next && next.classList.contains('assistant') && next._message?.failed) next.remove();
    }
  }
  return pending;
}
