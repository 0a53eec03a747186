// The chat UI shared by the server's chat page (src/web/chat/server-page.ts, talking HTTP) and the
// browser app (src/web/app/, running the engine in the page). It owns the conversation, the
// settings (kept in localStorage), streaming into the reply bubble, Stop and Clear, and dropping
// old turns so a long conversation keeps fitting the context. Where the reply comes from is a
// ChatBackend handed in by the page.
import { estimateTokens, firstTurnToKeep, replyReserve, type Turn } from './fit.js';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface ChatSettings {
  temperature: number;
  /** undefined: until the context is full */
  maxTokens?: number;
}

export interface ReplyStats {
  promptTokens?: number;
  cachedTokens?: number;
  completionTokens: number;
  tokensPerSecond?: number;
  finish: string;
}

export interface ModelInfo {
  /** one line: name, context, kernels and threads */
  label: string;
  /** the built-in demo model (a tiny trained model): shows the banner */
  demo?: boolean;
  /** the context a request may fill, in tokens */
  ctx?: number;
}

/** Thrown by a backend when the prompt does not fit the context: the UI drops a turn and retries. */
export class ContextFullError extends Error {
  override readonly name = 'ContextFullError';
}

export interface ChatBackend {
  info(): Promise<ModelInfo>;
  /** Streams the reply to `messages` through onText; resolves when it ends (an abort ends it too). */
  reply(messages: ChatMessage[], settings: ChatSettings, signal: AbortSignal, onText: (text: string) => void): Promise<ReplyStats>;
  /** Exact prompt length of `messages` in tokens, where the backend can tell. */
  countTokens?(messages: ChatMessage[]): Promise<number>;
}

export interface ChatOptions {
  /** show the API key field (the server page) */
  apiKey?: boolean;
  /** text of the demo banner */
  demoNote?: string;
}

export const CHAT_CSS = `
  :root { --bg: #f6f7f9; --fg: #1d232b; --muted: #6a7380; --user: #dbeafe; --bot: #ffffff; --accent: #2563eb; --warn: #fff4d6; --err: #dc2626; }
  @media (prefers-color-scheme: dark) {
    :root { --bg: #14171c; --fg: #e6e9ee; --muted: #98a1ad; --user: #1e3a5f; --bot: #1f242c; --accent: #60a5fa; --warn: #3b3216; --err: #f87171; }
  }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.45 system-ui, sans-serif; background: var(--bg); color: var(--fg); display: flex; flex-direction: column; height: 100vh; }
  .wf-chat { flex: 1; min-height: 0; display: flex; flex-direction: column; }
  .wf-chat header { padding: 10px 16px; border-bottom: 1px solid #8883; display: flex; gap: 12px; align-items: baseline; flex-wrap: wrap; }
  .wf-chat header h1 { font-size: 17px; margin: 0; }
  #model { color: var(--muted); font-size: 13px; overflow-wrap: anywhere; }
  #demo { display: none; background: var(--warn); padding: 6px 16px; font-size: 13px; }
  .wf-chat details { padding: 6px 16px; font-size: 13px; border-bottom: 1px solid #8883; }
  .wf-chat details label { display: inline-flex; gap: 6px; align-items: center; margin: 4px 14px 4px 0; }
  .wf-chat details input[type=number] { width: 80px; }
  .wf-chat details textarea { width: 100%; height: 48px; }
  #log { flex: 1; overflow-y: auto; overflow-x: hidden; padding: 16px; display: flex; flex-direction: column; gap: 10px; }
  .msg { max-width: min(80ch, 100%); min-width: 0; padding: 8px 12px; border-radius: 10px; white-space: pre-wrap; overflow-wrap: anywhere; }
  .user { background: var(--user); align-self: flex-end; }
  .assistant { background: var(--bot); align-self: flex-start; border: 1px solid #8883; }
  .stats { font-size: 12px; color: var(--muted); align-self: flex-start; overflow-wrap: anywhere; }
  .error { color: var(--err); align-self: flex-start; font-size: 13px; overflow-wrap: anywhere; }
  .wf-chat form { display: flex; gap: 8px; padding: 10px 16px; border-top: 1px solid #8883; }
  .wf-chat form textarea { flex: 1; min-width: 0; resize: vertical; min-height: 44px; font: inherit; padding: 8px; }
  button { font: inherit; padding: 0 16px; border-radius: 6px; border: 1px solid var(--accent); background: var(--accent); color: white; cursor: pointer; }
  button.secondary { background: transparent; color: var(--accent); }
  button:disabled { opacity: 0.5; cursor: default; }
  @media (max-width: 480px) { .wf-chat form { flex-wrap: wrap; } .wf-chat form textarea { flex-basis: 100%; } .wf-chat button { padding: 6px 12px; } }
`;

