// Every call the browser makes to the Open Chat backend lives in this module, so the
// JSON contract (docs/API.md) is adapted in one place. Pages only see the normalised
// shapes returned here, never raw responses.

const CSRF_COOKIE = 'csrf_token';
const CSRF_HEADER = 'X-CSRF-Token';

export class ApiError extends Error {
  constructor(status, message, data = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.data = data;
  }
}

// Called with the ApiError whenever the backend answers 401 to an authenticated call.
let unauthorizedHandler = null;
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

export function readCookie(name) {
  for (const part of document.cookie.split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    if (part.slice(0, i).trim() === name) return decodeURIComponent(part.slice(i + 1).trim());
  }
  return '';
}

const FALLBACK = {
  0: 'Cannot reach the server. Check your connection and try again.',
  400: 'The request was not accepted.',
  401: 'Your session has ended. Please sign in again.',
  403: 'You are not allowed to do that.',
  404: 'Not found. It may have been deleted.',
  409: 'That conflicts with something that already exists.',
  413: 'That is too large to send.',
  422: 'Some of the fields are not valid.',
  429: 'Too many requests. Wait a moment and try again.',
  500: 'Something went wrong on the server. Try again.',
  502: 'The AI service could not be reached. Try again shortly.',
  503: 'The service is unavailable right now. Try again shortly.',
  504: 'The AI service took too long to answer. Try again.',
};

function fieldName(loc) {
  if (!Array.isArray(loc)) return '';
  const parts = loc.filter((p) => p !== 'body' && p !== 'query' && p !== 'path');
  return parts.join('.');
}

// Turns any backend error body (FastAPI's {"detail": ...} in its string, object or
// validation-list forms, or {"error": ...}) into one sentence a person can read.
export function describeError(status, data) {
  let d = data;
  if (d && typeof d === 'object' && !Array.isArray(d)) {
    d = d.detail ?? d.error ?? d.message ?? d.msg ?? null;
  }
  if (d && typeof d === 'object' && !Array.isArray(d)) {
    d = d.message ?? d.msg ?? d.detail ?? d.error ?? null;
  }
  if (Array.isArray(d)) {
    d = d
      .map((e) => {
        if (typeof e === 'string') return e;
        const msg = String(e?.msg ?? e?.message ?? '').replace(/^Value error, /, '');
        const field = fieldName(e?.loc);
        return field ? `${field}: ${msg}` : msg;
      })
      .filter(Boolean)
      .join('; ');
  }
  // A proxy's HTML error page is not a sentence.
  if (typeof d === 'string' && d.trim() && !/<\/?[a-z][^>]*>/i.test(d)) return d.trim();
  if (FALLBACK[status]) return FALLBACK[status];
  if (status >= 500) return FALLBACK[500];
  return `Request failed (${status}).`;
}

async function errorFrom(res) {
  let data = null;
  try {
    const text = await res.text();
    try {
      data = JSON.parse(text);
    } catch {
      data = text && text.length < 300 && !/<html/i.test(text) ? text : null;
    }
  } catch {
    data = null;
  }
  const err = new ApiError(res.status, describeError(res.status, data), data);
  return err;
}

function buildUrl(path, query) {
  const url = new URL(path, window.location.origin);
  if (query) {
    for (const [k, v] of Object.entries(query)) {
      if (v === undefined || v === null || v === '') continue;
      url.searchParams.set(k, String(v));
    }
  }
  return url;
}

function headersFor(method, hasBody, accept = 'application/json') {
  const headers = { Accept: accept };
  if (hasBody) headers['Content-Type'] = 'application/json';
  if (!['GET', 'HEAD', 'OPTIONS'].includes(method)) {
    const token = readCookie(CSRF_COOKIE);
    if (token) headers[CSRF_HEADER] = token;
  }
  return headers;
}

