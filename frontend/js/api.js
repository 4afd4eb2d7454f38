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

/* ---------- shape normalisation ---------- */

function pick(obj, ...keys) {
  if (!obj) return undefined;
  for (const k of keys) if (obj[k] !== undefined && obj[k] !== null) return obj[k];
  return undefined;
}

function modelNames(list) {
  if (!Array.isArray(list)) return null;
  return list
    .map((m) => (typeof m === 'string' ? m : pick(m, 'name', 'id', 'model')))
    .filter((m) => typeof m === 'string' && m);
}

export function normalizeUser(u) {
  if (!u) return null;
  const user = u.user && typeof u.user === 'object' ? u.user : u;
  return {
    id: pick(user, 'id', 'uuid', 'user_id'),
    username: pick(user, 'username', 'name') ?? '',
    email: pick(user, 'email') ?? '',
    fullName: pick(user, 'full_name', 'fullName') ?? '',
    admin: Boolean(pick(user, 'is_admin', 'admin')),
    active: pick(user, 'is_active', 'active') ?? true,
    // An empty allowed list means "the global list applies" (docs/API.md): shown as null.
    allowedModels: (() => {
      const list = modelNames(pick(user, 'allowed_models', 'models'));
      return list && list.length ? list : null;
    })(),
    createdAt: pick(user, 'created_at', 'created') ?? null,
  };
}

export function normalizeConversation(c) {
  if (!c) return null;
  const conv = c.conversation && typeof c.conversation === 'object' ? c.conversation : c;
  return {
    id: String(pick(conv, 'uuid', 'id', 'conversation_id')),
    title: pick(conv, 'title') ?? '',
    defaultModel: pick(conv, 'default_model', 'model') ?? null,
    pinned: Boolean(pick(conv, 'pinned', 'is_pinned')),
    archived: Boolean(pick(conv, 'archived', 'is_archived')),
    createdAt: pick(conv, 'created_at', 'created') ?? null,
    updatedAt: pick(conv, 'updated_at', 'updated', 'created_at') ?? null,
  };
}

export function normalizeResponse(r, m = {}) {
  const src = r && typeof r === 'object' ? r : {};
  const usage = src.usage && typeof src.usage === 'object' ? src.usage : {};
  const meta = {
    model: pick(src, 'model_used', 'model') ?? pick(m, 'model_used', 'model') ?? null,
    promptTokens: pick(src, 'tokens_prompt', 'prompt_tokens') ?? pick(usage, 'prompt_tokens') ?? null,
    completionTokens:
      pick(src, 'tokens_completion', 'completion_tokens') ?? pick(usage, 'completion_tokens') ?? null,
    totalTokens: pick(src, 'tokens_total', 'total_tokens') ?? pick(usage, 'total_tokens') ?? null,
    timeMs: pick(src, 'completion_time_ms', 'completion_ms', 'duration_ms', 'time_ms') ?? null,
  };
  const any = Object.values(meta).some((v) => v !== null && v !== undefined);
  return any ? meta : null;
}

export function normalizeMessage(m) {
  if (!m) return null;
  const response = pick(m, 'response', 'meta', 'metadata');
  let meta = normalizeResponse(response, m);
  if (!meta && m.role === 'assistant') meta = normalizeResponse(m, {});
  return {
    id: String(pick(m, 'uuid', 'id', 'message_id') ?? ''),
    role: pick(m, 'role') ?? 'assistant',
    content: pick(m, 'content', 'text') ?? '',
    model: pick(m, 'model') ?? null,
    createdAt: pick(m, 'created_at', 'created') ?? null,
    meta,
    stopped: pick(response, 'finish_reason') === 'stopped',
  };
}

function listOf(data, ...keys) {
  if (Array.isArray(data)) return { items: data, total: null };
  if (!data || typeof data !== 'object') return { items: [], total: null };
  for (const k of [...keys, 'items', 'results', 'data']) {
    if (Array.isArray(data[k])) {
      const total = pick(data, 'total', 'count', 'total_count');
      return { items: data[k], total: typeof total === 'number' ? total : null };
    }
  }
  return { items: [], total: null };
}

/* ---------- auth ---------- */

export async function register({ username, email, password, fullName }) {
  const body = { username, email, password };
  if (fullName) body.full_name = fullName;
  return normalizeUser(await request('POST', '/api/auth/register', { body, quiet401: true }));
}

