// The answer being written or watched: one at a time, its stream read into its node (painted
// once per frame), resumed from where the page is when the connection drops, stopped on the
// server. Its state is that one answer (`state.active`: {controller, conversationId, ...}).
import * as api from './api.js';
import { renderMarkdown } from './markdown.js';
import { nearBottom, scrollToBottom } from './thread.js';

export const state = { active: null };

const hooks = { onTitle: () => {}, onTool: () => {} };

export function configure(given) {
  Object.assign(hooks, given);
}

const RESUME_ATTEMPTS = 3;

// Stop asks the server: it ends the answer and stores what was written, which then arrives
// as the stream's last event. Before the server confirmed the question there is nothing to
// stop yet: the wish is kept and sent as soon as it does.
export function stopStreaming() {
  const s = state.active;
  if (!s || s.stopping) return;
  s.stopping = true;
  if (s.temporary) s.controller.abort(); // nothing goes on on the server
  if (s.conversationId && s.confirmed) requestStop(s);
}

export function requestStop(s) {
  api.stopAnswer(s.conversationId).catch(() => s.controller.abort());
}

// Leaving a chat only stops watching: the server goes on writing (and storing) the answer.
export function detachStream() {
  if (state.active) state.active.controller.abort();
}

// Called by consume() when the server confirms the question (its `start` event).
export function confirmStream() {
  const s = state.active;
  if (!s || s.confirmed) return;
  s.confirmed = true;
  if (s.stopping && s.conversationId) requestStop(s);
}

// Consumes one answer stream into `node`. Returns {ok, confirmed, error, detached, lost,
// text, final}. A connection lost mid-answer is resumed from the characters already shown
// (the answer goes on on the server); `lost` means it ended meanwhile and is stored.
export async function consume(stream, node, controller, { conversationId = null, onStart = null, onUser = null } = {}) {
  const content = node.querySelector('.msg-content');
  let text = '';
  let confirmed = false;
  let final = null;
  let frame = 0;
  const paint = () => {
    frame = 0;
    const stick = nearBottom();
    renderMarkdown(content, text);
    if (stick) scrollToBottom();
  };
  const confirm = () => {
    if (!confirmed && onStart) onStart();
    confirmed = true;
    confirmStream();
  };
  try {
    for (let attempt = 0; ; attempt += 1) {
      try {
        for await (const ev of stream) {
          if (ev.type === 'delta') {
            confirm();
            text += ev.text;
            node._message.content = text;
            if (!frame) frame = requestAnimationFrame(paint);
          } else if (ev.type === 'start') {
            confirm();
            if (ev.user?.id) node._userId = ev.user.id;
            if (ev.user && onUser) onUser(ev.user);
            if (ev.title) hooks.onTitle(ev.title);
          } else if (ev.type === 'tool_call' || ev.type === 'tool_result') {
            confirm();
            hooks.onTool(node, ev.execution);
          } else if (ev.type === 'done') {
            confirm();
            final = ev;
          } else if (ev.type === 'error') {
            throw new api.ApiError(ev.status, ev.message);
          }
        }
      } catch (e) {
        if (!(e instanceof api.ApiError) || e.status !== 0) throw e;
      }
      if (final) break;
      if (!confirmed || !conversationId || attempt >= RESUME_ATTEMPTS || controller.signal.aborted) {
        throw new api.ApiError(0, 'The connection was lost before the answer was complete. Reload to see it.');
      }
      // The server is still writing: follow it from where this page is.
      await new Promise((r) => setTimeout(r, 300 * (attempt + 1)));
      stream = guardFollow(api.followAnswer(conversationId, { after: text.length }, controller.signal));
    }
    if (frame) cancelAnimationFrame(frame);
    if (final.assistant?.content && final.assistant.content.length >= text.length) text = final.assistant.content;
    return { ok: true, confirmed, text, final, stopped: !!final.assistant?.stopped };
  } catch (e) {
    if (frame) cancelAnimationFrame(frame);
    if (e?.name === 'AbortError' || controller.signal.aborted) return { ok: false, detached: true, confirmed, text };
    if (e?.lost) return { ok: false, lost: true, confirmed, text };
    return { ok: false, error: e, confirmed, text };
  }
}

// A resumed follow that finds nothing running (404): the answer ended and is stored.
async function* guardFollow(stream) {
  try {
    yield* stream;
  } catch (e) {
    if (e instanceof api.ApiError && e.status === 404) {
      const lost = new Error('ended');
      lost.lost = true;
      throw lost;
    }
    throw e;
  }
}
