// Sign-in page.
import * as api from './api.js';
import { $, safeNext, setFormError } from './common.js';
import { recoveryKeyPanel } from './recovery-key.js';

const params = new URLSearchParams(window.location.search);
const next = safeNext(params.get('next'));

async function init() {
  // Already signed in? Go straight to the app.
  try {
    if (await api.me()) {
      window.location.replace(next);
      return;
    }
  } catch {
    /* the form still works; errors show on submit */
  }
  api
    .config()
    .then((c) => {
      if (!c.allowRegistration) $('#register-alt').hidden = true;
    })
    .catch(() => {});
  if (params.get('registered')) {
    const note = $('#form-note');
    note.textContent = 'Account created. Sign in to start chatting.';
    note.hidden = false;
  }
  if (params.get('signedout')) {
    const note = $('#form-note');
    note.textContent = 'You have been signed out.';
    note.hidden = false;
  }
}

$('#login-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const errorBox = $('#form-error');
  const username = form.username.value.trim();
  const password = form.password.value;
  setFormError(errorBox, '');
  form.username.removeAttribute('aria-invalid');
  form.password.removeAttribute('aria-invalid');
  if (!username || !password) {
    setFormError(errorBox, 'Enter your username and password.');
    (username ? form.password : form.username).setAttribute('aria-invalid', 'true');
    (username ? form.password : form.username).focus();
    return;
  }
  const button = form.querySelector('button[type=submit]');
  button.disabled = true;
  button.classList.add('busy');
  try {
    const body = { username, password };
    const signedIn = await api.request('POST', '/api/auth/login', { body, quiet401: true });
    if (signedIn && signedIn.recovery_key) {
      // The administrator requires zero-access: it was turned on at this sign-in.
      const done = () => window.location.replace(next);
      form.replaceWith(recoveryKeyPanel(signedIn.recovery_key, { onDone: done, doneLabel: 'I saved it, continue' }));
      $('#recovery-key').focus();
      return;
    }
    window.location.replace(next);
  } catch (e) {
    const msg = e.status === 401 ? 'Wrong username or password.' : e.message;
    setFormError(errorBox, msg);
    form.password.select();
    form.password.focus();
  } finally {
    button.disabled = false;
    button.classList.remove('busy');
  }
});

init();