export async function login({ username, password }) {
  return normalizeUser(
    await request('POST', '/api/auth/login', { body: { username, password }, quiet401: true }),
  );
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

// Public server configuration: {allowRegistration, mockLlm, defaultModel, maxMessageChars}.
export async function config() {
  const c = (await request('GET', '/api/config', { quiet401: true })) || {};
  return {
    allowRegistration: c.allow_registration !== false,
    mockLlm: Boolean(c.mock_llm),
    defaultModel: c.default_model || null,
    maxMessageChars: typeof c.max_message_chars === 'number' ? c.max_message_chars : null,
  };
}

/* ---------- conversations ---------- */

export async function listConversations({ q, archived = false, limit = 100, offset = 0 } = {}) {
  const data = await request('GET', '/api/conversations', {
    query: { q, archived: archived ? 'true' : 'false', limit, offset },
  });
  const { items, total } = listOf(data, 'conversations');
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

// Messages in chronological order; total is the conversation's message count when the
// backend reports it (null otherwise).
export async function listMessages(id, { limit = 50, offset = 0 } = {}) {
  const data = await request('GET', `/api/conversations/${encodeURIComponent(id)}/messages`, {
    query: { limit, offset },
  });
  const { items, total } = listOf(data, 'messages');
  return { items: items.map(normalizeMessage), total };
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

// Pulls the user message, the assistant message (with its response metadata) and a
// generated title out of a final JSON answer or a final SSE event, whatever their nesting.
export function normalizeFinal(data) {
  if (!data || typeof data !== 'object') return { user: null, assistant: null, title: null };
  const userRaw = pick(data, 'user_message', 'user');
  const asstRaw = pick(data, 'assistant_message', 'assistant', 'message');
  const user = userRaw && typeof userRaw === 'object' ? normalizeMessage(userRaw) : null;
  let assistant = asstRaw && typeof asstRaw === 'object' ? normalizeMessage(asstRaw) : null;
  const responseMeta = normalizeResponse(pick(data, 'response', 'usage'), data);
  if (assistant && !assistant.meta && responseMeta) assistant.meta = responseMeta;
  if (!assistant && responseMeta) {
    assistant = { id: String(pick(data, 'assistant_message_id', 'message_id') ?? ''), meta: responseMeta };
  }
  const conv = pick(data, 'conversation');
  const title = pick(data, 'title', 'conversation_title') ?? (conv && pick(conv, 'title')) ?? null;
  const execs = Array.isArray(data.tool_executions) ? data.tool_executions.map(normalizeToolExecution) : [];
  return { user, assistant, title, pending: Boolean(data.pending), toolExecutions: execs };
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

// Classifies one SSE event into what the chat page acts on:
//   {type: 'delta', text} | {type: 'start', user} | {type: 'done', user, assistant, title}
//   | {type: 'title', title} | {type: 'error', message, status} | {type: 'ignore'}
export function classifyEvent({ event, data }) {
  const name = (event || 'message').toLowerCase();
  if (data === '[DONE]') return { type: 'ignore' };
  if (name === 'error' || (data && typeof data === 'object' && (data.error || data.detail) && name !== 'done')) {
    const status = (data && typeof data === 'object' && pick(data, 'status', 'status_code', 'code')) || 502;
    return { type: 'error', status, message: describeError(typeof status === 'number' ? status : 502, data) };
  }
  if (name === 'tool_call' || name === 'tool_result') {
    return { type: name, execution: normalizeToolExecution(data?.execution ?? data) };
  }
  if (name === 'title' || name === 'title_generated') {
    const title = typeof data === 'string' ? data : pick(data, 'title');
    return title ? { type: 'title', title } : { type: 'ignore' };
  }
  if (['done', 'end', 'final', 'complete', 'completed', 'finish', 'message_end'].includes(name)) {
    return { type: 'done', ...normalizeFinal(data) };
  }
  if (['start', 'begin', 'user_message', 'created', 'message_start'].includes(name)) {
    const final = normalizeFinal(data);
    const user = final.user ?? (data && data.role === 'user' ? normalizeMessage(data) : null);
    return { type: 'start', user, assistant: final.assistant, title: final.title };
  }
  // A delta: our own {content|delta|text} or an OpenAI chunk passed through.
  if (typeof data === 'string') return { type: 'delta', text: data };
  if (data && typeof data === 'object') {
    const choice = Array.isArray(data.choices) ? data.choices[0] : null;
    const text =
      pick(data, 'delta', 'content', 'text', 'token') ?? (choice && (choice.delta?.content ?? choice.text));
    if (typeof text === 'string') return { type: 'delta', text };
    if (text && typeof text === 'object' && typeof text.content === 'string') {
      return { type: 'delta', text: text.content };
    }
    if (pick(data, 'assistant_message', 'response', 'usage')) return { type: 'done', ...normalizeFinal(data) };
  }
  return { type: 'ignore' };
}

async function* streamFrom(path, body, signal, method = 'POST', query = undefined) {
  const res = await send(method, path, { body, signal, query, accept: 'text/event-stream' });
  const type = res.headers.get('content-type') || '';
  if (!type.includes('text/event-stream')) {
    // The backend answered with plain JSON: replay it as one delta and a final event.
    const data = type.includes('json') ? await res.json() : { content: await res.text() };
    const final = normalizeFinal(data);
    if (final.assistant?.content) yield { type: 'delta', text: final.assistant.content };
    yield { type: 'done', ...final };
    return;
  }
  for await (const evt of readSSE(res.body)) {
    const c = classifyEvent(evt);
    if (c.type !== 'ignore') yield c;
  }
}

export function streamMessage(id, { content, model }, signal) {
  const body = { content };
  if (model) body.model = model;
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

export function streamRegenerate(id, { model, replaces } = {}, signal) {
  const body = {};
  if (model) body.model = model;
  if (replaces) body.message_uuid = replaces;
  return streamFrom(`/api/conversations/${encodeURIComponent(id)}/regenerate`, body, signal);
}

/* ---------- settings and models ---------- */

export function normalizeSettings(s) {
  const src = s && typeof s === 'object' ? s.settings ?? s : {};
  const masked = pick(src, 'api_key_hint', 'api_key_masked');
  const isSet = pick(src, 'has_api_key', 'api_key_set');
  return {
    apiKeyMasked: typeof masked === 'string' ? masked : '',
    apiKeySet: isSet !== undefined ? Boolean(isSet) : Boolean(masked),
    baseUrl: pick(src, 'openai_base_url', 'base_url') ?? '',
    defaultModel: pick(src, 'default_model', 'model') ?? '',
    userConnectionsAllowed: src.user_connections_allowed !== false,
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

// The models this user may use: {models: [names], offline: [names the built-in mock
// answers for], defaultModel}
export async function listModels() {
  const data = await request('GET', '/api/models');
  const { items } = listOf(data, 'models', 'allowed_models');
  return {
    models: modelNames(items) ?? [],
    offline: modelNames((items || []).filter((m) => m && m.offline === true)) ?? [],
    defaultModel: (data && !Array.isArray(data) && pick(data, 'default_model', 'default')) || null,
  };
}

/* ---------- admin ---------- */

export async function adminListUsers() {
  const data = await request('GET', '/api/admin/users', { query: { limit: 500 } });
  return listOf(data, 'users').items.map(normalizeUser);
}

// changes: {active?, admin?, allowedModels? (array of names, or null for "all models")}
export async function adminUpdateUser(id, changes) {
  const body = {};
  if ('active' in changes) body.is_active = changes.active;
  if ('admin' in changes) body.is_admin = changes.admin;
  if ('allowedModels' in changes) body.allowed_models = changes.allowedModels;
  return normalizeUser(await request('PATCH', `/api/admin/users/${encodeURIComponent(id)}`, { body }));
}

export async function adminGetModels() {
  const data = await request('GET', '/api/admin/models');
  const { items } = listOf(data, 'models', 'available_models');
  return {
    models: modelNames(items) ?? [],
    defaultModel: (data && !Array.isArray(data) && pick(data, 'default_model', 'default')) || null,
  };
}

export async function adminSaveModels(models) {
  const data = await request('PUT', '/api/admin/models', { body: { models } });
  const { items } = listOf(data, 'models', 'available_models');
  return { models: modelNames(items) ?? models };
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

export function normalizeToolExecution(e) {
  const x = e && typeof e === 'object' ? e : {};
  return {
    id: String(pick(x, 'uuid', 'id') ?? ''),
    conversationId: pick(x, 'conversation_uuid') ?? null,
    questionId: pick(x, 'question_uuid') ?? null,
    tool: pick(x, 'tool_name', 'name') ?? 'tool',
    server: x.server ?? null,
    reason: x.reason ?? null,
    arguments: x.arguments && typeof x.arguments === 'object' ? x.arguments : {},
    status: pick(x, 'status') ?? 'pending',
    approval: pick(x, 'approval') ?? 'auto',
    result: x.result ?? null,
    durationMs: x.duration_ms ?? null,
    approvedBy: x.approved_by ?? null,
    model: x.model ?? null,
    createdAt: x.created_at ?? null,
    decidedAt: x.decided_at ?? null,
  };
}

export async function getConversationTools(id) {
  const c = (await request('GET', `/api/conversations/${enc(id)}`)) || {};
  return { toolsEnabled: c.tools_enabled !== false, toolApproval: Boolean(c.tool_approval) };
}

// changes: {toolsEnabled?, toolApproval?}
export async function setConversationTools(id, changes) {
  const body = {};
  if ('toolsEnabled' in changes) body.tools_enabled = Boolean(changes.toolsEnabled);
  if ('toolApproval' in changes) body.tool_approval = Boolean(changes.toolApproval);
  const c = (await request('PATCH', `/api/conversations/${enc(id)}`, { body })) || {};
  return { toolsEnabled: c.tools_enabled !== false, toolApproval: Boolean(c.tool_approval) };
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
    totalTokens: n(x?.total_tokens ?? n(x?.prompt_tokens) + n(x?.completion_tokens)),
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

function normalizeLimits(l) {
  const x = l || {};
  const v = (k) => (typeof x[k] === 'number' ? x[k] : null);
  return {
    userId: x.user_id ?? null,
    dailyTokenBudget: v('daily_token_budget'),
    messagesPerMinute: v('messages_per_minute'),
    messagesPerDay: v('messages_per_day'),
    tokensToday: v('tokens_today'),
    messagesThisMinute: v('messages_this_minute'),
    messagesToday: v('messages_today'),
    maxConversations: v('max_conversations'),
    maxStoredBytes: v('max_stored_bytes'),
    conversations: v('conversations'),
    storedBytes: v('stored_bytes'),
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
  return normalizeLimits(await request('GET', '/api/usage/limits'));
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

export async function search({ q, limit = 20, offset = 0, includeArchived = true, signal } = {}) {
  const d = (await request('GET', '/api/search', {
    query: { q, limit, offset, include_archived: includeArchived ? 'true' : 'false' },
    signal,
  })) || {};
  return {
    query: d.query ?? q,
    count: typeof d.count === 'number' ? d.count : (d.data || []).length,
    tookMs: d.took_ms ?? null,
    hits: (d.data || []).map((x) => ({
      kind: x.kind === 'title' ? 'title' : 'message',
      conversationId: String(x.conversation_uuid ?? ''),
      conversationTitle: x.conversation_title ?? '',
      archived: Boolean(x.archived),
      messageId: x.message_uuid ?? null,
      role: x.role ?? null,
      snippet: typeof x.snippet === 'string' ? x.snippet : '',
      highlights: Array.isArray(x.highlights) ? x.highlights : [],
      score: x.score ?? null,
      createdAt: x.created_at ?? null,
    })),
  };
}

function normalizeSnapshot(s) {
  const x = s || {};
  return {
    id: String(x.uuid ?? x.id ?? ''),
    name: x.name ?? '',
    conversationId: x.conversation_uuid ?? null,
    messageCount: x.message_count ?? 0,
    createdAt: x.created_at ?? null,
    title: x.title ?? null,
    messages: Array.isArray(x.messages) ? x.messages.map((m) => ({ role: m.role, content: m.content ?? '' })) : null,
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
  return normalizeSnapshot(await request('GET', `/api/conversations/${enc(id)}/snapshots/${enc(snapshotId)}`));
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
  const r = (await request('POST', '/api/import', { body: data })) || {};
  return {
    source: r.source ?? null,
    imported: r.imported ?? 0,
    skipped: r.skipped ?? 0,
    conversations: Array.isArray(r.conversations) ? r.conversations : [],
  };
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