const TEMPLATE = `
<header><h1>WrinkleFree</h1><span id="model">connecting…</span></header>
<div id="demo"></div>
<details>
  <summary>Settings</summary>
  <label>System prompt</label>
  <textarea id="system" placeholder="You are a helpful assistant."></textarea>
  <label>Temperature <input id="temperature" type="number" min="0" max="2" step="0.1" value="0.8"></label>
  <label>Max tokens <input id="maxTokens" type="number" min="1" step="1" value="256"></label>
  <label class="api-key">API key <input id="apiKey" type="password" placeholder="(if the server needs one)"></label>
</details>
<main id="log"></main>
<form id="form">
  <textarea id="input" placeholder="Message (Enter to send, Shift+Enter for a new line)" autofocus></textarea>
  <button id="send" type="submit">Send</button>
  <button id="stop" type="button" class="secondary" disabled>Stop</button>
  <button id="clear" type="button" class="secondary">Clear</button>
</form>`;

/** Resolves after the browser had a chance to paint (a message, not a clamped timer). */
export function nextFrame(): Promise<void> {
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => resolve();
    ch.port2.postMessage(null);
  });
}

export interface ChatHandle {
  /** Asks the backend for its model line again (after a new model is loaded). */
  refresh(): Promise<void>;
  /** Enables or disables sending (e.g. while no model is loaded). */
  setReady(ready: boolean): void;
  /** Sends a message as if typed; resolves with the reply's statistics (undefined on error). */
  send(text: string): Promise<ReplyStats | undefined>;
  clear(): void;
  readonly element: HTMLElement;
}