// Reads are retried (twice, after a short pause) when the server is briefly unavailable;
// writes never are, so nothing is ever sent twice.
const RETRY_STATUS = new Set([500, 502, 503, 504]);
const RETRY_DELAYS_MS = [250, 800];
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function send(method, path, { body, query, signal, accept, quiet401 = false } = {}) {
  const hasBody = body !== undefined;
  const retries = method === 'GET' ? RETRY_DELAYS_MS : [];
  let res;
  for (let attempt = 0; ; attempt += 1) {
    try {
      res = await fetch(buildUrl(path, query), {
        method,
        headers: headersFor(method, hasBody, accept),
        body: hasBody ? JSON.stringify(body) : undefined,
        credentials: 'same-origin',
        signal,
      });
    } catch (e) {
      if (e?.name === 'AbortError') throw e;
      if (attempt < retries.length) {
        await pause(retries[attempt]);
        continue;
      }
      throw new ApiError(0, FALLBACK[0]);
    }
    if (!RETRY_STATUS.has(res.status) || attempt >= retries.length) break;
    await pause(retries[attempt]);
  }
  if (!res.ok) {
    const err = await errorFrom(res);
    if (res.status === 401 && !quiet401 && unauthorizedHandler) unauthorizedHandler(err);
    throw err;
  }
  return res;
}

export async function request(method, path, opts = {}) {
  const res = await send(method, path, opts);
  if (res.status === 204) return null;
  const type = res.headers.get('content-type') || '';
  if (type.includes('json')) return res.json();
  const text = await res.text();
  return text || null;
}

/* ---------- shapes ----------
   Each normaliser reads exactly the fields of one schema of the OpenAPI document (named
   above it); tests/frontend/test_api_fields.py records every field this module reads from
   real responses and fails on any the document does not describe. */

// UserPublic
export function normalizeUser(u) {
  if (!u) return null;
  return {
    id: u.id,
    username: u.username,
    email: u.email ?? '',
    fullName: u.full_name ?? '',
    admin: Boolean(u.is_admin),
    active: u.is_active,
    createdAt: u.created_at ?? null,
  };
}

// AdminUserPublic: a user as the admin sees them, with their allowed models.
export function normalizeAdminUser(u) {
  // An empty allowed list means "the global list applies" (docs/API.md): shown as null.
  const allowed = u.allowed_models;
  return { ...normalizeUser(u), allowedModels: allowed && allowed.length ? allowed : null };
}

// ConversationPublic
export function normalizeConversation(c) {
  if (!c) return null;
  return {
    id: c.uuid,
    title: c.title ?? '',
    defaultModel: c.default_model ?? null,
    pinned: c.pinned,
    archived: c.archived,
    createdAt: c.created_at,
    updatedAt: c.updated_at,
    // The message shown last: the branch on screen ends there.
    currentMessageId: c.current_message_uuid ?? null,
  };
}

// ResponsePublic: how an answer was written (null for a question).
export function normalizeResponse(r) {
  if (!r) return null;
  return {
    model: r.model_used,
    promptTokens: r.tokens_prompt,
    completionTokens: r.tokens_completion,
    totalTokens: r.tokens_total,
    timeMs: r.completion_time_ms,
  };
}

// MessagePublic
export function normalizeMessage(m) {
  if (!m) return null;
  return {
    id: m.uuid,
    role: m.role,
    content: m.content,
    model: m.model ?? null,
    createdAt: m.created_at,
    meta: normalizeResponse(m.response),
    stopped: m.response?.finish_reason === 'stopped',
    parentId: m.parent_uuid ?? null,
    // Every version of this message (its siblings in the tree, itself among them).
    versions: m.versions,
  };
}

// A list body ({data, count}: ConversationsPublic, MessagesPublic, SnapshotsPublic, ...).
function listOf(data) {
  return { items: data.data, total: data.count };
}

/* ---------- auth ---------- */

export async function register({ username, email, password, fullName }) {
  const body = { username, email, password };
  if (fullName) body.full_name = fullName;
  return normalizeUser(await request('POST', '/api/auth/register', { body, quiet401: true }));
}

export async function login({ username, password }) {
  const session = await request('POST', '/api/auth/login', { body: { username, password }, quiet401: true });
  return normalizeUser(session.user); // LoginResponse
}

export async function logout() {
  try {
    await request('POST', '/api/auth/logout', { quiet401: true });
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 401) throw e;
  }
}

// Needs the current password; this session stays, every other one of the user ends.
export async function changePassword({ currentPassword, newPassword }) {
  const body = { current_password: currentPassword, new_password: newPassword };
  return request('POST', '/api/auth/password', { body });
}

