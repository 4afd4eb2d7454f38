// Registration page: checks what it can before asking the server, then signs in.
import * as api from './api.js';
import { $, setFormError } from './common.js';

const USERNAME = /^[A-Za-z0-9_.-]+$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function check(form) {
  const username = form.username.value.trim();
  const email = form.email.value.trim();
  const password = form.password.value;
  const confirm = form.confirm.value;
  if (!username) return ['username', 'Choose a username.'];
  if (username.length < 3) return ['username', 'The username must have at least 3 characters.'];
  if (!USERNAME.test(username)) {
    return ['username', 'The username may only use letters, digits, dots, dashes and underscores.'];
  }
  if (!EMAIL.test(email)) return ['email', 'Enter a valid email address.'];
  if (password.length < 8) return ['password', 'The password must have at least 8 characters.'];
  if (password !== confirm) return ['confirm', 'The two passwords do not match.'];
  return null;
}

async function init() {
  try {
    if (await api.me()) {
      window.location.replace('/');
      return;
    }
    const c = await api.config();
    if (!c.allowRegistration) {
      setFormError($('#form-error'), 'Registration is closed on this server. Ask an administrator for an account.');
    }
  } catch {
    /* shown on submit */
  }
}

$('#register-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const errorBox = $('#form-error');
  for (const el of form.querySelectorAll('input')) el.removeAttribute('aria-invalid');
  setFormError(errorBox, '');
  const problem = check(form);
  if (problem) {
    const [field, message] = problem;
    setFormError(errorBox, message);
    form[field].setAttribute('aria-invalid', 'true');
    form[field].focus();
    return;
  }
  const username = form.username.value.trim();
  const email = form.email.value.trim();
  const password = form.password.value;
  const button = form.querySelector('button[type=submit]');
  button.disabled = true;
  button.classList.add('busy');
  try {
    await api.register({ username, email, password });
  } catch (e) {
    setFormError(errorBox, e.message);
    button.disabled = false;
    button.classList.remove('busy');
    return;
  }
  try {
    // Registration may already have opened a session; otherwise sign in now.
    if (!(await api.me())) await api.login({ username, password });
    window.location.replace('/');
  } catch {
    window.location.replace('/login.html?registered=1');
  }
});

init();