export function mountChat(root: HTMLElement, backend: ChatBackend, opts: ChatOptions = {}): ChatHandle {
  if (!document.getElementById('wf-chat-css')) {
    const style = document.createElement('style');
    style.id = 'wf-chat-css';
    style.textContent = CHAT_CSS;
    document.head.appendChild(style);
  }
  root.classList.add('wf-chat');
  root.innerHTML = TEMPLATE;
  const $ = <T extends HTMLElement = HTMLInputElement>(id: string) => root.querySelector<T>('#' + id)!;
  const log = $<HTMLElement>('log');
  if (!opts.apiKey) root.querySelector<HTMLElement>('.api-key')!.remove();
  $<HTMLElement>('demo').textContent =
    opts.demoNote ?? 'This is the built-in demo model: a 2.3-million-parameter BitNet b1.58 trained on the King James Bible, fortune cookies and The Devil\'s Dictionary. It writes English in their style; it does not answer questions.';

  const conversation: Turn[] = [];
  let info: ModelInfo | undefined;
  let controller: AbortController | null = null;
  let ready = true;
  // bumped by Clear: a reply still finishing for an older conversation must not touch the new one
  let epoch = 0;

  for (const id of ['system', 'temperature', 'maxTokens', 'apiKey']) {
    const el = root.querySelector<HTMLInputElement>('#' + id);
    if (!el) continue;
    // storage may be refused (sandboxed frames, some privacy settings): the settings then last a page
    try {
      const saved = localStorage.getItem('wf.' + id);
      if (saved !== null) el.value = saved;
      el.addEventListener('change', () => localStorage.setItem('wf.' + id, el.value));
    } catch {
      // not kept
    }
  }

  function add(cls: string, text: string): HTMLElement {
    const div = document.createElement('div');
    div.className = cls;
    div.textContent = text;
    log.appendChild(div);
    log.scrollTop = log.scrollHeight;
    return div;
  }

  function busy(on: boolean): void {
    $('send').toggleAttribute('disabled', on || !ready);
    $('stop').toggleAttribute('disabled', !on);
  }

  async function refresh(): Promise<void> {
    try {
      info = await backend.info();
      $('model').textContent = info.label;
      $<HTMLElement>('demo').style.display = info.demo ? 'block' : 'none';
    } catch (e) {
      info = undefined;
      $('model').textContent = 'model info unavailable: ' + (e as Error).message;
    }
  }

  function messagesFrom(start: number): ChatMessage[] {
    const out: ChatMessage[] = [];
    const sys = $('system').value.trim();
    if (sys) out.push({ role: 'system', content: sys });
    for (const t of conversation.slice(start)) out.push({ role: t.role, content: t.content });
    return out;
  }

  /** The first turn to send: the newest turns that leave room for the reply. */
  async function fit(settings: ChatSettings): Promise<number> {
    const ctx = info?.ctx;
    if (!ctx) return 0;
    const reserve = replyReserve(ctx, settings.maxTokens);
    if (!backend.countTokens) {
      const sys = $('system').value.trim();
      return firstTurnToKeep(conversation, ctx, reserve, sys ? estimateTokens(sys) : 8);
    }
    // exact counts: move the start forward exchange by exchange until it fits
    const lastUser = conversation.map((t) => t.role).lastIndexOf('user');
    let start = 0;
    while (start < lastUser && (await backend.countTokens(messagesFrom(start))) > ctx - reserve) {
      do start++;
      while (start < lastUser && conversation[start]!.role !== 'user');
    }
    return start;
  }

  async function send(text: string): Promise<ReplyStats | undefined> {
    const myEpoch = epoch;
    const user: Turn = { role: 'user', content: text };
    conversation.push(user);
    add('msg user', text);
    const out = add('msg assistant', '');
    const maxTokens = Number($('maxTokens').value) || undefined;
    const settings: ChatSettings = { temperature: Number($('temperature').value), maxTokens };
    controller = new AbortController();
    const signal = controller.signal;
    busy(true);
    let reply = '';
    try {
      let start = await fit(settings);
      let stats: ReplyStats | undefined;
      for (;;) {
        try {
          stats = await backend.reply(messagesFrom(start), settings, signal, (t) => {
            if (epoch !== myEpoch) return;
            reply += t;
            out.textContent = reply;
            log.scrollTop = log.scrollHeight;
          });
          break;
        } catch (e) {
          // the estimate was short: drop one more exchange and ask again
          const lastUser = conversation.lastIndexOf(user);
          if (!(e instanceof ContextFullError) || start >= lastUser || signal.aborted) throw e;
          do start++;
          while (start < lastUser && conversation[start]!.role !== 'user');
        }
      }
      if (epoch !== myEpoch) return undefined;
      // what each turn cost, for fitting the next requests
      if (stats.promptTokens !== undefined) {
        const before = conversation.slice(start, conversation.indexOf(user)).reduce((a, t) => a + (t.tokens ?? estimateTokens(t.content)), 0);
        user.tokens = Math.max(1, stats.promptTokens - before);
      }
      conversation.push({ role: 'assistant', content: reply, tokens: stats.completionTokens + 2 });
      if (stats.finish === 'abort') {
        if (!reply) out.remove(); // stopped before its first token: no empty bubble
        add('stats', 'stopped');
      } else {
        const parts: string[] = [];
        if (stats.promptTokens !== undefined) parts.push(`${stats.promptTokens} prompt tokens (${stats.cachedTokens ?? 0} cached)`);
        parts.push(`${stats.completionTokens} tokens at ${stats.tokensPerSecond ?? '?'} tok/s`);
        parts.push(`finish: ${stats.finish}`);
        if (start > 0) parts.push(`${start} older turn${start === 1 ? '' : 's'} left out to fit the context`);
        add('stats', parts.join(' · '));
      }
      return stats;
    } catch (e) {
      if (epoch !== myEpoch) return undefined;
      if ((e as Error).name === 'AbortError') {
        conversation.push({ role: 'assistant', content: reply });
        if (!reply) out.remove();
        add('stats', 'stopped');
        return undefined;
      }
      conversation.splice(conversation.indexOf(user), 1);
      if (!reply) out.remove();
      add('error', 'Error: ' + (e as Error).message);
      return undefined;
    } finally {
      if (epoch === myEpoch) {
        controller = null;
        busy(false);
      }
    }
  }

  function clear(): void {
    epoch++;
    controller?.abort();
    controller = null;
    conversation.length = 0;
    log.textContent = '';
    busy(false);
  }

  $('form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = $<HTMLTextAreaElement>('input').value.trim();
    if (!text || controller || !ready) return;
    $<HTMLTextAreaElement>('input').value = '';
    void send(text);
  });
  $<HTMLTextAreaElement>('input').addEventListener('keydown', (ev) => {
    // Enter that confirms an IME composition (keyCode 229 in some browsers) is not a send
    if (ev.isComposing || ev.keyCode === 229) return;
    if (ev.key === 'Enter' && !ev.shiftKey) {
      ev.preventDefault();
      $<HTMLFormElement>('form').requestSubmit();
    }
  });
  $('stop').addEventListener('click', () => controller?.abort());
  $('clear').addEventListener('click', clear);

  return {
    refresh,
    setReady(on: boolean) {
      ready = on;
      busy(controller !== null);
    },
    send,
    clear,
    element: root,
  };
}