// Ends every session of the user, this one included.
export async function logoutEverywhere() {
  return request('POST', '/api/auth/logout-everywhere');
}

// The signed-in user, or null when signed out.
export async function me() {
  try {
    return normalizeUser(await request('GET', '/api/auth/me', { quiet401: true }));
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 403)) return null;
    throw e;
  }
}

// Public server configuration (ServerConfigPublic).
export async function config() {
  const c = await request('GET', '/api/config', { quiet401: true });
  return {
    allowRegistration: c.allow_registration,
    mockLlm: c.mock_llm,
    defaultModel: c.default_model ?? null,
    maxMessageChars: c.max_message_chars,
  };
}

/* ---------- conversations ---------- */

export async function listConversations({ q, archived = false, folder, limit = 100, offset = 0 } = {}) {
  const data = await request('GET', '/api/conversations', {
    query: { q, archived: archived ? 'true' : 'false', folder, limit, offset },
  });
  const { items, total } = listOf(data);
  return { items: items.map(normalizeConversation), total };
}

export async function createConversation({ title, model } = {}) {
  const body = {};
  if (title) body.title = title;
  if (model) body.default_model = model;
  return normalizeConversation(await request('POST', '/api/conversations', { body }));
}

export async function getConversation(id) {
  return normalizeConversation(
    await request('GET', `/api/conversations/${encodeURIComponent(id)}`),
  );
}

// changes: {title?, defaultModel?, pinned?, archived?}
export async function updateConversation(id, changes) {
  const body = {};
  if ('title' in changes) body.title = changes.title;
  if ('defaultModel' in changes) body.default_model = changes.defaultModel;
  if ('pinned' in changes) body.pinned = changes.pinned;
  if ('archived' in changes) body.archived = changes.archived;
  return normalizeConversation(
    await request('PATCH', `/api/conversations/${encodeURIComponent(id)}`, { body }),
  );
}

export async function deleteConversation(id) {
  await request('DELETE', `/api/conversations/${encodeURIComponent(id)}`);
}

/* ---------- messages ---------- */

// A page of the branch shown (the path from the first question to the message the
// conversation shows last), oldest first; total is the whole path's length.
export async function listMessages(id, { limit = 50, offset = 0 } = {}) {
  const data = await request('GET', `/api/conversations/${encodeURIComponent(id)}/messages`, {
    query: { limit, offset },
  });
  const { items, total } = listOf(data);
  return { items: items.map(normalizeMessage), total, currentId: data.current_message_uuid ?? null };
}

// Shows the branch through a message (a version arrow); the server remembers it.
export async function showVersion(id, messageId) {
  return normalizeConversation(
    await request('PUT', `/api/conversations/${encodeURIComponent(id)}/current`, {
      body: { message_uuid: messageId },
    }),
  );
}

export async function clearMessages(id) {
  await request('DELETE', `/api/conversations/${encodeURIComponent(id)}/messages`);
}

// Non-streaming send: {user, assistant, title}
export async function sendMessage(id, { content, model }) {
  const body = { content };
  if (model) body.model = model;
  const data = await request('POST', `/api/conversations/${encodeURIComponent(id)}/messages`, {
    body,
  });
  return normalizeFinal(data);
}

// ToolTurnPublic (a turn's JSON answer, and the `done` event): both messages, the title, the
// tool calls made, and `pending` when one waits for approval (then no answer yet).
export function normalizeFinal(turn) {
  return {
    user: normalizeMessage(turn.user_message),
    assistant: normalizeMessage(turn.assistant_message),
    title: turn.conversation?.title ?? null,
    pending: Boolean(turn.pending),
    toolExecutions: (turn.tool_executions || []).map(normalizeToolExecution),
  };
}

/* ---------- streaming (server-sent events over fetch) ---------- */

