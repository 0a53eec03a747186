// The chat UI's backend on the engine itself (in the app, inside engine-worker.ts). One session keeps the
// conversation's KV cache between turns (a new turn only evaluates what is new). Replies are
// serialized: a reply cut short by Clear finishes its current token before the next one starts.
import { encodeChat, type LoadedModel, type Session } from '../../index.js';
import { ContextFullError, nextFrame, type ChatBackend, type ChatMessage, type ChatSettings, type ModelInfo, type ReplyStats } from '../chat/ui.js';

/** The UI's messages as the template engine takes them (plain objects). */
const plain = (messages: ChatMessage[]) => messages.map((m) => ({ role: m.role, content: m.content }));

export class EngineChatBackend implements ChatBackend {
  private readonly session: Session;
  private running: Promise<unknown> = Promise.resolve();

  constructor(private readonly lm: LoadedModel, private readonly name: string, readonly ctx: number) {
    this.session = lm.createSession({ ctxSize: ctx });
  }

  async info(): Promise<ModelInfo> {
    const k = this.lm.kernels;
    return { label: `${this.name} · ctx ${this.ctx} · ${k.name} x${k.threads}`, ctx: this.ctx };
  }

  async countTokens(messages: ChatMessage[]): Promise<number> {
    return encodeChat(this.lm.tokenizer, plain(messages), { addGenerationPrompt: true }).length;
  }

  reply(messages: ChatMessage[], settings: ChatSettings, signal: AbortSignal, onText: (text: string) => void): Promise<ReplyStats> {
    const run = this.running.then(() => this.run(messages, settings, signal, onText));
    this.running = run.catch(() => undefined);
    return run;
  }

  private async run(messages: ChatMessage[], settings: ChatSettings, signal: AbortSignal, onText: (text: string) => void): Promise<ReplyStats> {
    const n = await this.countTokens(messages);
    if (n >= this.ctx) throw new ContextFullError(`the conversation has ${n} tokens but the context holds ${this.ctx}`);
    const it = this.session.chat(plain(messages), { maxTokens: settings.maxTokens, sampler: { temperature: settings.temperature }, signal });
    for await (const ev of it) {
      if (ev.text) onText(ev.text);
      if (ev.type === 'done') {
        const r = ev.result;
        return {
          promptTokens: n,
          cachedTokens: Math.max(0, n - r.timings.promptTokens),
          completionTokens: r.tokens.length,
          tokensPerSecond: Math.round(r.timings.tokensPerSecond * 100) / 100,
          finish: r.finishReason,
        };
      }
      // let the page paint the new text (the engine runs on this thread)
      await nextFrame();
    }
    throw new Error('generation ended without a result');
  }
}
