// Settings page, account section: password change and signing out everywhere.
import * as api from './api.js';
import { $, setFormError } from './common.js';

const MIN_PASSWORD_LENGTH = 8;
const form = $('#password-form');
const errorBox = $('#password-error');
const okBox = $('#password-success');

function invalid(field, message) {
  setFormError(errorBox, message);
  field.setAttribute('aria-invalid', 'true');
  field.focus();
}

function problem() {
  const { current_password: current, new_password: fresh, confirm_password: confirm } = form;
  if (!current.value) return [current, 'Enter your current password.'];
  if (fresh.value.length < MIN_PASSWORD_LENGTH) {
    return [fresh, `The new password must have at least ${MIN_PASSWORD_LENGTH} characters.`];
  }
  if (confirm.value !== fresh.value) return [confirm, 'The two new passwords do not match.'];
  return null;
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  setFormError(errorBox, '');
  okBox.hidden = true;
  for (const field of form.querySelectorAll('input')) field.removeAttribute('aria-invalid');
  const found = problem();
  if (found) {
    invalid(...found);
    return;
  }
  const button = $('#change-password');
  button.disabled = true;
  button.classList.add('busy');
  try {
    await api.changePassword({
      currentPassword: form.current_password.value,
      newPassword: form.new_password.value,
    });
    form.reset();
    okBox.textContent = 'Password changed. Your other sessions were signed out.';
    okBox.hidden = false;
  } catch (e) {
    if (e.status === 400) invalid(form.current_password, e.message);
    else setFormError(errorBox, e.message);
  } finally {
    button.disabled = false;
    button.classList.remove('busy');
  }
});

$('#sign-out-everywhere').addEventListener('click', async (event) => {
  const button = event.currentTarget;
  button.disabled = true;
  try {
    await api.logoutEverywhere();
    window.location.replace('/login.html?signedout=1');
  } catch (e) {
    setFormError($('#sessions-error'), e.message);
    button.disabled = false;
  }
});