// Parses an SSE byte stream into {event, data, id} objects (data JSON-decoded when it is
// JSON). Handles CRLF, multi-line data and events split across network chunks.
export async function* readSSE(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  const flush = function* (block) {
    let event = 'message';
    let id = null;
    const data = [];
    for (const line of block.split(/\r\n|\r|\n/)) {
      if (!line || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
      else if (field === 'id') id = value;
    }
    if (!data.length && event === 'message') return;
    const raw = data.join('\n');
    let parsed = raw;
    try {
      parsed = raw ? JSON.parse(raw) : null;
    } catch {
      parsed = raw;
    }
    yield { event, data: parsed, id };
  };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let m;
      while ((m = /\r\n\r\n|\n\n|\r\r/.exec(buffer))) {
        const block = buffer.slice(0, m.index);
        buffer = buffer.slice(m.index + m[0].length);
        yield* flush(block);
      }
    }
    if (buffer.trim()) yield* flush(buffer);
  } finally {
    reader.releaseLock();
  }
}

// The events of an answer stream, as the server documents them (`x-events` of the
// text/event-stream responses in the OpenAPI document): start, then tool_call (waiting for
// approval) or tool_result per tool call, delta*, and done or error.
export const SSE_EVENTS = ['start', 'delta', 'tool_call', 'tool_result', 'done', 'error'];

// One SSE event as the chat page acts on it:
//   {type: 'start', user, title} | {type: 'delta', text} | {type: 'tool_call'|'tool_result',
//   execution} | {type: 'done', user, assistant, title, pending, toolExecutions}
//   | {type: 'error', status, message} | {type: 'ignore'} (an event the server does not send)
export function classifyEvent({ event, data }) {
  switch (event) {
    case 'start': // AnswerStart
      return { type: 'start', user: normalizeMessage(data.user_message), title: data.title ?? null };
    case 'delta': // {content}
      return { type: 'delta', text: data.content };
    case 'tool_call':
    case 'tool_result':
      return { type: event, execution: normalizeToolExecution(data.execution) };
    case 'done':
      return { type: 'done', ...normalizeFinal(data) };
    case 'error': // {detail, status, user_message}
      return { type: 'error', status: data.status, message: describeError(data.status, data) };
    default:
      return { type: 'ignore' };
  }
}

async function* streamFrom(path, body, signal, method = 'POST', query = undefined) {
  const res = await send(method, path, { body, signal, query, accept: 'text/event-stream' });
  for await (const evt of readSSE(res.body)) {
    const c = classifyEvent(evt);
    if (c.type !== 'ignore') yield c;
  }
}

export function streamMessage(id, { content, model, editOf }, signal) {
  const body = { content };
  if (model) body.model = model;
  if (editOf) body.edit_of = editOf;
  return streamFrom(`/api/conversations/${encodeURIComponent(id)}/messages`, body, signal);
}

// The answer being written in a conversation, from `after` characters on (the server keeps
// writing it whoever watches). Throws ApiError 404 when no answer is being written.
export function followAnswer(id, { after = 0 } = {}, signal) {
  const query = after ? { after } : undefined;
  return streamFrom(`/api/conversations/${encodeURIComponent(id)}/answer`, undefined, signal, 'GET', query);
}

// Ask the server to stop the answer; what was written so far is stored as the answer.
export async function stopAnswer(id) {
  await request('POST', `/api/conversations/${encodeURIComponent(id)}/answer/stop`);
}

// A temporary chat: the page sends the messages so far; the server stores none of them.
export function streamTemporary({ messages, model }, signal) {
  const body = { messages };
  if (model) body.model = model;
  return streamFrom('/api/temporary-chat', body, signal);
}

// replaces: the answer to write a new version of (any answer; the old one is kept), or a
// question to answer again; by default the message shown last.
export function streamRegenerate(id, { model, replaces } = {}, signal) {
  const body = {};
  if (model) body.model = model;
  if (replaces) body.message_uuid = replaces;
  return streamFrom(`/api/conversations/${encodeURIComponent(id)}/regenerate`, body, signal);
}

/* ---------- settings and models ---------- */

// SettingsPublic
export function normalizeSettings(s) {
  return {
    apiKeyMasked: s.api_key_hint ?? '',
    apiKeySet: s.has_api_key,
    baseUrl: s.openai_base_url ?? '',
    defaultModel: s.default_model ?? '',
    userConnectionsAllowed: s.user_connections_allowed,
  };
}

export async function getSettings() {
  return normalizeSettings(await request('GET', '/api/settings'));
}

