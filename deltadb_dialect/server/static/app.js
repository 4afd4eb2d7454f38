// DeltaDB management UI: a dependency-free single page over the server's own REST API.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem("deltadb-token"), db: null, key: null, cursor: null, schemaId: null };

// ── HTTP ──────────────────────────────────────────────────────────────
async function api(method, path, body) {
  const headers = {};
  if (state.token) headers.Authorization = "Bearer " + state.token;
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = typeof body === "string" ? body : JSON.stringify(body);
  }
  const started = performance.now();
  const response = await fetch(path, { method, headers, body: payload });
  const text = await response.text();
  const ms = performance.now() - started;
  let data = text;
  try { data = text ? JSON.parse(text) : null; } catch (_) { /* not JSON (metrics) */ }
  if (response.status === 401 && path !== "/api/login") signOut("Your session ended; sign in again.");
  return { status: response.status, ok: response.ok, data, text, ms };
}

const errorOf = (r) => (r.data && r.data.error) || `HTTP ${r.status}`;
const enc = encodeURIComponent;
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v); else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child ?? "")));
  return node;
}
function setStatus(id, message, good) {
  const node = $(id);
  node.textContent = message;
  node.className = good ? "okay" : "error";
}
function formatBytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

// ── sign-in ───────────────────────────────────────────────────────────
async function showSignIn(message) {
  $("shell").hidden = true;
  $("signin").hidden = false;
  $("signin-error").textContent = message || "";
  const info = await api("GET", "/api/info");
  const dev = info.ok && info.data.mode === "development";
  $("mode-note").hidden = !dev;
  $("mode-note").textContent = dev ? "Development mode: no admin key is set. Sign in with the development token the server printed when it started (full rights, loopback only)." : "";
}

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const key = $("signin-key").value.trim();
  const r = await api("POST", "/api/login", { key });
  if (!r.ok) { $("signin-error").textContent = errorOf(r); return; }
  state.token = r.data.token;
  sessionStorage.setItem("deltadb-token", state.token);
  $("signin-key").value = "";
  start();
});

function signOut(message) {
  state.token = null;
  sessionStorage.removeItem("deltadb-token");
  showSignIn(message);
}
$("signout").addEventListener("click", async () => { await api("POST", "/api/logout"); signOut(); });

async function start() {
  const me = await api("GET", "/api/me");
  if (!me.ok) { signOut(); return; }
  $("who").textContent = `${me.data.client_id} · ${me.data.permissions.join(", ")}`;
  $("signin").hidden = true;
  $("shell").hidden = false;
  route();
}

// ── views ─────────────────────────────────────────────────────────────
const views = { dashboard: loadDashboard, databases: loadDatabases, schemas: loadSchemas, keys: loadKeys, explorer: () => {} };
let dashboardTimer = null;
function route() {
  const name = (location.hash || "#dashboard").slice(1).split("/")[0];
  const view = views[name] ? name : "dashboard";
  clearInterval(dashboardTimer);  // the dashboard refreshes itself while it is shown
  if (view === "dashboard") dashboardTimer = setInterval(() => state.token && loadDashboard(), 5000);
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== "view-" + view;
  for (const link of document.querySelectorAll("nav a")) link.classList.toggle("active", link.dataset.view === view);
  views[view]();
}
window.addEventListener("hashchange", () => state.token && route());

async function loadDashboard() {
  const [health, stats] = await Promise.all([api("GET", "/health"), api("GET", "/admin/stats")]);
  $("t-health").innerHTML = "";
  $("t-health").append(el("span", { class: "badge " + (health.ok ? "ok" : "bad") }, health.ok ? "ok" : "down"));
  if (!stats.ok) { $("t-databases").textContent = errorOf(stats); return; }
  const s = stats.data;
  $("t-databases").textContent = s.databases;
  $("t-entities").textContent = s.entities.toLocaleString();
  $("t-size").textContent = formatBytes(s.store_size_bytes);
  $("t-cache").textContent = s.cache.hit_rate === null ? "—" : (100 * s.cache.hit_rate).toFixed(1) + " %";
  $("t-workers").textContent = s.workers.filter((w) => w.status === "Available").length + " / " + s.workers.length;
  const dbs = await api("GET", "/databases");
  const body = $("dash-databases").tBodies[0];
  body.replaceChildren(...(dbs.ok ? dbs.data.databases : []).map((d) => el("tr", {},
    el("td", {}, el("a", { href: "#databases", onclick: () => { state.db = d.name; } }, d.name)),
    el("td", {}, d.kind === "table" ? "SQL table" : "entities"),
    el("td", { class: "num" }, d.entities.toLocaleString()), el("td", {}, d.schema ? "yes" : "—"))));
  $("dash-workers").tBodies[0].replaceChildren(...s.workers.map((w) => el("tr", {},
    el("td", { class: "mono" }, w.worker_id + (w.this_process ? " (this)" : "")),
    el("td", {}, el("span", { class: "badge " + (w.status === "Available" ? "ok" : "bad") }, w.status)),
    el("td", {}, w.last_seen), el("td", { class: "num" }, w.requests))));
}

