// The recovery key of zero-access conversations, shown once: to copy, download or print.
import { copyText, h } from './common.js';

export function recoveryKeyPanel(key, { onDone, doneLabel = 'I saved it' } = {}) {
  const code = h('code', { class: 'recovery-key', id: 'recovery-key', tabindex: '0' }, key);
  const copy = h('button', { type: 'button', class: 'btn' }, 'Copy');
  copy.addEventListener('click', () => copyText(key));
  const file = new Blob([`Open Chat recovery key\n\n${key}\n\nKeep it apart from your password.\n`], { type: 'text/plain' });
  const download = h('a', { class: 'btn', href: URL.createObjectURL(file), download: 'openchat-recovery-key.txt' }, 'Download');
  const done = h('button', { type: 'button', class: 'btn primary', id: 'recovery-done' }, doneLabel);
  const panel = h(
    'div',
    { class: 'recovery-panel', role: 'region', 'aria-labelledby': 'recovery-h' },
    h('h3', { id: 'recovery-h' }, 'Your recovery key'),
    h('p', {}, 'Save it now: it is shown this once. If your password is reset by an administrator, only this key opens your conversations again. Nobody else, the administrator included, can recover them.'),
    code,
    h('div', { class: 'form-actions' }, copy, download, done),
  );
  done.addEventListener('click', () => {
    URL.revokeObjectURL(download.href);
    panel.remove();
    if (onDone) onDone();
  });
  return panel;
}