// changes: {apiKey? (string; '' clears it), baseUrl?, defaultModel?}
export async function saveSettings(changes) {
  const body = {};
  // An empty value clears the setting; null is the documented way to say so.
  if ('apiKey' in changes) body.openai_api_key = changes.apiKey || null;
  if ('baseUrl' in changes) body.openai_base_url = changes.baseUrl || null;
  if ('defaultModel' in changes) body.default_model = changes.defaultModel || null;
  return normalizeSettings(await request('PUT', '/api/settings', { body }));
}

// The models this user may use (ModelsPublic): {models: [names], offline: [names the
// built-in mock answers for], defaultModel}
export async function listModels() {
  const data = await request('GET', '/api/models');
  return {
    models: data.data.map((m) => m.id),
    offline: data.data.filter((m) => m.offline).map((m) => m.id),
    defaultModel: data.default_model ?? null,
  };
}

/* ---------- admin ---------- */

export async function adminListUsers() {
  const data = await request('GET', '/api/admin/users', { query: { limit: 500 } });
  return listOf(data).items.map(normalizeAdminUser);
}

// changes: {active?, admin?, allowedModels? (array of names, or null for "all models")}
export async function adminUpdateUser(id, changes) {
  const body = {};
  if ('active' in changes) body.is_active = changes.active;
  if ('admin' in changes) body.is_admin = changes.admin;
  if ('allowedModels' in changes) body.allowed_models = changes.allowedModels;
  return normalizeAdminUser(await request('PATCH', `/api/admin/users/${encodeURIComponent(id)}`, { body }));
}

// AdminModelsPublic
export async function adminGetModels() {
  const data = await request('GET', '/api/admin/models');
  return { models: data.models, defaultModel: data.default_model ?? null };
}

export async function adminSaveModels(models) {
  const data = await request('PUT', '/api/admin/models', { body: { models } });
  return { models: data.models };
}

/* ---------- admin: provider connections ---------- */

function normalizeConnection(c) {
  return {
    id: c.id,
    name: c.name,
    baseUrl: c.base_url,
    hasApiKey: Boolean(c.has_api_key),
    apiKeyHint: c.api_key_hint || null,
    models: Array.isArray(c.models) ? c.models : [],
    enabled: c.enabled !== false,
  };
}

// {connections: [...], serverConnection: 'mock' or the environment's provider host, guarded}
export async function adminListConnections() {
  const data = await request('GET', '/api/admin/connections');
  return {
    connections: (data?.data || []).map(normalizeConnection),
    serverConnection: data?.server_connection || '',
    guarded: Boolean(data?.guarded),
  };
}

// {name, baseUrl, apiKey?, models: [names], enabled?}
export async function adminCreateConnection({ name, baseUrl, apiKey, models, enabled = true }) {
  const body = { name, base_url: baseUrl, models, enabled };
  if (apiKey) body.api_key = apiKey;
  return normalizeConnection(await request('POST', '/api/admin/connections', { body }));
}

// changes: {name?, baseUrl?, apiKey? ('' removes it), models?, enabled?}
export async function adminUpdateConnection(id, changes) {
  const body = {};
  if ('name' in changes) body.name = changes.name;
  if ('baseUrl' in changes) body.base_url = changes.baseUrl;
  if ('apiKey' in changes) body.api_key = changes.apiKey;
  if ('models' in changes) body.models = changes.models;
  if ('enabled' in changes) body.enabled = changes.enabled;
  return normalizeConnection(await request('PATCH', `/api/admin/connections/${encodeURIComponent(id)}`, { body }));
}

export async function adminDeleteConnection(id) {
  return request('DELETE', `/api/admin/connections/${encodeURIComponent(id)}`);
}

// Lists the provider's models: {baseUrl?, apiKey?, connectionId?} -> [names]
export async function adminTestConnection({ baseUrl, apiKey, connectionId }) {
  const body = {};
  if (baseUrl) body.base_url = baseUrl;
  if (apiKey) body.api_key = apiKey;
  if (connectionId) body.connection_id = connectionId;
  const data = await request('POST', '/api/admin/connections/test', { body });
  return Array.isArray(data?.models) ? data.models : [];
}

