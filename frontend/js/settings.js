// Settings page: the user's provider key, base URL and default model.
import * as api from './api.js';
import { $, h, icon, requireUser, setFormError } from './common.js';

const form = $('#settings-form');
const errorBox = $('#form-error');
const okBox = $('#form-success');
let current = null;

function showSaved(settings) {
  current = settings;
  const hasKey = settings.apiKeySet || !!settings.apiKeyMasked;
  $('#key-state').hidden = !hasKey;
  $('#key-masked').textContent = settings.apiKeyMasked || '••••••••';
  $('#clear-key').checked = false;
  form.api_key.value = '';
  form.api_key.placeholder = hasKey ? 'Leave empty to keep the saved key' : 'sk-…';
  form.base_url.value = settings.baseUrl || '';
  // Personal connections may be turned off by the server (ALLOW_USER_CONNECTIONS).
  const allowed = settings.userConnectionsAllowed;
  form.api_key.disabled = !allowed && !hasKey;
  form.base_url.disabled = !allowed && !settings.baseUrl;
  $('#provider-off').hidden = allowed;
}

// `automatic` is the model used when no default is set (shown only while none is).
function fillModels(models, selected, automatic) {
  const select = form.default_model;
  const label = automatic && !selected ? `Automatic (${automatic})` : 'Automatic';
  const options = [h('option', { value: '' }, label)];
  for (const m of models) options.push(h('option', { value: m }, m));
  if (selected && !models.includes(selected)) {
    options.push(h('option', { value: selected }, `${selected} (no longer allowed)`));
  }
  select.replaceChildren(...options);
  select.value = selected || '';
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  setFormError(errorBox, '');
  okBox.hidden = true;
  const baseUrl = form.base_url.value.trim();
  if (baseUrl && !/^https?:\/\/[^\s/]+/i.test(baseUrl)) {
    setFormError(errorBox, 'The base URL must start with http:// or https://');
    form.base_url.setAttribute('aria-invalid', 'true');
    form.base_url.focus();
    return;
  }
  form.base_url.removeAttribute('aria-invalid');
  const changes = { baseUrl, defaultModel: form.default_model.value };
  const key = form.api_key.value.trim();
  if (key) changes.apiKey = key;
  else if ($('#clear-key').checked) changes.apiKey = '';
  const button = $('#save');
  button.disabled = true;
  button.classList.add('busy');
  try {
    const saved = await api.saveSettings(changes);
    // Some backends answer the PUT with the stored settings, others with nothing useful.
    const fresh = saved && (saved.apiKeyMasked || saved.apiKeySet || saved.baseUrl || saved.defaultModel)
      ? saved
      : await api.getSettings();
    showSaved(fresh);
    const models = await api.listModels().catch(() => null);
    if (models) fillModels(models.models, fresh.defaultModel, models.defaultModel);
    form.default_model.value = fresh.defaultModel || '';
    okBox.textContent = 'Settings saved.';
    okBox.hidden = false;
  } catch (e) {
    setFormError(errorBox, e.message);
  } finally {
    button.disabled = false;
    button.classList.remove('busy');
  }
});

form.addEventListener('input', () => {
  okBox.hidden = true;
});

async function main() {
  $('#back').prepend(icon('back', 18));
  const me = await requireUser();
  $('#profile').replaceChildren(
    h('dt', {}, 'Username'), h('dd', {}, me.username),
    h('dt', {}, 'Email'), h('dd', {}, me.email || '—'),
    h('dt', {}, 'Role'), h('dd', {}, me.admin ? 'Administrator' : 'Member'),
  );
  try {
    const [settings, models] = await Promise.all([api.getSettings(), api.listModels()]);
    showSaved(settings);
    fillModels(models.models, settings.defaultModel, models.defaultModel);
  } catch (e) {
    setFormError(errorBox, e.message);
    fillModels([], current?.defaultModel);
  }
  document.body.dataset.ready = 'true';
}

main().catch(() => {});
