// Settings › Your data: download all chats as JSON; import an Open Chat export or ChatGPT's
// (its .zip or conversations.json, of any size). The file is uploaded as it is and imported
// by the server in the background: this page shows the upload, then the job's progress, and
// picks up an import still running when it is opened again.
import * as api from './api.js';
import { $, h } from './common.js';

const POLL_MS = 1000;
const result = $('#transfer-result');
const progressBox = $('#import-progress');
const bar = $('#import-bar');
const progressLabel = $('#import-progress-label');

function say(...parts) {
  // replaceChildren() would write a missing part as the text "null": keep only real ones.
  result.replaceChildren(...parts.filter((p) => p !== null && p !== undefined && p !== false));
}

function sayError(message) {
  say(h('span', { class: 'form-error', role: 'alert' }, message));
}

function megabytes(bytes) {
  return `${(bytes / 1e6).toLocaleString(undefined, { maximumFractionDigits: 1 })} MB`;
}

function showProgress(fraction, text) {
  progressBox.hidden = false;
  bar.value = Math.max(0, Math.min(1, fraction));
  progressLabel.textContent = text;
}

function hideProgress() {
  progressBox.hidden = true;
}

function plural(n, word) {
  return `${n.toLocaleString()} ${word}${n === 1 ? '' : 's'}`;
}

// "2 hidden system messages, 1 empty messages" from {reason: count}.
function reasons(counts, exclude) {
  return Object.entries(counts)
    .filter(([reason, n]) => reason !== exclude && n > 0)
    .map(([reason, n]) => `${n.toLocaleString()} ${reason}`);
}

function report(job) {
  const present = job.skippedConversations['already imported'] || 0;
  const source = job.source === 'openchat' ? 'Open Chat export' : 'ChatGPT export';
  const leftOut = [
    ...reasons(job.skippedConversations, 'already imported').map((r) => `${r} (chats)`),
    ...reasons(job.skippedMessages),
  ];
  return [
    h('strong', {}, `Imported ${plural(job.imported, 'chat')}`),
    `, skipped ${present.toLocaleString()} already present (${source}). `,
    job.imported ? h('a', { href: '/' }, 'Open your chats') : null,
    leftOut.length
      ? h('p', { class: 'hint' }, `Left out as ChatGPT does not show them: ${leftOut.join(', ')}.`)
      : null,
  ];
}

async function follow(uuid) {
  const btn = $('#import-btn');
  btn.disabled = true;
  try {
    for (;;) {
      const job = await api.importJob(uuid);
      if (job.status === 'done') {
        hideProgress();
        say(...report(job));
        return;
      }
      if (job.status === 'failed') {
        hideProgress();
        say(h('span', { class: 'form-error', role: 'alert' }, job.error || 'The import failed.'));
        return;
      }
      const fraction = job.bytesTotal ? job.bytesRead / job.bytesTotal : 0;
      showProgress(
        fraction,
        `Importing ${job.filename}: ${Math.floor(fraction * 100)} % read, ` +
          `${plural(job.imported, 'chat')} added so far.`,
      );
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } catch (err) {
    hideProgress();
    sayError(err.message);
  } finally {
    btn.disabled = false;
  }
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
    sayError(e.message);
  } finally {
    btn.disabled = false;
  }
});

$('#import-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const file = $('#import-file').files[0];
  if (!file) {
    sayError('Choose a file to import.');
    return;
  }
  const btn = $('#import-btn');
  btn.disabled = true;
  say('');
  showProgress(0, `Uploading ${file.name}…`);
  let job;
  try {
    job = await api.uploadImport(file, {
      onProgress: (sent, total) =>
        showProgress(sent / total, `Uploading ${file.name}: ${megabytes(sent)} of ${megabytes(total)}`),
    });
  } catch (err) {
    hideProgress();
    sayError(err.message);
    btn.disabled = false;
    return;
  }
  $('#import-file').value = '';
  await follow(job.uuid);
});

// An import started earlier (in this tab or another) and still running: show it.
api
  .recentImports()
  .then((jobs) => {
    const running = jobs.find((j) => j.status === 'queued' || j.status === 'running');
    if (running) follow(running.uuid);
  })
  .catch(() => {});