/* ---------- usage, limits, search, snapshots, export/import,
   archiving, tool calls. docs/API.md, last section. ---------- */

const enc = encodeURIComponent;

// ToolExecutionPublic
export function normalizeToolExecution(x) {
  return {
    id: x.uuid,
    conversationId: x.conversation_uuid,
    questionId: x.question_uuid ?? null,
    tool: x.tool_name,
    server: x.server ?? null,
    reason: x.reason ?? null,
    arguments: x.arguments && typeof x.arguments === 'object' ? x.arguments : {},
    status: x.status,
    approval: x.approval,
    result: x.result ?? null,
    durationMs: x.duration_ms ?? null,
    approvedBy: x.approved_by ?? null,
    model: x.model,
    createdAt: x.created_at,
    decidedAt: x.decided_at ?? null,
  };
}

export async function getConversationTools(id) {
  const c = await request('GET', `/api/conversations/${enc(id)}`);
  return { toolsEnabled: c.tools_enabled, toolApproval: c.tool_approval };
}

// changes: {toolsEnabled?, toolApproval?}
export async function setConversationTools(id, changes) {
  const body = {};
  if ('toolsEnabled' in changes) body.tools_enabled = Boolean(changes.toolsEnabled);
  if ('toolApproval' in changes) body.tool_approval = Boolean(changes.toolApproval);
  const c = await request('PATCH', `/api/conversations/${enc(id)}`, { body });
  return { toolsEnabled: c.tools_enabled, toolApproval: c.tool_approval };
}

export async function listToolExecutions(id) {
  const data = await request('GET', `/api/conversations/${enc(id)}/tool-executions`, { query: { limit: 500 } });
  return listOf(data).items.map(normalizeToolExecution);
}

// Approving or rejecting a proposed call streams the continuation like sending a message.
// details: {arguments} to approve edited arguments, {reason} to say why a call is rejected.
export function streamToolDecision(id, executionId, approve, signal, details) {
  const action = approve ? 'approve' : 'reject';
  const body = details && Object.keys(details).length ? details : undefined;
  return streamFrom(`/api/conversations/${enc(id)}/tool-executions/${enc(executionId)}/${action}`, body, signal);
}

function usageCounts(x) {
  const n = (v) => (typeof v === 'number' ? v : 0);
  return {
    conversations: n(x?.conversations_created),
    messages: n(x?.messages_sent),
    promptTokens: n(x?.prompt_tokens),
    completionTokens: n(x?.completion_tokens),
    totalTokens: n(x?.total_tokens),
    avgMs: typeof x?.avg_completion_ms === 'number' ? x.avg_completion_ms : null,
  };
}

function normalizeUsage(u) {
  const d = u || {};
  return {
    start: d.start ?? null,
    end: d.end ?? null,
    rows: (d.data || []).map((r) => ({
      day: r.day, model: r.model || '', userId: r.user_id ?? null, username: r.username ?? null, ...usageCounts(r),
    })),
    daily: (d.daily || []).map((r) => ({ day: r.day, ...usageCounts(r) })),
    totals: usageCounts(d.totals),
    byUser: Array.isArray(d.by_user)
      ? d.by_user.map((r) => ({ userId: r.user_id, username: r.username ?? '', ...usageCounts(r) }))
      : null,
  };
}

export async function getUsage({ start, end } = {}) {
  return normalizeUsage(await request('GET', '/api/usage', { query: { start, end } }));
}

export async function adminGetUsage({ start, end, userId } = {}) {
  return normalizeUsage(await request('GET', '/api/admin/usage', { query: { start, end, user_id: userId } }));
}

// UsageLimitsPublic: the limits an admin sets (the default row, or one user's).
function normalizeLimits(x) {
  return {
    userId: x.user_id ?? null,
    dailyTokenBudget: x.daily_token_budget ?? null,
    messagesPerMinute: x.messages_per_minute ?? null,
    messagesPerDay: x.messages_per_day ?? null,
    maxConversations: x.max_conversations ?? null,
    maxStoredBytes: x.max_stored_bytes ?? null,
  };
}

