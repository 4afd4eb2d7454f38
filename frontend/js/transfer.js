// Settings › Your data: download all chats as JSON, import an Open Chat or ChatGPT export.
import * as api from './api.js';
import { $, h } from './common.js';

const result = $('#transfer-result');

function say(...parts) {
  // replaceChildren() would write a missing part as the text "null": keep only real ones.
  result.replaceChildren(...parts.filter((p) => p !== null && p !== undefined && p !== false));
}

$('#export-btn').addEventListener('click', async () => {
  const btn = $('#export-btn');
  btn.disabled = true;
  say('Preparing the file…');
  try {
    const { blob, filename } = await api.exportConversations();
    const url = URL.createObjectURL(blob);
    const a = h('a', { href: url, download: filename, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    say(`Downloaded ${filename}.`);
  } catch (e) {
    say(h('span', { class: 'form-error', role: 'alert' }, e.message));
  } finally {
    btn.disabled = false;
  }
});

$('#import-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const file = $('#import-file').files[0];
  if (!file) {
    say(h('span', { class: 'form-error', role: 'alert' }, 'Choose a file to import.'));
    return;
  }
  let data;
  try {
    data = JSON.parse(await file.text());
  } catch {
    say(h('span', { class: 'form-error', role: 'alert' }, `${file.name} is not a JSON file.`));
    return;
  }
  const btn = $('#import-btn');
  btn.disabled = true;
  say(`Importing ${file.name}…`);
  try {
    const r = await api.importConversations(data);
    const source = r.source === 'chatgpt' ? 'ChatGPT export' : 'Open Chat export';
    say(
      h('strong', {}, `Imported ${r.imported} chat${r.imported === 1 ? '' : 's'}`),
      `, skipped ${r.skipped} already present (${source}). `,
      r.imported ? h('a', { href: '/' }, 'Open your chats') : null,
    );
    $('#import-file').value = '';
  } catch (err) {
    say(h('span', { class: 'form-error', role: 'alert' }, err.message));
  } finally {
    btn.disabled = false;
  }
});
