// Settings page, privacy section: zero-access conversations (on, off, recovery key).
import * as api from './api.js';
import { $, setFormError } from './common.js';
import { recoveryKeyPanel } from './recovery-key.js';

const STATES = {
  off: 'Off: your conversations are encrypted at rest under the server\'s key, which its operator holds.',
  sealing: 'Being turned on: your existing conversations are being sealed…',
  on: 'On: your conversations are sealed with your own key. The operator and administrators cannot read them.',
  opening: 'Being turned off: your conversations are being opened again…',
};

const errorBox = $('#privacy-error');
let polling = null;

function show(id, visible) {
  $(id).hidden = !visible;
}

function render(status) {
  $('#privacy-state').textContent = STATES[status.state] || status.state;
  const locked = status.state !== 'off' && !status.session_holds_key;
  show('#privacy-on-form', status.state === 'off');
  show('#privacy-off-form', status.state === 'on' && !status.required && !locked);
  show('#privacy-restore-form', locked);
  show('#privacy-required', status.required);
  if (status.converting && !polling) polling = setTimeout(() => { polling = null; load(); }, 1000);
}

async function load() {
  try {
    render(await api.request('GET', '/api/privacy'));
  } catch (e) {
    setFormError(errorBox, e.message);
  }
}

async function submit(form, path, body, after) {
  setFormError(errorBox, '');
  const button = form.querySelector('button[type=submit]');
  button.disabled = true;
  try {
    const result = await api.request('POST', path, { body });
    form.reset();
    after(result);
  } catch (e) {
    setFormError(errorBox, e.message);
  } finally {
    button.disabled = false;
  }
}

$('#privacy-on-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  submit(form, '/api/privacy/on', { password: form.password.value }, (result) => {
    const panel = recoveryKeyPanel(result.recovery_key, { onDone: load });
    $('#privacy-recovery').replaceChildren(panel);
    $('#recovery-key').focus();
    load();
  });
});

$('#privacy-off-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  submit(form, '/api/privacy/off', { password: form.password.value }, load);
});

$('#privacy-restore-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const body = { recovery_key: form.recovery_key.value, password: form.password.value };
  submit(form, '/api/privacy/restore', body, load);
});

load();
