// The chat UI's backend on wf_server: /v1/models for the model line, /v1/chat/completions with
// stream: true for replies (server-sent events: data: {chunk} ... data: [DONE]).
import { ContextFullError, type ChatBackend, type ChatMessage, type ChatSettings, type ModelInfo, type ReplyStats } from './ui.js';

interface Chunk {
  error?: { message: string; code?: string };
  usage?: { prompt_tokens: number; completion_tokens: number; prompt_tokens_details?: { cached_tokens?: number } };
  timings?: { predicted_per_second?: number };
  choices: { delta?: { content?: string }; finish_reason?: string | null }[];
}

export class HttpChatBackend implements ChatBackend {
  /** base: the server's root URL (default: the page's directory); apiKey: read at each request */
  constructor(private readonly apiKey: () => string = () => '', private readonly base = '') {}

  private headers(): Record<string, string> {
    const h: Record<string, string> = { 'Content-Type': 'application/json' };
    const key = this.apiKey().trim();
    if (key) h.Authorization = 'Bearer ' + key;
    return h;
  }

  async info(): Promise<ModelInfo> {
    const res = await fetch(this.base + 'v1/models', { headers: this.headers() });
    const body = await res.json();
    if (!res.ok) throw new Error(body.error ? body.error.message : res.statusText);
    const m = body.data[0];
    const meta = m.meta || {};
    return {
      label: `${m.id} · ctx ${meta.n_ctx_slot ?? '?'} · ${meta.kernels ?? ''} x${meta.threads ?? '?'}`,
      demo: !!meta.demo,
      ctx: typeof meta.n_ctx_slot === 'number' ? meta.n_ctx_slot : undefined,
    };
  }

  async reply(messages: ChatMessage[], settings: ChatSettings, signal: AbortSignal, onText: (text: string) => void): Promise<ReplyStats> {
    const body = {
      messages,
      stream: true,
      stream_options: { include_usage: true },
      temperature: settings.temperature,
      max_tokens: settings.maxTokens,
      // the page shows everything the model writes, thinking included, as it did before wf_server
      // split <think>...</think> into reasoning_content (--reasoning-format auto)
      reasoning_format: 'none',
    };
    const res = await fetch(this.base + 'v1/chat/completions', { method: 'POST', headers: this.headers(), body: JSON.stringify(body), signal });
    if (!res.ok) {
      const err = await res.json().catch(() => ({}));
      if (err.error?.code === 'context_length_exceeded') throw new ContextFullError(err.error.message);
      throw new Error(err.error ? err.error.message : `HTTP ${res.status}`);
    }
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    let finish = 'unknown';
    let usage: Chunk | null = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const event = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        for (const line of event.split('\n')) {
          if (!line.startsWith('data: ')) continue;
          const data = line.slice(6);
          if (data === '[DONE]') continue;
          const chunk = JSON.parse(data) as Chunk;
          if (chunk.error) throw new Error(chunk.error.message);
          if (chunk.usage) usage = chunk;
          const choice = chunk.choices[0];
          if (!choice) continue;
          if (choice.delta?.content) onText(choice.delta.content);
          if (choice.finish_reason) finish = choice.finish_reason;
        }
      }
    }
    return {
      promptTokens: usage?.usage?.prompt_tokens,
      cachedTokens: usage?.usage?.prompt_tokens_details?.cached_tokens,
      completionTokens: usage?.usage?.completion_tokens ?? 0,
      tokensPerSecond: usage?.timings?.predicted_per_second,
      finish,
    };
  }
}