// databases → keys → entity editor
async function loadDatabases() {
  const r = await api("GET", "/databases");
  const list = $("db-list");
  if (!r.ok) { list.replaceChildren(el("li", {}, errorOf(r))); return; }
  list.replaceChildren(...r.data.databases.map((d) => el("li", {
    class: d.name === state.db ? "selected" : "", "data-db": d.name, onclick: () => selectDatabase(d.name),
  }, el("span", {}, d.name), el("span", { class: "count" }, d.entities))));
  if (state.db) selectDatabase(state.db);
}

// A database exists once it holds an entity: "New database" selects an empty one to fill.
$("db-new").addEventListener("click", () => {
  const name = $("db-new-name").value.trim();
  if (!name) { $("db-new-name").focus(); return; }
  $("db-list").append(el("li", { "data-db": name, onclick: () => selectDatabase(name) },
    el("span", {}, name), el("span", { class: "count" }, 0)));
  $("db-new-name").value = "";
  selectDatabase(name);
  $("entity-new").click();
});

async function selectDatabase(name) {
  state.db = name;
  for (const li of $("db-list").children) li.classList.toggle("selected", li.dataset.db === name);
  if (state.db !== state.shownDb) $("key-prefix").value = "";  // a filter belongs to one database
  state.shownDb = name;
  $("keys-title").textContent = "Keys of " + name;
  $("key-list").replaceChildren();
  state.cursor = null;
  await loadKeysPage(true);
  const schema = await api("GET", "/schema/" + enc(name));
  $("entity-schema").textContent = schema.ok ? JSON.stringify(schema.data, null, 2) : "(no schema: any JSON is accepted)";
}

async function loadKeysPage(reset) {
  if (!state.db) return;
  if (reset) { state.cursor = null; $("key-list").replaceChildren(); }
  const params = new URLSearchParams({ prefix: $("key-prefix").value, limit: "100" });
  if (state.cursor) params.set("cursor", state.cursor);
  const r = await api("GET", `/entities/${enc(state.db)}?${params}`);
  if (!r.ok) { $("key-list").append(el("li", {}, errorOf(r))); return; }
  $("key-list").append(...r.data.keys.map((k) => el("li", { "data-key": k, onclick: () => openEntity(k) }, k)));
  state.cursor = r.data.next_cursor;
  $("keys-more").hidden = !state.cursor;
}
$("keys-more").addEventListener("click", () => loadKeysPage(false));
$("key-prefix").addEventListener("input", () => loadKeysPage(true));

async function openEntity(key) {
  state.key = key;
  for (const li of $("key-list").children) li.classList.toggle("selected", li.dataset.key === key);
  $("entity-key").value = key;
  const r = await api("GET", `/entity/${enc(state.db)}?key=${enc(key)}`);
  $("entity-json").value = r.ok ? JSON.stringify(r.data, null, 2) : "";
  setStatus("entity-status", r.ok ? `loaded in ${r.ms.toFixed(1)} ms` : errorOf(r), r.ok);
  checkEntityJson();
}
$("entity-new").addEventListener("click", () => {
  state.key = null;
  $("entity-key").value = "";
  $("entity-json").value = "{\n  \n}";
  $("entity-key").focus();
  setStatus("entity-status", "", true);
});

// Syntax is checked as you type; the schema (and a SQL table's constraints) by a dry-run PUT.
function checkEntityJson() {
  try {
    JSON.parse($("entity-json").value);
    $("entity-check").textContent = "valid JSON";
    $("entity-check").className = "okay";
    return true;
  } catch (error) {
    $("entity-check").textContent = "invalid JSON: " + error.message;
    $("entity-check").className = "error";
    return false;
  }
}
$("entity-json").addEventListener("input", checkEntityJson);

async function putEntity(dryRun) {
  const key = $("entity-key").value.trim();
  if (!state.db) return setStatus("entity-status", "choose a database first", false);
  if (!key) return setStatus("entity-status", "the key is empty", false);
  if (!checkEntityJson()) return setStatus("entity-status", "fix the JSON first", false);
  const body = `{${JSON.stringify(key)}: ${$("entity-json").value}}`;
  const r = await api("PUT", `/entity/${enc(state.db)}${dryRun ? "?dry_run=true" : ""}`, body);
  if (!r.ok) return setStatus("entity-status", errorOf(r), false);
  setStatus("entity-status", dryRun ? "valid against the schema" : `saved (${r.ms.toFixed(1)} ms)`, true);
  if (!dryRun && key !== state.key) { state.key = key; loadKeysPage(true); }
}
$("entity-validate").addEventListener("click", () => putEntity(true));
$("entity-save").addEventListener("click", () => putEntity(false));
$("entity-delete").addEventListener("click", async () => {
  const key = $("entity-key").value.trim();
  if (!state.db || !key || !confirm(`Delete ${key} from ${state.db}?`)) return;
  const r = await api("DELETE", `/entity/${enc(state.db)}?key=${enc(key)}`);
  setStatus("entity-status", r.ok ? "deleted" : errorOf(r), r.ok);
  if (r.ok) { $("entity-json").value = ""; loadKeysPage(true); }
});