// MyLimitsPublic: the limits that apply to the signed-in user, and how much is used.
function normalizeMyLimits(x) {
  return {
    dailyTokenBudget: x.daily_token_budget ?? null,
    messagesPerMinute: x.messages_per_minute ?? null,
    messagesPerDay: x.messages_per_day ?? null,
    tokensToday: x.tokens_today ?? null,
    messagesThisMinute: x.messages_this_minute ?? null,
    messagesToday: x.messages_today ?? null,
    maxConversations: x.max_conversations ?? null,
    maxStoredBytes: x.max_stored_bytes ?? null,
    conversations: x.conversations ?? null,
    storedBytes: x.stored_bytes ?? null,
    dayResetsAt: x.day_resets_at ?? null,
    minuteResetsAt: x.minute_resets_at ?? null,
  };
}

function limitsBody(l) {
  const v = (x) => (x === '' || x === undefined || x === null ? null : Number(x));
  return {
    daily_token_budget: v(l.dailyTokenBudget),
    messages_per_minute: v(l.messagesPerMinute),
    messages_per_day: v(l.messagesPerDay),
    max_conversations: v(l.maxConversations),
    max_stored_bytes: v(l.maxStoredBytes),
  };
}

export async function getMyLimits() {
  return normalizeMyLimits(await request('GET', '/api/usage/limits'));
}

export async function adminGetDefaultLimits() {
  return normalizeLimits(await request('GET', '/api/admin/limits/default'));
}

export async function adminSetDefaultLimits(limits) {
  return normalizeLimits(await request('PUT', '/api/admin/limits/default', { body: limitsBody(limits) }));
}

export async function adminGetUserLimits(userId) {
  return normalizeLimits(await request('GET', `/api/admin/users/${enc(userId)}/limits`));
}

export async function adminSetUserLimits(userId, limits) {
  return normalizeLimits(await request('PUT', `/api/admin/users/${enc(userId)}/limits`, { body: limitsBody(limits) }));
}

export async function adminResetUserLimits(userId) {
  await request('DELETE', `/api/admin/users/${enc(userId)}/limits`);
}

// SearchResults
export async function search({ q, limit = 20, offset = 0, includeArchived = true, signal } = {}) {
  const d = await request('GET', '/api/search', {
    query: { q, limit, offset, include_archived: includeArchived ? 'true' : 'false' },
    signal,
  });
  return {
    query: d.query,
    count: d.count,
    tookMs: d.took_ms ?? null,
    hits: d.data.map((x) => ({
      kind: x.kind,
      conversationId: x.conversation_uuid,
      conversationTitle: x.conversation_title ?? '',
      archived: x.archived,
      messageId: x.message_uuid ?? null,
      role: x.role ?? null,
      snippet: x.snippet,
      highlights: x.highlights,
      score: x.score ?? null,
      createdAt: x.created_at ?? null,
    })),
  };
}

// SnapshotPublic
function normalizeSnapshot(x) {
  return {
    id: x.uuid,
    name: x.name,
    conversationId: x.conversation_uuid,
    messageCount: x.message_count,
    createdAt: x.created_at,
    title: null,
    messages: null,
  };
}

// SnapshotDetail: a snapshot with its title and messages.
function normalizeSnapshotDetail(x) {
  return {
    ...normalizeSnapshot(x),
    title: x.title ?? null,
    messages: x.messages.map((m) => ({ role: m.role, content: m.content })),
  };
}

export async function listSnapshots(id) {
  const data = await request('GET', `/api/conversations/${enc(id)}/snapshots`);
  return listOf(data).items.map(normalizeSnapshot);
}

export async function createSnapshot(id, name) {
  return normalizeSnapshot(await request('POST', `/api/conversations/${enc(id)}/snapshots`, { body: { name } }));
}

export async function getSnapshot(id, snapshotId) {
  return normalizeSnapshotDetail(await request('GET', `/api/conversations/${enc(id)}/snapshots/${enc(snapshotId)}`));
}

export async function deleteSnapshot(id, snapshotId) {
  await request('DELETE', `/api/conversations/${enc(id)}/snapshots/${enc(snapshotId)}`);
}

// mode: 'replace' (the conversation becomes the snapshot) or 'new' (a new conversation).
export async function restoreSnapshot(id, snapshotId, mode = 'replace') {
  return normalizeConversation(
    await request('POST', `/api/conversations/${enc(id)}/snapshots/${enc(snapshotId)}/restore`, { body: { mode } }),
  );
}