// schemas
async function loadSchemas() {
  const r = await api("GET", "/admin/schemas");
  if (!r.ok) { $("schema-list").replaceChildren(el("li", {}, errorOf(r))); return; }
  $("schema-list").replaceChildren(...r.data.schemas.map((s) => el("li", { "data-id": s.id, onclick: () => openSchema(s.id) },
    el("span", {}, s.id), el("span", { class: "count" }, s.generated ? "generated" : "stored"))));
}
async function openSchema(id) {
  state.schemaId = id;
  for (const li of $("schema-list").children) li.classList.toggle("selected", li.dataset.id === id);
  $("schema-id").value = id;
  const r = await api("GET", "/schema/" + enc(id));
  $("schema-json").value = r.ok ? JSON.stringify(r.data, null, 2) : "";
  setStatus("schema-status", r.ok ? "" : errorOf(r), r.ok);
}
$("schema-new").addEventListener("click", () => {
  $("schema-id").value = "";
  $("schema-json").value = JSON.stringify({ $schema: "http://json-schema.org/draft-07/schema#", type: "object", properties: {}, required: [] }, null, 2);
  $("schema-id").focus();
});
$("schema-save").addEventListener("click", async () => {
  const id = $("schema-id").value.trim();
  if (!id) return setStatus("schema-status", "the schema id is empty", false);
  try { JSON.parse($("schema-json").value); } catch (error) { return setStatus("schema-status", "invalid JSON: " + error.message, false); }
  const r = await api("PUT", "/schema/" + enc(id), $("schema-json").value);
  setStatus("schema-status", r.ok ? "saved" : errorOf(r), r.ok);
  if (r.ok) loadSchemas();
});
$("schema-delete").addEventListener("click", async () => {
  const id = $("schema-id").value.trim();
  if (!id || !confirm(`Delete schema ${id}?`)) return;
  const r = await api("DELETE", "/schema/" + enc(id));
  setStatus("schema-status", r.ok ? "deleted" : errorOf(r), r.ok);
  if (r.ok) loadSchemas();
});

// API keys
async function loadKeys() {
  const r = await api("GET", "/api/keys");
  const body = $("keys-table").tBodies[0];
  if (!r.ok) { setStatus("keys-status", errorOf(r), false); body.replaceChildren(); return; }
  body.replaceChildren(...r.data.map((k) => el("tr", {},
    el("td", { class: "mono" }, k.id), el("td", {}, k.name), el("td", {}, k.permissions.join(", ")),
    el("td", {}, k.databases ? k.databases.join(", ") : "all"),
    el("td", {}, k.created_at), el("td", {}, k.expires_at || "never"),
    el("td", {}, el("button", { class: "danger", onclick: () => revokeKey(k) }, "Revoke")))));
}
async function revokeKey(k) {
  if (!confirm(`Revoke key ${k.name}? Its tokens stop working.`)) return;
  const r = await api("DELETE", "/api/keys/" + enc(k.id));
  setStatus("keys-status", r.ok ? `revoked ${k.name}` : errorOf(r), r.ok);
  loadKeys();
}
$("key-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const permissions = [...document.querySelectorAll("input[name=perm]:checked")].map((c) => c.value);
  const body = { name: $("key-name").value.trim(), permissions };
  if ($("key-expires").value.trim()) body.expires_in = $("key-expires").value.trim();
  const databases = $("key-databases").value.split(",").map((d) => d.trim()).filter(Boolean);
  if (databases.length) body.databases = databases;
  const r = await api("POST", "/api/keys", body);
  if (!r.ok) { setStatus("keys-status", errorOf(r), false); return; }
  $("key-secret").hidden = false;
  $("key-secret-value").textContent = r.data.key;
  setStatus("keys-status", `created ${r.data.name}`, true);
  $("key-name").value = "";
  loadKeys();
});

// API explorer
$("explorer-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const method = $("ex-method").value;
  const body = ["PUT", "POST"].includes(method) && $("ex-body").value.trim() ? $("ex-body").value : undefined;
  const r = await api(method, $("ex-path").value.trim() || "/", body);
  $("ex-status").textContent = r.status;
  $("ex-status").className = r.ok ? "okay" : "error";
  $("ex-time").textContent = r.ms.toFixed(1) + " ms";
  $("ex-response").textContent = typeof r.data === "object" && r.data !== null ? JSON.stringify(r.data, null, 2) : r.text;
});

if (state.token) start(); else showSignIn();