// The export file as a Blob, with the server's file name.
export async function exportConversations() {
  const res = await send('GET', '/api/export');
  const blob = await res.blob();
  const cd = res.headers.get('content-disposition') || '';
  const m = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(cd);
  return { blob, filename: m ? decodeURIComponent(m[1]) : 'openchat-export.json' };
}

// data: a parsed Open Chat export or a ChatGPT conversations.json list.
export async function importConversations(data) {
  const r = await request('POST', '/api/import', { body: data }); // ImportResult
  return { source: r.source, imported: r.imported, skipped: r.skipped, conversations: r.conversations };
}

export async function adminArchiveIdle({ days, dryRun = true }) {
  const r = (await request('POST', '/api/admin/archive-idle', { body: { days: Number(days), dry_run: Boolean(dryRun) } })) || {};
  return {
    dryRun: Boolean(r.dry_run),
    count: r.count ?? 0,
    conversations: (r.conversations || []).map((c) => ({
      id: c.uuid, title: c.title ?? '', userId: c.user_id ?? null, updatedAt: c.updated_at ?? null,
    })),
  };
}

/* ---------- folders of chats ---------- */

function normalizeFolder(f) {
  return { id: String(f.uuid), name: f.name ?? '', chats: f.chats ?? 0 };
}

export async function listFolders() {
  const r = (await request('GET', '/api/folders')) || {};
  return (r.data || []).map(normalizeFolder);
}

export async function createFolder(name) {
  return normalizeFolder(await request('POST', '/api/folders', { body: { name } }));
}

export async function renameFolder(id, name) {
  return normalizeFolder(await request('PATCH', `/api/folders/${encodeURIComponent(id)}`, { body: { name } }));
}

export async function deleteFolder(id) {
  const r = (await request('DELETE', `/api/folders/${encodeURIComponent(id)}`)) || {};
  return r.message ?? 'Folder deleted';
}

// folderId: a folder's id, or null to take the chat out of its folder.
export async function moveToFolder(conversationId, folderId) {
  return normalizeConversation(
    await request('PUT', `/api/conversations/${encodeURIComponent(conversationId)}/folder`, {
      body: { folder: folderId },
    }),
  );
}

// --- imports of uploaded exports (background jobs) -------------------------------------------

function normalizeImportJob(j) {
  return {
    uuid: j.uuid,
    filename: j.filename,
    status: j.status,
    source: j.source ?? null,
    bytesTotal: j.bytes_total ?? 0,
    bytesRead: j.bytes_read ?? 0,
    conversationsDone: j.conversations_done ?? 0,
    imported: j.imported ?? 0,
    messages: j.messages ?? 0,
    skippedConversations: j.skipped_conversations || {},
    skippedMessages: j.skipped_messages || {},
    error: j.error ?? null,
  };
}

// The file itself is the body, sent with XMLHttpRequest: fetch cannot report how much of a
// large upload has gone. onProgress(sentBytes, totalBytes) while it uploads.
export function uploadImport(file, { onProgress } = {}) {
  const PATH = '/api/imports';
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', buildUrl(PATH, { filename: file.name }));
    const headers = headersFor('POST', false);
    for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.upload.addEventListener('progress', (e) => {
      if (onProgress && e.lengthComputable) onProgress(e.loaded, e.total);
    });
    xhr.addEventListener('load', () => {
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {
        data = null;
      }
      if (xhr.status === 202 && data) resolve(normalizeImportJob(data));
      else {
        const err = new ApiError(xhr.status, describeError(xhr.status, data), data);
        if (xhr.status === 401 && unauthorizedHandler) unauthorizedHandler(err);
        reject(err);
      }
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, FALLBACK[0])));
    xhr.send(file);
  });
}

export async function importJob(uuid) {
  return normalizeImportJob(await request('GET', `/api/imports/${encodeURIComponent(uuid)}`));
}

export async function recentImports() {
  const list = (await request('GET', '/api/imports')) || [];
  return Array.isArray(list) ? list.map(normalizeImportJob) : [];
}
